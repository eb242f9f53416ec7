// Real mutual TLS 1.3 handshakes over node:tls on 127.0.0.1 with certificates this package issued.
import type { AddressInfo } from 'node:net'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { afterAll, describe, expect, it } from 'vitest'
import {
  type AuthorizePolicy,
  authorize,
  createCSR,
  createRootCA,
  generateClusterId,
  generateKeyPair,
  generateNodeId,
  issueNodeCertificate,
  type NodeIdentity,
  type NodeRole,
  type PeerPolicy,
  peerCertificateIdentity,
  type RootCA,
  revocationList,
  startRootRotation,
  type TlsCredentials,
  tlsOptions,
  verifyTlsPeer,
} from '../src/index.js'

const HOUR = 3_600_000
const clusterId = generateClusterId()
const ca = createRootCA()

function node(
  role: NodeRole,
  o: { ca?: RootCA; clusterId?: string; at?: number; validityMs?: number; roots?: string } = {},
): TlsCredentials & { identity: NodeIdentity } {
  const key = generateKeyPair()
  const nodeId = generateNodeId()
  const signer = o.ca ?? ca
  const issued = issueNodeCertificate(signer, createCSR(key.privateKey), {
    nodeId,
    role,
    clusterId: o.clusterId ?? clusterId,
    ...(o.at !== undefined ? { now: o.at } : {}),
    ...(o.validityMs !== undefined ? { validityMs: o.validityMs } : {}),
  })
  return {
    key,
    certificate: issued.chain,
    roots: o.roots ?? signer.pem,
    identity: { nodeId, role, clusterId: o.clusterId ?? clusterId },
  }
}

interface Outcome {
  /** What the client saw: the server's greeting, or the error that ended it. */
  client: { ok: true; protocol: string | null; serverIdentity: NodeIdentity } | { ok: false; error: string }
  /** The identity the server authorized, or the reason it refused. */
  server:
    | { ok: true; identity: NodeIdentity; viaSubject: NodeIdentity }
    | { ok: false; error: string }
    | undefined
}

const servers: ReturnType<typeof createServer>[] = []
afterAll(() => {
  for (const s of servers) s.close()
})

async function handshake(
  serverCreds: TlsCredentials,
  clientCreds: TlsCredentials,
  policy: { server?: Partial<AuthorizePolicy>; client?: Partial<PeerPolicy> | null } = {},
): Promise<Outcome> {
  let server: Outcome['server']
  const serverDone = new Promise<void>((resolveServer) => {
    const srv = createServer(tlsOptions(serverCreds), (socket: TLSSocket) => {
      try {
        const identity = verifyTlsPeer(socket, {
          roles: ['swarm-manager', 'swarm-worker'],
          clusterId,
          ...policy.server,
        })
        // The same decision from the subject node:tls reports, as a transport's TLS hook would see it.
        const subject = socket.getPeerCertificate().subject
        const viaSubject = authorize(
          { cn: subject.CN, ou: subject.OU, o: subject.O },
          { roles: ['swarm-manager', 'swarm-worker'], clusterId, ...policy.server },
        )
        server = { ok: true, identity, viaSubject }
        socket.end(`hello ${identity.nodeId}\n`)
      } catch (err) {
        server = { ok: false, error: (err as Error).message }
        socket.destroy()
      }
      resolveServer()
    })
    srv.on('tlsClientError', (err) => {
      server ??= { ok: false, error: err.message }
      resolveServer()
    })
    // node:tls may drop a client that failed verification without an event: the TCP close still comes.
    srv.on('connection', (tcp) =>
      tcp.on('close', () => {
        server ??= { ok: false, error: 'connection dropped during the handshake' }
        resolveServer()
      }),
    )
    servers.push(srv)
    srv.listen(0, '127.0.0.1')
  })
  const srv = servers.at(-1)!
  await new Promise<void>((r) => (srv.listening ? r() : srv.once('listening', () => r())))
  const port = (srv.address() as AddressInfo).port
  const client = await new Promise<Outcome['client']>((resolve) => {
    const socket = connect({
      ...(policy.client === null
        ? tlsOptions(clientCreds)
        : tlsOptions(clientCreds, { peer: { clusterId, ...policy.client } })),
      host: '127.0.0.1',
      port,
    })
    let data = ''
    let serverIdentity: NodeIdentity | undefined
    let protocol: string | null = null
    socket.on('secureConnect', () => {
      protocol = socket.getProtocol()
      serverIdentity = peerCertificateIdentity(socket.getPeerCertificate())
    })
    socket.setEncoding('utf8')
    socket.on('data', (d) => (data += d))
    socket.on('error', (err) => resolve({ ok: false, error: err.message }))
    socket.on('close', () => {
      if (data.startsWith('hello ') && serverIdentity) {
        resolve({ ok: true, protocol, serverIdentity })
      } else resolve({ ok: false, error: 'connection closed by server' })
    })
  })
  await serverDone
  srv.close()
  return { client, server }
}

describe('mutual TLS 1.3 with issued certificates', () => {
  it("succeeds between two good certificates, both sides learning the other's identity", async () => {
    const manager = node('swarm-manager')
    const worker = node('swarm-worker')
    const r = await handshake(manager, worker)
    expect(r.client).toEqual({ ok: true, protocol: 'TLSv1.3', serverIdentity: manager.identity })
    expect(r.server).toEqual({ ok: true, identity: worker.identity, viaSubject: worker.identity })
  })

  it('fails for an expired client certificate', async () => {
    const expired = node('swarm-worker', { at: Date.now() - 3 * HOUR, validityMs: HOUR })
    const r = await handshake(node('swarm-manager'), expired)
    // node:tls drops a client whose certificate fails OpenSSL's verification before any application code runs.
    expect(r.client.ok).toBe(false)
    expect(r.server).toMatchObject({ ok: false })
  })

  it('fails for an expired server certificate', async () => {
    const expired = node('swarm-manager', { at: Date.now() - 3 * HOUR, validityMs: HOUR })
    const r = await handshake(expired, node('swarm-worker'))
    expect(r.client).toMatchObject({ ok: false })
    expect((r.client as { error: string }).error).toMatch(/expired/i)
  })

  it('fails for a certificate of another cluster, on both sides', async () => {
    const other = node('swarm-worker', { clusterId: generateClusterId() })
    const r = await handshake(node('swarm-manager'), other)
    expect(r.client.ok).toBe(false)
    expect(r.server).toEqual({
      ok: false,
      error: `Permission denied: remote certificate not part of organization: ${clusterId}`,
    })
    const r2 = await handshake(
      node('swarm-manager', { clusterId: generateClusterId() }),
      node('swarm-worker'),
    )
    expect(r2.client).toEqual({
      ok: false,
      error: `Permission denied: remote certificate not part of organization: ${clusterId}`,
    })
  })

  it('fails for a revoked (removed) node', async () => {
    const removed = node('swarm-worker')
    const revocations = revocationList()
    revocations.revoke(removed.identity.nodeId, Date.now() + 90 * 24 * HOUR)
    const r = await handshake(node('swarm-manager'), removed, { server: { revocations } })
    expect(r.client.ok).toBe(false)
    expect(r.server).toEqual({
      ok: false,
      error: `Permission denied: node ${removed.identity.nodeId} was removed from swarm`,
    })
  })

  it('fails for a certificate from a foreign CA', async () => {
    const foreign = createRootCA()
    const intruder = node('swarm-worker', { ca: foreign, roots: ca.pem })
    const r = await handshake(node('swarm-manager'), intruder)
    expect(r.client.ok).toBe(false)
    expect(r.server).toMatchObject({ ok: false })
    const fakeServer = node('swarm-manager', { ca: foreign, roots: ca.pem })
    const r2 = await handshake(fakeServer, node('swarm-worker'))
    expect(r2.client).toMatchObject({ ok: false })
    expect((r2.client as { error: string }).error).toMatch(
      /unable to (verify the first certificate|get local issuer certificate)/,
    )
  })

  it('connects by IP without a client policy: identity comes from the certificate, not the host name', async () => {
    const manager = node('swarm-manager')
    const r = await handshake(manager, node('swarm-worker'), { client: null })
    expect(r.client).toMatchObject({ ok: true, serverIdentity: manager.identity })
  })

  it('refuses a role the client does not accept', async () => {
    const r = await handshake(node('swarm-worker'), node('swarm-worker'), {
      client: { roles: ['swarm-manager'] },
    })
    expect(r.client).toEqual({
      ok: false,
      error: 'Permission denied: remote certificate not part of OUs: [swarm-manager]',
    })
  })

  it('works across a root rotation: new chains to old-root peers, and after the switch', async () => {
    const rotation = startRootRotation(ca)
    // mid-rotation: a re-issued node (leaf + cross-signed) talks to a node still on the old root
    const reissued = node('swarm-manager', { ca: rotation.newCA, roots: ca.pem })
    const old = node('swarm-worker')
    expect((await handshake(reissued, old)).client.ok).toBe(true)
    expect((await handshake(old, reissued)).server).toMatchObject({ ok: true })
    // after the switch: both trust only the new root
    const a = node('swarm-manager', { ca: { ...rotation.newCA, intermediates: [] } })
    const b = { ...reissued, roots: rotation.newCA.pem }
    const r = await handshake(a, b)
    expect(r.client.ok).toBe(true)
    expect(r.server).toMatchObject({ ok: true })
  })
})
