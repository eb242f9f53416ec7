// A node asking the cluster's CA for a new certificate under a new key: a worker renewing its own, a worker
// promoted to manager (the answer brings its raft membership), and a manager demoted to worker (asked of the
// other managers until the leader has taken it out of raft). Each returns what the node saves next.

import * as pki from '@swarmkit/pki'
import type { RpcClient } from '@swarmkit/transport'
import type { Manager, RenewAnswer } from './manager.js'
import type { SavedNode } from './node-file.js'

/** A worker's renewal over its connection to a manager: the new key and credentials. */
export async function renewWorkerCertificate(
  client: RpcClient,
  roots: string,
): Promise<{ key: pki.KeyPair; creds: pki.NodeCredentials }> {
  const key = pki.generateKeyPair()
  const answer = (await client.call(
    'ca.renew',
    { csr: pki.createCSR(key.privateKey) },
    { timeoutMs: 10_000 },
  )) as RenewAnswer
  const creds = pki.acceptCertificateResponse(answer, { key, roots, expectedRole: 'swarm-worker' })
  return { key, creds }
}

/**
 * Promotion: a new key and a manager certificate from the CA (over this worker's mutual TLS connection),
 * which also makes the node a manager in the store. Returns the node as it starts as a manager, and the
 * raft members it starts with.
 */
export async function requestPromotion(
  client: RpcClient,
  saved: SavedNode,
): Promise<{ next: SavedNode; raftPeers: { id: string; address: string }[] }> {
  // The raft address chosen when it joined (never bound by a worker), so that a retried promotion names
  // the same one.
  const raftAddr = saved.raftAddr
  const key = pki.generateKeyPair()
  const answer = (await client.call(
    'ca.renew',
    { csr: pki.createCSR(key.privateKey), raftAddr },
    { timeoutMs: 10_000 },
  )) as RenewAnswer
  const credentials = pki.acceptCertificateResponse(answer, {
    key,
    roots: saved.roots,
    expectedRole: 'swarm-manager',
  })
  if (typeof answer.raftId !== 'string' || !Array.isArray(answer.raftPeers) || answer.raftPeers.length === 0)
    throw new Error('the CA sent no raft membership with the manager certificate')
  const next: SavedNode = {
    ...saved,
    role: 'manager',
    key: pki.encodePrivateKeyPem(key.privateKey),
    certificate: credentials.certificate,
    raftAddr,
    raftId: answer.raftId,
  }
  delete next.controlAddr
  delete next.controlPort
  delete next.remoteManager
  return { next, raftPeers: answer.raftPeers }
}

/**
 * Demotion: until the leader has taken this manager out of raft the other managers refuse it a worker
 * certificate, so it asks again (with backoff) for as long as `current()` holds. Returns the node as it
 * runs as a worker of the manager that answered (undefined if it stopped asking).
 */
export async function requestDemotion(
  manager: Manager,
  saved: SavedNode,
  current: () => boolean,
  log: (line: string) => void,
): Promise<SavedNode | undefined> {
  const key = pki.generateKeyPair()
  const csr = pki.createCSR(key.privateKey)
  let got: Awaited<ReturnType<Manager['renewElsewhere']>> | undefined
  for (let delay = 200; !got; delay = Math.min(2 * delay, 2000)) {
    if (!current()) return undefined
    try {
      got = await manager.renewElsewhere({ csr })
    } catch (err) {
      log(`no worker certificate yet: ${(err as Error).message}`)
      await new Promise((r) => setTimeout(r, delay))
    }
  }
  const credentials = pki.acceptCertificateResponse(got.answer, {
    key,
    roots: saved.roots,
    expectedRole: 'swarm-worker',
  })
  const next: SavedNode = {
    ...saved,
    role: 'worker',
    key: pki.encodePrivateKeyPem(key.privateKey),
    certificate: credentials.certificate,
    controlAddr: got.answer.controlAddr,
    remoteManager: got.joinAddr,
  }
  delete next.raftId
  delete next.controlPort
  return next
}
