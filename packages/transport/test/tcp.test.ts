import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Connection,
  type Listener,
  rpcClient,
  rpcServer,
  type Transport,
  type TransportError,
  tcpTransport,
} from '../src/index.js'
import { waitFor } from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function transport(options?: Parameters<typeof tcpTransport>[0]): Transport {
  const t = tcpTransport(options)
  cleanups.push(() => t.close())
  return t
}

async function rawSocket(address: string): Promise<Socket> {
  const [host, port] = address.split(':')
  const s = connect({ host: host!, port: Number(port) })
  s.on('error', () => {})
  cleanups.push(() => void s.destroy())
  await new Promise<void>((resolve) => s.once('connect', () => resolve()))
  return s
}

/** A listener that records every accepted connection and how each closed. */
async function watched(t: Transport) {
  const listener: Listener = await t.listen('127.0.0.1:0')
  const closes: (TransportError | undefined)[] = []
  const accepted: Connection[] = []
  listener.on('connection:open', (c) => {
    accepted.push(c)
    c.on('connection:close', (e) => closes.push(e))
  })
  return { listener, closes, accepted }
}

describe('tcpTransport', () => {
  it('closes only the connection that sends an oversized frame', async () => {
    const server = transport({ maxFrameBytes: 1024 })
    const { listener, closes, accepted } = await watched(server)
    const good = await transport({ maxFrameBytes: 1024 }).dial(listener.address)
    const bad = await rawSocket(listener.address)
    await waitFor(() => accepted.length === 2)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1025)
    bad.write(header)
    await waitFor(() => closes.length === 1)
    expect(closes[0]).toMatchObject({ code: 'FRAME_TOO_LARGE' })
    const got: number[] = []
    const goodServerSide = accepted.find((c) => !c.closed)!
    goodServerSide.on('frame:receive', (f) => got.push(f.byteLength))
    good.send(new Uint8Array(1024))
    await waitFor(() => got.length === 1)
    expect(got).toEqual([1024])
  })

  it('reports a frame cut short by the peer closing', async () => {
    const server = transport()
    const { listener, closes } = await watched(server)
    const bad = await rawSocket(listener.address)
    const frame = Buffer.alloc(4 + 10)
    frame.writeUInt32BE(100)
    bad.end(frame)
    await waitFor(() => closes.length === 1)
    expect(closes[0]).toMatchObject({ code: 'BAD_FRAME' })
  })

  it('parses frames split at every byte boundary', async () => {
    const server = transport()
    const { listener, accepted } = await watched(server)
    const sock = await rawSocket(listener.address)
    await waitFor(() => accepted.length === 1)
    const got: string[] = []
    accepted[0]!.on('frame:receive', (f) => got.push(Buffer.from(f).toString()))
    const parts = ['a', '', 'hello', 'x'.repeat(300)]
    const wire = Buffer.concat(
      parts.map((p) => {
        const h = Buffer.alloc(4)
        h.writeUInt32BE(p.length)
        return Buffer.concat([h, Buffer.from(p)])
      }),
    )
    sock.setNoDelay(true)
    for (let i = 0; i < wire.length; i++) {
      sock.write(wire.subarray(i, i + 1))
      if (i % 16 === 0) await new Promise((r) => setImmediate(r))
    }
    await waitFor(() => got.length === parts.length)
    expect(got).toEqual(parts)
  })

  it('drops a peer that does not read instead of buffering without limit', async () => {
    const server = transport({
      maxFrameBytes: 64 * 1024,
      highWaterMarkBytes: 256 * 1024,
      maxBufferedBytes: 1 << 20,
    })
    const { listener, accepted, closes } = await watched(server)
    const lazy = await rawSocket(listener.address)
    lazy.pause()
    await waitFor(() => accepted.length === 1)
    const c = accepted[0]!
    const frame = new Uint8Array(60 * 1024)
    let thrown: unknown
    let maxBuffered = 0
    // The kernel takes some megabytes first; keep going (yielding so writes happen) until the limit.
    for (let round = 0; round < 2000 && !thrown; round++) {
      try {
        for (let i = 0; i < 8; i++) c.send(frame)
      } catch (e) {
        thrown = e
      }
      maxBuffered = Math.max(maxBuffered, c.bufferedBytes)
      await new Promise((r) => setImmediate(r))
    }
    expect(thrown).toMatchObject({ code: 'BUFFER_OVERFLOW' })
    expect(maxBuffered).toBeLessThanOrEqual(1 << 20)
    await waitFor(() => closes.length === 1)
    expect(closes[0]).toMatchObject({ code: 'BUFFER_OVERFLOW' })
  })

  it('refuses an address in use and malformed addresses', async () => {
    const a = transport()
    const l = await a.listen('127.0.0.1:0')
    await expect(transport().listen(l.address)).rejects.toMatchObject({ code: 'ADDRESS_IN_USE' })
    await expect(a.listen('no-port')).rejects.toThrow(TypeError)
    await expect(a.dial('127.0.0.1:99999')).rejects.toThrow(TypeError)
    expect(() => tcpTransport({ maxFrameBytes: 0 })).toThrow(RangeError)
    expect(() => tcpTransport({ maxBufferedBytes: 10, maxFrameBytes: 100 })).toThrow(RangeError)
  })

  it('lets an rpc client ride out a server restart on the same port', async () => {
    const methods = { ping: { kind: 'call' as const, handler: () => 'pong' } }
    const t1 = transport()
    const s1 = rpcServer({ transport: t1, methods })
    const address = await s1.listen('127.0.0.1:0')
    const client = rpcClient({
      transport: transport(),
      address,
      reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    })
    cleanups.push(() => client.close())
    expect(await client.call('ping')).toBe('pong')
    await s1.close()
    await t1.close()
    await waitFor(() => !client.connected, 'the client to notice')
    const s2 = rpcServer({ transport: transport(), methods })
    await s2.listen(address)
    cleanups.push(() => s2.close())
    expect(await client.call('ping', undefined, { timeoutMs: 20_000 })).toBe('pong')
  })

  it('keeps every message intact across sizes around the copy limit, interleaved', async () => {
    const got: number[] = []
    const server = rpcServer({
      transport: transport(),
      methods: {
        echo: { kind: 'call', handler: (p: Uint8Array) => p },
        note: { kind: 'notify', handler: (p: Uint8Array) => void got.push(p.byteLength) },
      },
    })
    const address = await server.listen('127.0.0.1:0')
    cleanups.push(() => server.close())
    const client = rpcClient({ transport: transport(), address })
    cleanups.push(() => client.close())
    await client.connect() // one-way messages are dropped until connected
    const sizes = [0, 1, 100, 16 * 1024 - 20, 16 * 1024, 16 * 1024 + 20, 100_000, 3, 70_000, 5]
    const payload = (n: number, seed: number) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)
    const calls = sizes.map((n, i) => {
      client.notify('note', payload(n, i))
      return client.call<Uint8Array>('echo', payload(n, i))
    })
    const answers = await Promise.all(calls)
    for (const [i, a] of answers.entries()) expect(Buffer.compare(a, payload(sizes[i]!, i))).toBe(0)
    await waitFor(() => got.length === sizes.length)
    expect(got).toEqual(sizes)
  })

  it('fails calls in flight with CLOSED when the client closes', async () => {
    const server = rpcServer({
      transport: transport(),
      methods: { hang: { kind: 'call', handler: () => new Promise(() => {}) } },
    })
    const address = await server.listen('127.0.0.1:0')
    cleanups.push(() => server.close())
    const client = rpcClient({ transport: transport(), address })
    await client.connect()
    const pending = client.call('hang').catch((e: unknown) => e)
    await client.close()
    expect(await pending).toMatchObject({ name: 'TransportError', code: 'CLOSED' })
  })
})
