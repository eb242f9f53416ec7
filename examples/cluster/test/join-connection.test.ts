// The join over one TLS connection: the joiner fetches the root CA without trusting anyone, checks it
// against the token, then checks that the certificate this same manager presented in the handshake chains
// to that root and is a manager's, and only then sends the token and its CSR. Before, the join took a
// second TLS connection verified against the root (three handshakes per node with the dispatcher session,
// the largest part of a simulated worker's CPU in a join storm). The token must still reach no impostor.
import type { Server } from 'node:tls'
import * as pki from '@swarmkit/pki'
import { afterEach, describe, expect, it } from 'vitest'
import { type JoinMessage, joinCluster, listenForJoins } from '../src/join.js'

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

function credentialsOf(ca: pki.RootCA, clusterId: string, role: pki.NodeRole): pki.TlsCredentials {
  const key = pki.generateKeyPair()
  const issued = pki.issueNodeCertificate(ca, pki.createCSR(key.privateKey), {
    nodeId: pki.generateNodeId(),
    role,
    clusterId,
  })
  return { key, certificate: issued.chain, roots: ca.pem }
}

/** A join listener that answers with `ca` and counts its TLS connections and the join requests it saw. */
async function joinListener(
  ca: pki.RootCA,
  tokens: pki.JoinTokens,
  tls: pki.TlsCredentials,
  clusterId: string,
  roots = ca.pem,
) {
  const server = pki.caServer({ ca, joinTokens: tokens, clusterId, roots })
  const seen: JoinMessage[] = []
  const joined = await listenForJoins('127.0.0.1:0', tls, async (m, source) => {
    seen.push(m)
    if (m.op === 'rootCA') return server.getRootCA()
    return { ...server.join({ csr: m.csr, token: m.token }, { source }), controlAddr: '127.0.0.1:1' }
  })
  servers.push(joined.server)
  let connections = 0
  joined.server.on('secureConnection', () => connections++)
  return { address: joined.address, seen, connections: () => connections }
}

describe('joining over one TLS connection', () => {
  const clusterId = pki.generateClusterId()
  const ca = pki.createRootCA()
  const tokens = pki.generateJoinTokens(ca.pem)
  const node = { hostname: 'w1', advertiseAddr: '127.0.0.1', raftAddr: '' }

  it('fetches the root CA and joins on the same connection', async () => {
    const manager = await joinListener(ca, tokens, credentialsOf(ca, clusterId, 'swarm-manager'), clusterId)
    const { credentials, answer } = await joinCluster(manager.address, tokens.worker, node)
    expect(credentials.identity.role).toBe('swarm-worker')
    expect(answer.controlAddr).toBe('127.0.0.1:1')
    expect(manager.seen.map((m) => m.op)).toEqual(['rootCA', 'join'])
    expect(manager.connections()).toBe(1)
  })

  it('sends the token to no impostor that relays the real root CA, nor to a worker of the cluster', async () => {
    // Its own certificate is from another CA: it cannot prove a certificate of the token's root.
    const other = pki.createRootCA()
    const impostor = await joinListener(
      ca,
      tokens,
      credentialsOf(other, clusterId, 'swarm-manager'),
      clusterId,
    )
    await expect(joinCluster(impostor.address, tokens.worker, node)).rejects.toThrow()
    expect(impostor.seen.map((m) => m.op)).toEqual(['rootCA'])
    // A worker's certificate chains to the root, but a worker does not take joins.
    const worker = await joinListener(ca, tokens, credentialsOf(ca, clusterId, 'swarm-worker'), clusterId)
    await expect(joinCluster(worker.address, tokens.worker, node)).rejects.toThrow()
    expect(worker.seen.map((m) => m.op)).toEqual(['rootCA'])
  })

  it('refuses a token of another cluster before sending it', async () => {
    const manager = await joinListener(ca, tokens, credentialsOf(ca, clusterId, 'swarm-manager'), clusterId)
    const foreign = pki.generateJoinTokens(pki.createRootCA().pem).worker
    await expect(joinCluster(manager.address, foreign, node)).rejects.toThrow(
      'remote CA does not match fingerprint',
    )
    expect(manager.seen.map((m) => m.op)).toEqual(['rootCA'])
  })

  it('joins over a verified second connection when the manager needs an intermediate (a root rotation)', async () => {
    // Issued by the new root, whose cross-signed certificate leads to the old root the token names.
    const rotation = pki.startRootRotation(ca)
    const manager = await joinListener(
      rotation.newCA,
      tokens,
      credentialsOf(rotation.newCA, clusterId, 'swarm-manager'),
      clusterId,
      ca.pem,
    )
    const { credentials } = await joinCluster(manager.address, tokens.worker, node)
    expect(credentials.identity.role).toBe('swarm-worker')
    expect(manager.seen.map((m) => m.op)).toEqual(['rootCA', 'join'])
    expect(manager.connections()).toBe(2)
  })
})
