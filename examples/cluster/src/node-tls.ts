// A node's TLS over time: its certificate renewed at a random point between 50% and 80% of its lifetime (or
// when asked), and the cluster's root rotation followed from the heartbeat answers (renew when the CA issues
// from a new key; trust the new root once the rotation is done). The daemon gives access to what it runs.

import * as pki from '@swarmkit/pki'
import type { KeyManager } from '@swarmkit/store'
import type { RpcClient, TlsTransport } from '@swarmkit/transport'
import type { HeartbeatAnswer } from './dispatcher.js'
import { ApiError, MESSAGES } from './errors.js'
import type { Manager } from './manager.js'
import { renewWorkerCertificate } from './node-certificates.js'
import { readSavedNode, type SavedNode, saveNode, TLS_KEY_NEXT_SECRET, TLS_KEY_SECRET } from './node-file.js'
import { issuedBy, sameCertificates } from './tls-info.js'

export interface NodeTlsHost {
  readonly stateDir: string
  readonly log: (line: string) => void
  /** Whether a TLS change may start now (node active, no swarm operation or role change under way). */
  readonly canChange: () => boolean
  readonly manager: () => Manager | undefined
  /** A running manager's key file (its TLS key lives there). */
  readonly keys: () => KeyManager | undefined
  /** A worker's own record (it may differ from the node file while a save is on its way), and its update. */
  readonly worker: () => SavedNode | undefined
  readonly setWorker: (saved: SavedNode) => void
  /** A worker's connection to its manager, and the transport under it. */
  readonly client: () => RpcClient | undefined
  readonly clientTransport: () => TlsTransport | undefined
  /** Registers again, so that the managers see this node's TLS as it is now. */
  readonly reportTls: () => Promise<void>
}

export class NodeTls {
  readonly #host: NodeTlsHost
  /** The certificate chain this node presents and the roots it trusts. */
  #state: { certificate: string; roots: string } | undefined
  #change: Promise<void> | undefined
  /** The last (wanted, held) TLS state found to agree, so that a steady heartbeat parses no certificates. */
  #settled = ''
  #renewal: pki.RenewalScheduler | undefined

  constructor(host: NodeTlsHost) {
    this.#host = host
  }

  /** The certificate chain this node presents and the roots it trusts (undefined outside a swarm). */
  get state(): { readonly certificate: string; readonly roots: string } | undefined {
    return this.#state
  }

  /** Holds `certificate` and `roots` from now on, and schedules the certificate's renewal. */
  start(certificate: string, roots: string): void {
    this.#state = { certificate, roots }
    this.#renewal?.stop()
    const log = this.#host.log
    const renewal = pki.renewalScheduler({
      certificate: pki.parseCertificates(certificate)[0]!,
      renew: () => this.#renew(),
    })
    renewal.on('renewal:succeeded', (c) =>
      log(`certificate renewed, valid until ${c.notAfter.toISOString()}`),
    )
    renewal.on('renewal:failed', (err, at) =>
      log(`certificate renewal failed (${(err as Error).message}); next try ${new Date(at).toISOString()}`),
    )
    renewal.start()
    this.#renewal = renewal
  }

  stop(): void {
    this.#renewal?.stop()
    this.#renewal = undefined
  }

  /** Renews the certificate now (as the schedule would). */
  async renewNow(): Promise<void> {
    if (!this.#renewal) throw new ApiError(503, MESSAGES.notPartOfSwarm)
    await this.#renewal.renewNow()
  }

  /** The root rotation: the heartbeat answer names the root to trust and the CA that issues now. */
  follow(want: HeartbeatAnswer['tls'] | undefined): void {
    const now = this.#state
    if (!want || !now || this.#change || !this.#host.canChange()) return
    if (typeof want.trustRoot !== 'string' || typeof want.issuer !== 'string') return
    const key = `${want.trustRoot}\0${want.issuer}\0${now.certificate}\0${now.roots}`
    if (key === this.#settled) return
    let change: Promise<void> | undefined
    if (!sameCertificates(want.trustRoot, now.roots)) change = this.#adoptRoots(want.trustRoot)
    else if (!issuedBy(now.certificate, want.issuer)) {
      this.#host.log('the cluster issues certificates from a new root key: renewing')
      change = this.renewNow()
    }
    if (!change) {
      this.#settled = key
      return
    }
    this.#change = change
      .catch((err: Error) => this.#host.log(`following the cluster's TLS change failed: ${err.message}`))
      .finally(() => {
        this.#change = undefined
      })
  }

  /** The rotation finished: trust the new root from now on (listeners, clients, the saved node). */
  async #adoptRoots(roots: string): Promise<void> {
    const host = this.#host
    pki.parseCertificates(roots) // refuses what is not a certificate
    const state = this.#state!
    const saved = host.worker() ?? (await readSavedNode(host.stateDir))
    if (!saved) return
    const next = { ...saved, roots }
    const manager = host.manager()
    if (manager) manager.setCredentials({ ...manager.credentials, roots })
    else {
      host.setWorker(next)
      host.clientTransport()?.setCredentials({ key: saved.key, cert: saved.certificate, ca: roots })
    }
    await saveNode(host.stateDir, next)
    this.#state = { ...state, roots }
    host.log('the cluster has a new root CA: trusting it')
    await host.reportTls()
  }

  /**
   * A new key, a certificate from the CA for the node's role with the cluster's lifetime, then every TLS
   * listener and client switches to it.
   */
  async #renew(): Promise<pki.CertificateLifetime> {
    const host = this.#host
    const saved = await readSavedNode(host.stateDir)
    if (!saved) throw new Error('this node is not part of a swarm')
    if (saved.role === 'manager') {
      const manager = host.manager()
      const keys = host.keys()
      if (!manager || !keys) throw new Error('the manager is not running')
      const creds = await manager.renewOwnCertificate()
      // Crash-safe order: the new key goes into the key file beside the old one before the certificate that
      // needs it is saved; on start the key that matches the saved certificate is used.
      const keyPem = new TextEncoder().encode(pki.encodePrivateKeyPem(creds.key.privateKey))
      await keys.writeSecret(TLS_KEY_NEXT_SECRET, keyPem)
      await saveNode(host.stateDir, { ...saved, certificate: creds.certificate })
      await keys.writeSecret(TLS_KEY_SECRET, keyPem)
      this.#state = { certificate: creds.certificate, roots: creds.roots }
      void host.reportTls()
      return pki.parseCertificates(creds.certificate)[0]!
    }
    const client = host.client()
    if (!client || !host.clientTransport()) throw new Error('the worker is not connected')
    const { key, creds } = await renewWorkerCertificate(client, saved.roots)
    const keyPem = pki.encodePrivateKeyPem(key.privateKey)
    // The worker's own record (it may have failed over to another manager since the file was read).
    const current = host.worker() ?? saved
    const worker = { ...current, key: keyPem, certificate: creds.certificate }
    host.setWorker(worker)
    await saveNode(host.stateDir, worker)
    // The transport of the moment (a failover since the request made a new one).
    host.clientTransport()!.setCredentials({ key: keyPem, cert: creds.certificate, ca: current.roots })
    this.#state = { certificate: creds.certificate, roots: current.roots }
    void host.reportTls()
    return pki.parseCertificates(creds.certificate)[0]!
  }
}
