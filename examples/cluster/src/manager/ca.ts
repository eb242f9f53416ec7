// The cluster's certificate authority on a manager: its key lives in the cluster object of the replicated
// store, so any manager issues; root rotation (`docker swarm ca --rotate`) is started by the API and
// finished by the leader. The certificate work itself is pki's; this module maps it onto the cluster object.

import * as pki from '@swarmkit/pki'
import type { Cluster, ClusterStore, RootRotation } from '@swarmkit/store'
import { clusterTlsInfo } from '../tls-info.js'

/** Swarm's node certificate lifetime: 90 days. */
export const DEFAULT_CERT_EXPIRY_NS = 90 * 24 * 3600 * 1e9
/** Swarm's shortest node certificate lifetime (`--cert-expiry`): 1 hour. */
export const MIN_CERT_EXPIRY_NS = 3600 * 1e9

/**
 * A root rotation for the cluster object: pki's {@link pki.startRootRotation} (a new root key and
 * certificate, and the new root cross-signed by the current one) in the PEM form the cluster object keeps.
 */
export function startRootRotation(c: Cluster): RootRotation {
  const current = pki.importRootCA({ certificate: c.rootCA.caCert, key: c.rootCA.caKey })
  const r = pki.startRootRotation(current)
  return {
    caCert: r.newCA.pem,
    caKey: pki.encodePrivateKeyPem(r.newCA.privateKey),
    crossSignedCACert: pki.certificatePem(r.crossSigned),
  }
}

/**
 * The leader ends a root rotation once every node that is not down holds a certificate from the new key:
 * the new root becomes the trust anchor, and both join tokens change (they carry the root's digest).
 */
export async function finishRootRotation(store: ClusterStore, log: (line: string) => void): Promise<void> {
  const c = store.view((tx) => tx.find('clusters')[0])
  const rotation = c?.rootCA.rootRotation
  if (!c || !rotation) return
  const want = clusterTlsInfo(c).certIssuerPublicKey
  const pending = store.view((tx) =>
    tx
      .find('nodes')
      .filter(
        (n) =>
          n.status.state !== 'down' &&
          !(n.description?.tlsInfo && Buffer.compare(n.description.tlsInfo.certIssuerPublicKey, want) === 0),
      ),
  )
  if (pending.length > 0) return
  const root = pki.importRootCA({ certificate: rotation.caCert, key: rotation.caKey })
  const joinTokens = pki.generateJoinTokens(root.pem)
  await store.update((tx) => {
    const cur = tx.get('clusters', c.id)
    if (cur?.rootCA.rootRotation?.caCert !== rotation.caCert) return // changed meanwhile
    const { rootRotation: _done, ...rest } = cur.rootCA
    tx.update('clusters', {
      ...cur,
      rootCA: {
        ...rest,
        caCert: rotation.caCert,
        caKey: rotation.caKey,
        caCertHash: Buffer.from(pki.caDigest(root.pem)).toString('hex'),
        joinTokens,
      },
    })
  })
  log('root rotation finished: the new root is the trust anchor')
}

/** The CA server for the cluster as it is now, made again only when its key, root or lifetime changed. */
export class ClusterCA {
  readonly #clusterId: string
  readonly #joinTokens: () => pki.JoinTokens
  #ca: pki.CAServer | undefined
  #caPem = ''

  constructor(clusterId: string, joinTokens: () => pki.JoinTokens) {
    this.#clusterId = clusterId
    this.#joinTokens = joinTokens
  }

  forCluster(cluster: Cluster): pki.CAServer {
    // `docker swarm update --cert-expiry`: certificates issued from now on get the cluster's lifetime.
    const validityMs = Math.round((cluster.spec.caConfig?.nodeCertExpiry ?? DEFAULT_CERT_EXPIRY_NS) / 1e6)
    const rotation = cluster.rootCA.rootRotation
    const key = `${validityMs}\n${cluster.rootCA.caCert}\n${rotation?.caCert ?? ''}`
    if (!this.#ca || this.#caPem !== key) {
      // During a root rotation the new key issues, and its cross-signed certificate goes along with every
      // certificate so that nodes still trusting only the old root accept it; joiners get the old root.
      const ca = rotation
        ? pki.importRootCA({
            certificate: rotation.caCert,
            key: rotation.caKey,
            intermediates: rotation.crossSignedCACert,
          })
        : pki.importRootCA({ certificate: cluster.rootCA.caCert, key: cluster.rootCA.caKey })
      this.#ca = pki.caServer({
        ca,
        roots: cluster.rootCA.caCert,
        certificateValidityMs: validityMs,
        clusterId: this.#clusterId,
        joinTokens: this.#joinTokens,
      })
      this.#caPem = key
    }
    return this.#ca
  }
}
