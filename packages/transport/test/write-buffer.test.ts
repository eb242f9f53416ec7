// The stream transports' write buffer (issue #18, manager memory): a manager holds thousands of worker
// sessions, mostly quiet (a heartbeat answer every few seconds). Each session's write buffer was 256 KiB and its
// write position only moved forward, so every page of it was touched in turn and stayed resident: at 5,000
// nodes, some 2,500 sessions on a manager that took over were 640 MiB of write buffers. A quiet connection now
// writes each frame over the start of the same buffer once the socket is done with the previous one.
import type { Socket } from 'node:net'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { type Connection, type Transport, tcpTransport, tlsTransport } from '../src/index.js'
import { resolveLimits } from '../src/internal/limits.js'
import { StreamConnection } from '../src/internal/stream-connection.js'
import { testPki } from './certs.js'
import { turn, waitFor } from './helpers.js'

const pki = testPki('cluster-1')
afterAll(() => pki.cleanup())
const manager = pki.issue('node-m1', 'swarm-manager')

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** What the test reads of a stream connection's write side (its private fields). */
interface WriteSide {
  arena?: Buffer
  arenaEnd: number
  spare: Buffer[]
  bufferedBytes: number
}

async function pair(make: () => Transport): Promise<{ client: Connection; received: () => number[] }> {
  const server = make()
  const client = make()
  cleanups.push(
    () => client.close(),
    () => server.close(),
  )
  const listener = await server.listen('127.0.0.1:0')
  const got: number[] = []
  listener.on('connection:open', (c) => c.on('frame:receive', (f) => got.push(f.byteLength)))
  return { client: await client.dial(listener.address), received: () => got }
}

const transports: [string, () => Transport][] = [
  ['tcp', () => tcpTransport()],
  ['tls', () => tlsTransport({ ...manager, ca: pki.ca })],
]

describe('stream connection write buffer', () => {
  for (const [name, make] of transports) {
    it(`${name}: a quiet connection writes every frame over the start of one buffer`, async () => {
      const { client, received } = await pair(make)
      const w = client as unknown as WriteSide
      const frame = new Uint8Array(3000).fill(7)
      const buffers = new Set<Buffer>()
      // 200 frames of 3 KB: 600 KB in all, more than one buffer would hold if the position only moved on.
      for (let i = 0; i < 200; i++) {
        client.send(frame)
        await waitFor(() => received().length === i + 1, `frame ${i}`)
        await waitFor(() => w.bufferedBytes === 0 && w.arenaEnd === 0, `write ${i} done and rewound`)
        if (w.arena) buffers.add(w.arena)
      }
      expect(buffers.size).toBe(1)
      expect(w.spare).toEqual([])
      expect(received().every((n) => n === 3000)).toBe(true)
    })
  }

  it('never writes over bytes the socket has not finished writing', async () => {
    // A socket whose writes finish when the test says (a peer that reads slowly): every chunk handed to it
    // must still hold the same bytes when its write finishes, and every frame must arrive once, in order.
    const sock = new SlowSocket()
    const conn = new StreamConnection(
      sock as unknown as Socket,
      'a',
      'b',
      undefined,
      true,
      resolveLimits(undefined),
      systemClock,
    )
    const sent: number[] = []
    const sizes = [300, 5000, 7, 16 * 1024, 900, 40_000, 12, 3000]
    for (let round = 0; round < 400; round++) {
      for (let k = 0; k <= round % 3; k++) {
        const n = sizes[(round + k) % sizes.length]!
        conn.send(new Uint8Array(n).fill(sent.length & 0xff))
        sent.push(n)
      }
      await turn()
      // The peer reads in fits: some turns nothing finishes, some turns one write, some turns all of them.
      if (round % 5 === 1) sock.finish(1)
      else if (round % 7 === 3) sock.finish(Number.POSITIVE_INFINITY)
    }
    while (sock.pendingWrites > 0 || conn.bufferedBytes > 0) {
      sock.finish(Number.POSITIVE_INFINITY)
      await turn()
    }
    expect(sock.overwritten).toBe(0)
    const all = Buffer.concat(sock.written)
    let at = 0
    for (const [i, n] of sent.entries()) {
      expect(all.readUInt32BE(at)).toBe(n)
      expect(all.subarray(at + 4, at + 4 + n).every((b) => b === (i & 0xff))).toBe(true)
      at += 4 + n
    }
    expect(at).toBe(all.length)
  })
})

/**
 * Just enough of a net.Socket for StreamConnection, whose writes finish only when `finish` is called (in
 * order, as a socket's do); it checks that a chunk's bytes did not change between `write` and its finish.
 */
class SlowSocket {
  readonly written: Buffer[] = []
  overwritten = 0
  #pending: { chunk: Buffer; copy: Buffer; cb?: (err?: Error | null) => void }[] = []
  #listeners = new Map<string, (...args: unknown[]) => void>()
  #needDrain = false

  get pendingWrites(): number {
    return this.#pending.length
  }
  get writableLength(): number {
    return this.#pending.reduce((a, p) => a + p.chunk.length, 0)
  }
  on(event: string, fn: (...args: unknown[]) => void): this {
    this.#listeners.set(event, fn)
    return this
  }
  off(): this {
    return this
  }
  cork(): void {}
  uncork(): void {}
  end(): void {}
  destroy(): void {}
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    this.#pending.push({ chunk, copy: Buffer.from(chunk), cb })
    const ok = this.writableLength < 16 * 1024
    if (!ok) this.#needDrain = true
    return ok
  }
  /** Finishes the `n` oldest writes, then emits `drain` if a write had said to wait and none is left. */
  finish(n: number): void {
    for (let i = 0; i < n && this.#pending.length > 0; i++) {
      const p = this.#pending.shift()!
      if (!p.chunk.equals(p.copy)) this.overwritten++
      this.written.push(p.copy)
      p.cb?.(null)
    }
    if (this.#needDrain && this.#pending.length === 0) {
      this.#needDrain = false
      this.#listeners.get('drain')?.()
    }
  }
}
