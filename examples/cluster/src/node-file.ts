// What a node keeps in its state directory to come back after a restart: the node file (identity, role,
// certificate, addresses), the manager's TLS key in its key file, and the raft state a manager leaves.

import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as pki from '@swarmkit/pki'
import type { KeyManager } from '@swarmkit/store'

/** What a node keeps in its state directory to come back after a restart (mode 0600, like swarm's key files). */
export interface SavedNode {
  version: 1
  nodeId: string
  clusterId: string
  role: 'manager' | 'worker'
  /** A worker's private key (PKCS#8 PEM; a manager keeps it in its key file), certificate chain and roots. */
  key: string
  certificate: string
  roots: string
  /** The join listener's host and port (a manager's), and the host advertised to others. */
  host: string
  port: number
  advertiseHost: string
  raftAddr: string
  /** A manager's raft member ID when it is not the node ID (a promoted worker). */
  raftId?: string
  /** A manager's control server port (0 before the first start). */
  controlPort?: number
  /** A worker's manager (dispatcher) address. */
  controlAddr?: string
  remoteManager?: string
  /** The managers a worker heard of last (join and dispatcher addresses), to fail over to. */
  managers?: { addr: string; control: string }[]
}

export const NODE_FILE = 'node.json'
export const TLS_KEY_SECRET = 'node-tls-key'
/** A renewed key, written before the certificate that needs it (see `#renewCertificate`). */
export const TLS_KEY_NEXT_SECRET = 'node-tls-key-next'

/** The manager's TLS key from its key file: the one that matches its saved certificate. */
export function managerTlsKey(keys: KeyManager, certificate: string): Uint8Array {
  const want = pki.parseCertificates(certificate)[0]?.publicKey
  for (const name of [TLS_KEY_SECRET, TLS_KEY_NEXT_SECRET]) {
    const pem = keys.readSecret(name)
    if (!pem || !want) continue
    const pub = pki.decodePrivateKeyPem(new TextDecoder().decode(pem)).publicKey
    if (Buffer.compare(pub, want) === 0) return pem
  }
  throw new Error("the key file holds no TLS key for this manager's certificate")
}
/** The host raft listens on: a wildcard listen address means loopback for raft. */
export const raftHostOf = (host: string) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host)

/** The node file a previous process left in `stateDir` (undefined if there is none). */
/** The node file a previous process left in the state directory (undefined if there is none). */
export async function readSavedNode(stateDir: string): Promise<SavedNode | undefined> {
  let text: string
  try {
    text = await readFile(join(stateDir, NODE_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (text.length > 256 * 1024) throw new Error(`${NODE_FILE} is too large`)
  const saved = JSON.parse(text) as SavedNode
  if (saved?.version !== 1 || (saved.role !== 'manager' && saved.role !== 'worker'))
    throw new Error(`${NODE_FILE}: not a node file of this version`)
  return saved
}

export function nodeCredentials(saved: SavedNode): pki.NodeCredentials {
  return {
    identity: {
      nodeId: saved.nodeId,
      role: saved.role === 'manager' ? 'swarm-manager' : 'swarm-worker',
      clusterId: saved.clusterId,
    },
    key: pki.keyPairFromPrivateKey(pki.decodePrivateKeyPem(saved.key).privateKey),
    certificate: saved.certificate,
    roots: saved.roots,
  }
}

/** Writes the node file (mode 0600), atomically. */
export async function saveNode(stateDir: string, saved: SavedNode): Promise<void> {
  const path = join(stateDir, NODE_FILE)
  try {
    await writeFile(`${path}.tmp`, JSON.stringify(saved), { mode: 0o600 })
    await rename(`${path}.tmp`, path)
  } catch (err) {
    // The node file is as it was; a partial copy (a full disk) goes rather than hold the space.
    await rm(`${path}.tmp`, { force: true }).catch(() => {})
    throw err
  }
}

/** Deletes what a manager keeps (raft log, snapshots, key file) so that a later promotion starts clean. */
export async function dropManagerState(stateDir: string): Promise<void> {
  await rm(join(stateDir, 'raft'), { recursive: true, force: true })
  await rm(join(stateDir, 'raft-keys'), { force: true })
}
