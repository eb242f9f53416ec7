import { type AddressInfo, createServer, type Socket } from 'node:net'
import { TLSSocket, connect as tlsConnect } from 'node:tls'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  type Connection,
  type PeerIdentity,
  rpcClient,
  rpcServer,
  type TlsTransport,
  type TransportError,
  tlsTransport,
} from '../src/index.js'
import { testPki } from './certs.js'
import { waitFor } from './helpers.js'

const pki = testPki('cluster-1')
afterAll(() => pki.cleanup())
const manager = pki.issue('node-m1', 'swarm-manager')
const worker = pki.issue('node-w1', 'swarm-worker')
const otherCluster = pki.issue('node-x1', 'swarm-manager', 'cluster-2')
const foreign = pki.foreign('node-f1', 'swarm-manager')

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function tls(options: Parameters<typeof tlsTransport>[0]): TlsTransport {
  const t = tlsTransport(options)
  cleanups.push(() => t.close())
  return t
}

const sameCluster = (identity: PeerIdentity) => {
  if (identity.organization !== 'cluster-1') throw new Error(`wrong cluster ${identity.organization}`)
  return true
}

async function serve(authorize?: (identity: PeerIdentity) => boolean | undefined) {
  const server = tls({ ...manager, ca: pki.ca, authorize })
  const listener = await server.listen('127.0.0.1:0')
  const errors: TransportError[] = []
  const accepted: Connection[] = []
  listener.on('connection:error', (e) => errors.push(e))
  listener.on('connection:open', (c) => accepted.push(c))
  return { address: listener.address, errors, accepted }
}

describe('tlsTransport', () => {
  it('authenticates both sides and exposes the certificate subject', async () => {
    const { address, accepted } = await serve(sameCluster)
    const conn = await tls({ ...worker, ca: pki.ca, authorize: sameCluster }).dial(address)
    await waitFor(() => accepted.length === 1)
    expect(conn.remoteIdentity).toMatchObject({
      commonName: 'node-m1',
      organizationalUnit: 'swarm-manager',
      organization: 'cluster-1',
    })
    expect(conn.remoteIdentity?.certificate?.byteLength).toBeGreaterThan(100)
    expect(conn.remoteIdentity?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    expect(accepted[0]!.remoteIdentity).toMatchObject({
      commonName: 'node-w1',
      organizationalUnit: 'swarm-worker',
    })
  })

  it('refuses a peer the authorize hook rejects, on the accepting side', async () => {
    const { address, errors } = await serve(sameCluster)
    const client = tls({ ...otherCluster, ca: pki.ca })
    // In TLS 1.3 the client finishes first; the server refuses it right after.
    const conn = await client.dial(address).catch((e: TransportError) => e)
    if (!(conn instanceof Error)) {
      await waitFor(() => conn.closed, 'the refused connection to close')
    }
    await waitFor(() => errors.length === 1)
    expect(errors[0]).toMatchObject({ code: 'UNAUTHORIZED' })
    expect(errors[0]!.message).toMatch(/node-x1 is not authorized: wrong cluster cluster-2/)
  })

  it('refuses a server the authorize hook rejects, on the dialing side', async () => {
    const { address } = await serve()
    const client = tls({ ...worker, ca: pki.ca, authorize: (id) => id.organizationalUnit === 'swarm-worker' })
    await expect(client.dial(address)).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
  })

  it('refuses a certificate from another CA', async () => {
    const { address, errors } = await serve()
    const client = tls({ ...foreign, ca: pki.ca })
    const conn = await client.dial(address).catch((e: TransportError) => e)
    if (!(conn instanceof Error)) await waitFor(() => conn.closed, 'the refused connection to close')
    await waitFor(() => errors.length === 1)
    expect(errors[0]).toMatchObject({ code: 'HANDSHAKE_FAILED' })
    // And a client that trusts another CA refuses our server.
    const wary = tls({ ...manager, ca: pki.foreign('x', 'y').cert })
    await expect(wary.dial(address)).rejects.toMatchObject({ code: 'HANDSHAKE_FAILED' })
  })

  it('refuses clients without a certificate and clients below TLS 1.3', async () => {
    const { address, errors } = await serve()
    const [host, port] = address.split(':')
    const noCert = tlsConnect({ host, port: Number(port), ca: pki.ca, checkServerIdentity: () => undefined })
    noCert.on('error', () => {})
    await waitFor(() => errors.length === 1)
    noCert.destroy()
    const old = tlsConnect({
      host,
      port: Number(port),
      ...worker,
      ca: pki.ca,
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
    })
    old.on('error', () => {})
    await waitFor(() => errors.length === 2)
    old.destroy()
    expect(errors.map((e) => e.code)).toEqual(['HANDSHAKE_FAILED', 'HANDSHAKE_FAILED'])
  })

  it('lets a manager-only method refuse a worker certificate with a clear error', async () => {
    const server = rpcServer({
      transport: tls({ ...manager, ca: pki.ca }),
      methods: {
        'raft.propose': { kind: 'call', handler: () => 'accepted', roles: ['swarm-manager'] },
        'dispatcher.heartbeat': {
          kind: 'call',
          handler: () => 'ok',
          roles: ['swarm-worker', 'swarm-manager'],
        },
      },
    })
    const address = await server.listen('127.0.0.1:0')
    cleanups.push(() => server.close())
    const asWorker = rpcClient({ transport: tls({ ...worker, ca: pki.ca }), address })
    const asManager = rpcClient({ transport: tls({ ...manager, ca: pki.ca }), address })
    cleanups.push(
      () => asWorker.close(),
      () => asManager.close(),
    )
    expect(await asWorker.call('dispatcher.heartbeat')).toBe('ok')
    await expect(asWorker.call('raft.propose')).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(
        /raft\.propose is allowed for swarm-manager; the peer node-w1 has role swarm-worker/,
      ),
    })
    expect(await asManager.call('raft.propose')).toBe('accepted')
  })

  it('times out a dial whose handshake never completes', async () => {
    const silent = createServer((socket) => socket.on('error', () => {}))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()))
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())))
    const server = silent.address() as AddressInfo
    const sockets: Socket[] = []
    silent.on('connection', (s) => sockets.push(s))
    cleanups.push(() => {
      for (const s of sockets) s.destroy()
    })
    const client = tls({ ...worker, ca: pki.ca })
    await expect(client.dial(`127.0.0.1:${server.port}`, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    })
  })

  it('takes new credentials while it runs: new handshakes use them, open connections stay up', async () => {
    const next = testPki('cluster-1') // a new root, as after a root rotation
    cleanups.push(() => next.cleanup())
    const server = tls({ ...manager, ca: pki.ca })
    const listener = await server.listen('127.0.0.1:0')
    const accepted: Connection[] = []
    listener.on('connection:open', (c) => accepted.push(c))
    const client = tls({ ...worker, ca: pki.ca })
    const before = await client.dial(listener.address)
    await waitFor(() => accepted.length === 1)
    const frames: Uint8Array[] = []
    accepted[0]!.on('frame:receive', (f) => frames.push(f.slice()))

    server.setCredentials({ ...next.issue('node-m1', 'swarm-manager'), ca: next.ca })
    // A client that still trusts only the old root refuses the certificate the server shows now.
    await expect(tls({ ...worker, ca: pki.ca }).dial(listener.address)).rejects.toMatchObject({
      code: 'HANDSHAKE_FAILED',
    })
    // The connection made before is still up, both ways.
    before.send(new Uint8Array([7]))
    await waitFor(() => frames.length === 1)
    expect(before.closed).toBe(false)

    client.setCredentials({ ...next.issue('node-w1', 'swarm-worker'), ca: next.ca })
    const after = await client.dial(listener.address)
    expect(after.remoteIdentity?.commonName).toBe('node-m1')
    expect(after.remoteIdentity?.fingerprint256).not.toBe(before.remoteIdentity?.fingerprint256)
    // A plain node:tls client sees the new certificate too.
    const raw = tlsConnect({
      ...next.issue('node-w2', 'swarm-worker'),
      ca: next.ca,
      host: '127.0.0.1',
      port: Number(listener.address.split(':')[1]),
      checkServerIdentity: () => undefined,
    })
    const peer = await new Promise<string>((resolve, reject) => {
      raw.once('secureConnect', () => resolve(raw.getPeerCertificate().fingerprint256))
      raw.once('error', reject)
    })
    raw.destroy()
    expect(peer).toBe(after.remoteIdentity?.fingerprint256)

    // Bad credentials are refused and change nothing.
    expect(() => client.setCredentials({ key: 'nope', cert: manager.cert, ca: pki.ca })).toThrow(TypeError)
    expect(() => client.setCredentials(null as never)).toThrow(TypeError)
    const again = await client.dial(listener.address)
    expect(again.remoteIdentity?.fingerprint256).toBe(after.remoteIdentity?.fingerprint256)
  })

  it("does not build the server's certificate chain as objects for the name check it skips", async () => {
    // Node hands checkServerIdentity the whole chain as objects (getPeerCertificate(true), ~0.2 ms) after
    // every full handshake; names are not checked here, so a dial has no use for it.
    const { address } = await serve()
    const own = TLSSocket.prototype.getPeerCertificate
    let detailed = 0
    TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket, ...args: [boolean?]) {
      if (args[0] === true) detailed++
      return own.apply(this, args as [true])
    } as typeof own
    try {
      const conn = await tls({ ...worker, ca: pki.ca, authorize: sameCluster }).dial(address)
      expect(conn.remoteIdentity).toMatchObject({
        commonName: 'node-m1',
        organizationalUnit: 'swarm-manager',
      })
    } finally {
      TLSSocket.prototype.getPeerCertificate = own
    }
    expect(detailed).toBe(0)
  })

  it('checks its options', () => {
    expect(() => tlsTransport({ key: 'nope', cert: manager.cert, ca: pki.ca })).toThrow(TypeError)
    expect(() => tlsTransport({ ...manager, ca: [] })).toThrow(TypeError)
    expect(() => tlsTransport({ ...manager, ca: pki.ca, authorize: 3 as never })).toThrow(TypeError)
  })
})
