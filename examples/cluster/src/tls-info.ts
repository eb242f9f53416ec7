// Swarm's TLSInfo: which root a node trusts and which CA key issued its certificate. The cluster publishes the
// desired values (the new root's key during a root rotation); every node reports its own, and `docker swarm ca
// --rotate` watches the two converge.
import * as pki from '@swarmkit/pki'
import type { Cluster, TLSInfo } from '@swarmkit/store'

/** DER SubjectPublicKeyInfo of an Ed25519 key (a fixed 12-byte prefix, then the key). */
const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
])

function spki(publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(ED25519_SPKI_PREFIX.length + publicKey.length)
  out.set(ED25519_SPKI_PREFIX)
  out.set(publicKey, ED25519_SPKI_PREFIX.length)
  return out
}

function issuer(ca: pki.Certificate): { certIssuerSubject: Uint8Array; certIssuerPublicKey: Uint8Array } {
  return { certIssuerSubject: ca.subject.der, certIssuerPublicKey: spki(ca.publicKey) }
}

/** The CA certificate that issues node certificates now: the new root while a rotation is in progress. */
export function issuingCA(cluster: Cluster): string {
  return cluster.rootCA.rootRotation?.caCert ?? cluster.rootCA.caCert
}

/** The cluster's desired TLSInfo (`docker swarm inspect`): today's trust root, the issuing CA's key. */
export function clusterTlsInfo(cluster: Cluster): TLSInfo {
  return { trustRoot: cluster.rootCA.caCert, ...issuer(pki.parseCertificates(issuingCA(cluster))[0]!) }
}

/**
 * A node's TLSInfo from its certificate chain and the roots it trusts: the issuer is whichever certificate of the
 * chain or the roots signed the node's certificate.
 */
export function nodeTlsInfo(chain: string, roots: string): TLSInfo {
  const [leaf, ...intermediates] = pki.parseCertificates(chain)
  if (!leaf) throw new TypeError('chain: expected a certificate')
  const candidates = [...intermediates, ...pki.parseCertificates(roots)]
  const signer = candidates.find((c) => pki.isSignedBy(leaf, c))
  if (!signer) throw new Error('the certificate was issued by none of the chain or roots')
  return { trustRoot: roots, ...issuer(signer) }
}

/** Whether `chain`'s certificate was issued with the key of the CA certificate `caPem`. */
export function issuedBy(chain: string, caPem: string): boolean {
  const leaf = pki.parseCertificates(chain)[0]
  const ca = pki.parseCertificates(caPem)[0]
  return !!leaf && !!ca && pki.isSignedBy(leaf, ca)
}

/** Whether two PEM bundles hold the same certificates (whatever their line breaks or order). */
export function sameCertificates(a: string, b: string): boolean {
  if (a === b) return true
  const key = (pem: string) =>
    pki
      .parseCertificates(pem)
      .map((c) => Buffer.from(c.der).toString('base64'))
      .sort()
      .join(',')
  return key(a) === key(b)
}
