/**
 * @packageDocumentation
 * The compliance suite every `Transport` implementation runs (memory, TCP and TLS here; yours too):
 *
 * ```ts
 * import { transportCompliance } from '@swarmkit/transport/testing'
 * transportCompliance('tcp', async () => ({
 *   server: tcpTransport(), client: tcpTransport(),
 *   listenAddress: '127.0.0.1:0', unusedAddress: '127.0.0.1:1',
 * }))
 * ```
 *
 * It needs vitest (an optional peer dependency).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { seededRandom } from '../internal/random.js'
import { rpcSession } from '../session.js'
import type { Connection, Listener, PeerIdentity, Transport } from '../types.js'

/** What a compliance run needs: two transports that can reach each other. */
export interface CompliancePair {
  /** The transport that listens. */
  readonly server: Transport
  /** The transport that dials. */
  readonly client: Transport
  /** Where `server` listens (port 0 is fine); dials go to the listener's reported address. */
  readonly listenAddress: string
  /** An address `client` can dial where nothing listens. */
  readonly unusedAddress: string
  /** What the server should see as the client's identity (omit for transports without identity). */
  readonly clientIdentity?: Partial<PeerIdentity> | undefined
  /** What the client should see as the server's identity. */
  readonly serverIdentity?: Partial<PeerIdentity> | undefined
  /** The largest frame the transports were configured for (default 4 MiB). */
  readonly maxFrameBytes?: number | undefined
  /** The high-water mark the transports were configured for (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined
  /** Extra cleanup after each test (the transports themselves are closed by the suite). */
  readonly cleanup?: (() => Promise<void>) | undefined
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

interface Linked {
  pair: CompliancePair
  listener: Listener
  dialed: Connection
  accepted: Connection
  address: string
}

/** Register the compliance tests for a transport under `describe(name)`. */
export function transportCompliance(
  name: string,
  factory: () => CompliancePair | Promise<CompliancePair>,
): void {
  if (typeof name !== 'string') throw new TypeError('name must be a string')
  if (typeof factory !== 'function') throw new TypeError('factory must be a function')

  describe(`${name}: Transport compliance`, () => {
    const open: CompliancePair[] = []

    afterEach(async () => {
      for (const pair of open.splice(0)) {
        await pair.client.close()
        await pair.server.close()
        await pair.cleanup?.()
      }
    })

    async function make(): Promise<CompliancePair> {
      const pair = await factory()
      open.push(pair)
      return pair
    }

    async function link(): Promise<Linked> {
      const pair = await make()
      const listener = await pair.server.listen(pair.listenAddress)
      const accepted: Connection[] = []
      listener.on('connection:open', (c) => accepted.push(c))
      const dialed = await pair.client.dial(listener.address)
      await waitFor(() => accepted.length === 1, 'the accepted connection')
      return { pair, listener, dialed, accepted: accepted[0]!, address: listener.address }
    }

    function received(c: Connection): Uint8Array[] {
      const frames: Uint8Array[] = []
      c.on('frame:receive', (f) => frames.push(Uint8Array.from(f)))
      return frames
    }

    it('carries frames both ways, whole and in order, including empty and large ones', async () => {
      const { dialed, accepted } = await link()
      const random = seededRandom(1)
      const sizes = [0, 1, 3, 4, 5, 100, 1024, 65_535, 65_536, 70_000, 1 << 20]
      for (let i = 0; i < 300; i++) sizes.push(Math.floor(random() * 5000))
      const frames = sizes.map((n, i) => {
        const f = new Uint8Array(n)
        for (let j = 0; j < n; j++) f[j] = (i * 31 + j) & 0xff
        return f
      })
      const atServer = received(accepted)
      const atClient = received(dialed)
      for (const f of frames) dialed.send(f)
      for (const f of frames.slice(0, 50)) accepted.send(f)
      await waitFor(() => atServer.length === frames.length && atClient.length === 50, 'all frames')
      // Compared as bytes: deep equality of large typed arrays is slow.
      const same = (a: Uint8Array, b: Uint8Array) =>
        a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
      expect(atServer.every((f, i) => same(f, frames[i]!))).toBe(true)
      expect(atClient.every((f, i) => same(f, frames[i]!))).toBe(true)
    })

    it('reports addresses, direction and identity', async () => {
      const { pair, dialed, accepted, address } = await link()
      expect(typeof address).toBe('string')
      expect(dialed.outbound).toBe(true)
      expect(accepted.outbound).toBe(false)
      expect(dialed.remoteAddress).toBe(address)
      expect(dialed.id).not.toBe(accepted.id)
      if (pair.clientIdentity) expect(accepted.remoteIdentity).toMatchObject(pair.clientIdentity)
      if (pair.serverIdentity) expect(dialed.remoteIdentity).toMatchObject(pair.serverIdentity)
    })

    it('refuses to send a frame over the limit and stays usable', async () => {
      const { pair, dialed, accepted } = await link()
      const max = pair.maxFrameBytes ?? 4 * 1024 * 1024
      expect(dialed.maxFrameBytes).toBe(max)
      expect(() => dialed.send(new Uint8Array(max + 1))).toThrow(
        expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
      )
      const got = received(accepted)
      dialed.send(Uint8Array.of(9))
      await waitFor(() => got.length === 1, 'a frame after the refused one')
      expect(got[0]).toEqual(Uint8Array.of(9))
      expect(() => dialed.send('text' as never)).toThrow(TypeError)
    })

    it('delivers what was sent before a graceful close, then closes both sides', async () => {
      const { dialed, accepted } = await link()
      const got = received(accepted)
      let serverSideClosed = false
      let serverError: unknown
      accepted.on('connection:close', (e) => {
        serverSideClosed = true
        serverError = e
      })
      for (let i = 0; i < 100; i++) dialed.send(Uint8Array.of(i))
      await dialed.close()
      await dialed.close()
      expect(dialed.closed).toBe(true)
      expect(() => dialed.send(Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'CLOSED' }))
      await waitFor(() => serverSideClosed, 'the peer to see the close')
      expect(serverError).toBeUndefined()
      expect(got.length).toBe(100)
      expect(accepted.closed).toBe(true)
    })

    it('lets the peer see an abort', async () => {
      const { dialed, accepted } = await link()
      let closed = false
      dialed.on('connection:close', () => {
        closed = true
      })
      accepted.abort()
      await waitFor(() => closed, 'the dialer to see the abort')
      expect(dialed.closed).toBe(true)
    })

    it('fails a dial to an address where nothing listens with a TransportError', async () => {
      const pair = await make()
      const error = await pair.client.dial(pair.unusedAddress).catch((e: unknown) => e)
      expect(error).toMatchObject({ name: 'TransportError' })
      expect(['DIAL_FAILED', 'TIMEOUT']).toContain((error as { code: string }).code)
    })

    it('honours an aborted signal on dial and listen', async () => {
      const pair = await make()
      await expect(
        pair.server.listen(pair.listenAddress, { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({
        code: 'ABORTED',
      })
      await expect(
        pair.client.dial(pair.unusedAddress, { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({
        code: 'ABORTED',
      })
    })

    it('stops accepting when the listener closes; open connections keep working', async () => {
      const { pair, listener, dialed, accepted, address } = await link()
      let closedEvent = false
      listener.on('listener:close', () => {
        closedEvent = true
      })
      await listener.close()
      expect(closedEvent).toBe(true)
      await expect(pair.client.dial(address)).rejects.toMatchObject({ name: 'TransportError' })
      const got = received(accepted)
      dialed.send(Uint8Array.of(1, 2, 3))
      await waitFor(() => got.length === 1, 'a frame on the open connection')
    })

    it('signals backpressure and drains', async () => {
      const { dialed, accepted } = await link()
      let bytes = 0
      accepted.on('frame:receive', (f) => {
        bytes += f.byteLength
      })
      const frame = new Uint8Array(64 * 1024)
      let sent = 0
      let full = false
      while (!full && sent < 1000) {
        full = !dialed.send(frame)
        sent++
      }
      expect(full).toBe(true)
      expect(dialed.writable).toBe(false)
      expect(dialed.bufferedBytes).toBeGreaterThan(0)
      await new Promise<void>((resolve) => dialed.once('connection:drain', resolve))
      expect(dialed.writable).toBe(true)
      await waitFor(() => bytes === sent * frame.byteLength, 'every byte at the peer')
    })

    // The backpressure contract, the same for every transport so that code tested over memory behaves the same
    // over TCP and TLS: `send` always queues the frame (unless it throws); it returns false when the queued
    // bytes, counting each frame with its 4-byte length prefix, are over the high-water mark; then exactly one
    // `connection:drain` follows once they are back at or under it. Frames keep their order throughout.
    it('counts each queued frame with its 4-byte length prefix against the high-water mark', async () => {
      const { pair, dialed, accepted } = await link()
      const hwm = pair.highWaterMarkBytes ?? 1024 * 1024
      const got = received(accepted)
      expect(dialed.bufferedBytes).toBe(0)
      expect(dialed.send(new Uint8Array(hwm - 4))).toBe(true)
      expect(dialed.bufferedBytes).toBe(hwm)
      expect(dialed.writable).toBe(true)
      expect(dialed.send(Uint8Array.of(1))).toBe(false)
      expect(dialed.bufferedBytes).toBe(hwm + 5)
      expect(dialed.writable).toBe(false)
      await new Promise<void>((resolve) => dialed.once('connection:drain', resolve))
      await waitFor(() => got.length === 2, 'both frames')
      expect(got[0]!.byteLength).toBe(hwm - 4)
      expect(got[1]).toEqual(Uint8Array.of(1))
    })

    it('queues and delivers, in order, every frame sent after send returned false', async () => {
      const { pair, dialed, accepted } = await link()
      const hwm = pair.highWaterMarkBytes ?? 1024 * 1024
      const got = received(accepted)
      let drains = 0
      dialed.on('connection:drain', () => drains++)
      const size = Math.max(1, Math.floor(hwm / 3))
      const results: boolean[] = []
      // Well past the high-water mark without waiting: nothing is dropped.
      for (let i = 0; i < 12; i++) {
        const f = new Uint8Array(size)
        f[0] = i
        results.push(dialed.send(f))
      }
      const firstFalse = results.indexOf(false)
      expect(firstFalse).toBeGreaterThan(0)
      expect(results.slice(firstFalse).every((r) => r === false)).toBe(true)
      await waitFor(() => got.length === 12, 'every frame')
      expect(got.map((f) => f[0])).toEqual([...Array(12).keys()])
      await waitFor(() => drains === 1, 'the drain')
      expect(dialed.writable).toBe(true)
      // Sending again below the mark is fine and signals nothing.
      expect(dialed.send(Uint8Array.of(99))).toBe(true)
      await waitFor(() => got.length === 13, 'the frame after the drain')
      expect(drains).toBe(1)
    })

    it('emits connection:drain only after a send returned false, once per time', async () => {
      const { pair, dialed, accepted } = await link()
      const hwm = pair.highWaterMarkBytes ?? 1024 * 1024
      const got = received(accepted)
      let drains = 0
      dialed.on('connection:drain', () => drains++)
      for (let i = 0; i < 50; i++) expect(dialed.send(new Uint8Array(64))).toBe(true)
      await waitFor(() => got.length === 50, 'the small frames')
      expect(drains).toBe(0)
      for (let round = 1; round <= 3; round++) {
        expect(dialed.send(new Uint8Array(hwm))).toBe(false)
        await waitFor(() => drains === round, `drain ${round}`)
      }
      await waitFor(() => got.length === 53, 'the large frames')
      expect(drains).toBe(3)
    })

    it('emits no drain once the connection is aborted, and the peer sees it close', async () => {
      const { pair, dialed, accepted } = await link()
      const hwm = pair.highWaterMarkBytes ?? 1024 * 1024
      let drained = false
      let closed = false
      dialed.on('connection:drain', () => {
        drained = true
      })
      accepted.on('connection:close', () => {
        closed = true
      })
      expect(dialed.send(new Uint8Array(hwm))).toBe(false)
      dialed.abort()
      expect(dialed.closed).toBe(true)
      expect(dialed.writable).toBe(false)
      await waitFor(() => closed, 'the peer to see the abort')
      expect(drained).toBe(false)
    })

    it('serves many connections at once', async () => {
      const pair = await make()
      const listener = await pair.server.listen(pair.listenAddress)
      const totals = new Map<number, number>()
      listener.on('connection:open', (c) => {
        c.on('frame:receive', (f) => {
          totals.set(c.id, (totals.get(c.id) ?? 0) + f[0]!)
          c.send(f)
        })
      })
      const conns = await Promise.all(Array.from({ length: 16 }, () => pair.client.dial(listener.address)))
      const echoed = conns.map((c) => received(c))
      conns.forEach((c, i) => {
        for (let j = 0; j < 50; j++) c.send(Uint8Array.of(i + 1))
      })
      await waitFor(() => echoed.every((e) => e.length === 50), 'every echo')
      for (const [i, e] of echoed.entries()) expect(e.every((f) => f[0] === i + 1)).toBe(true)
    })

    it('closes its listeners and connections when the transport closes', async () => {
      const { pair, dialed, accepted } = await link()
      let dialedClosed = false
      dialed.on('connection:close', () => {
        dialedClosed = true
      })
      await pair.server.close()
      expect(accepted.closed).toBe(true)
      await waitFor(() => dialedClosed, 'the dialer to see the transport close')
      await expect(pair.server.listen(pair.listenAddress)).rejects.toMatchObject({ code: 'CLOSED' })
    })

    it('runs the messaging layer: calls, one-way messages and streams', async () => {
      const { dialed, accepted } = await link()
      const notes: unknown[] = []
      rpcSession(accepted, {
        clock: undefined,
        methods: {
          add: { kind: 'call', handler: ([a, b]: [number, number]) => a + b },
          note: { kind: 'notify', handler: (p) => void notes.push(p) },
          count: { kind: 'stream', handler: (n: number) => Array.from({ length: n }, (_, i) => i) },
        },
      })
      const client = rpcSession(dialed)
      expect(await client.call('add', [2, 3])).toBe(5)
      client.notify('note', 'hi')
      const items: number[] = []
      for await (const v of client.stream<number>('count', 200, { window: 16 })) items.push(v)
      expect(items).toEqual([...Array(200).keys()])
      await waitFor(() => notes.length === 1, 'the one-way message')
      await client.close()
    })
  })
}
