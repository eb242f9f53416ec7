import type { Clock, Connection, Listener, Transport } from '@swarmkit/transport'
import type { Message } from '../types.js'
import { BATCH_KIND, decodeBatch, decodeHello, encodeBatch, encodeHello } from './wire.js'

interface Outbound {
  conn: Connection | null
  dialing: boolean
  queue: Message[]
  retryAt: number
  backoff: number
}

const MAX_QUEUE = 4096

/**
 * What became of a frame given to {@link Links.sendFrame}: `sent` (queued, the connection is below its
 * high-water mark), `full` (queued, but the connection is over the mark: send more once `writable` is called
 * for the peer), `unsent` (not queued: no open connection; one is dialed and `writable` is called when it opens).
 */
export type FrameSent = 'sent' | 'full' | 'unsent'

/** Calls about the outbound connection to a peer, for senders that respect backpressure. */
export interface LinkHooks {
  /** A connection to `peer` opened, or drained below its high-water mark. */
  writable?(peer: string): void
  /** The connection to `peer` closed: frames queued on it may not have arrived. */
  disconnected?(peer: string): void
}

/**
 * One outbound connection per peer (dialed lazily, redialed with backoff), inbound connections accepted on
 * our address. Each outbound connection opens with a hello naming both ends; every later frame on it is a
 * batch of messages from that peer. Raft tolerates loss, so a message that cannot go out now is dropped.
 */
export class Links {
  private listener: Listener | null = null
  private readonly out = new Map<string, Outbound>()
  private readonly inbound = new Set<Connection>()
  private closed = false

  constructor(
    private readonly transport: Transport,
    private readonly self: string,
    private readonly selfAddress: string,
    private readonly addressOf: (id: string) => string | undefined,
    private readonly clock: Clock,
    private readonly maxEntryBytes: number,
    private readonly deliver: (msgs: Message[]) => void,
    private readonly warn: (msg: string, err?: unknown) => void,
    /** Frames of other kinds than hello and batch (snapshot chunks and their acknowledgements). */
    private readonly deliverRaw: (peer: string, frame: Uint8Array) => void = () => {},
    private readonly hooks: LinkHooks = {},
  ) {}

  async start(): Promise<void> {
    const l = await this.transport.listen(this.selfAddress)
    if (this.closed) {
      await l.close()
      return
    }
    this.listener = l
    l.on('connection:open', (conn) => this.accept(conn))
  }

  private accept(conn: Connection): void {
    if (this.closed) {
      void conn.close()
      return
    }
    this.inbound.add(conn)
    let peer: string | null = null
    conn.on('connection:close', () => this.inbound.delete(conn))
    conn.on('frame:receive', (frame) => {
      if (this.closed) return
      try {
        if (peer === null) {
          const h = decodeHello(frame)
          if (h.to !== this.self) throw new Error(`hello for ${h.to}, but this is ${this.self}`)
          peer = h.from
          return
        }
        if (frame[0] !== BATCH_KIND) this.deliverRaw(peer, frame)
        else this.deliver(decodeBatch(frame, peer, this.self, this.maxEntryBytes))
      } catch (err) {
        this.warn(`closing connection from ${peer ?? 'unknown peer'}: bad frame`, err)
        conn.abort()
      }
    })
  }

  /** Sends messages (grouped per destination, order kept within each). */
  send(msgs: readonly Message[]): void {
    if (this.closed || msgs.length === 0) return
    // Most batches go to one or two peers: group without allocating maps.
    let i = 0
    while (i < msgs.length) {
      const to = msgs[i]!.to
      let j = i + 1
      while (j < msgs.length && msgs[j]!.to === to) j++
      this.sendTo(to, msgs, i, j)
      i = j
    }
  }

  /** Sends one frame of another kind to `to` on the connection messages use (see {@link FrameSent}). */
  sendFrame(to: string, frame: Uint8Array): FrameSent {
    if (this.closed) return 'unsent'
    let o = this.out.get(to)
    if (!o) {
      o = { conn: null, dialing: false, queue: [], retryAt: 0, backoff: 0 }
      this.out.set(to, o)
    }
    const conn = o.conn
    if (!conn || conn.closed) {
      if (!o.dialing && this.clock.now() >= o.retryAt) void this.dial(to, o)
      return 'unsent'
    }
    try {
      // false means queued over the high-water mark, not dropped (the transport contract).
      return conn.send(frame) ? 'sent' : 'full'
    } catch (err) {
      this.warn('send failed', err)
      return 'unsent'
    }
  }

  private sendTo(to: string, msgs: readonly Message[], from: number, end: number): void {
    let o = this.out.get(to)
    if (!o) {
      o = { conn: null, dialing: false, queue: [], retryAt: 0, backoff: 0 }
      this.out.set(to, o)
    }
    const conn = o.conn
    if (conn && !conn.closed) {
      this.write(conn, msgs, from, end)
      return
    }
    for (let k = from; k < end && o.queue.length < MAX_QUEUE; k++) o.queue.push(msgs[k]!)
    if (!o.dialing && this.clock.now() >= o.retryAt) void this.dial(to, o)
  }

  private write(conn: Connection, msgs: readonly Message[], from: number, end: number): void {
    const frame = encodeBatch(msgs, from, end)
    if (frame.length > conn.maxFrameBytes && end - from > 1) {
      const mid = (from + end) >> 1
      this.write(conn, msgs, from, mid)
      this.write(conn, msgs, mid, end)
      return
    }
    try {
      conn.send(frame)
    } catch (err) {
      this.warn('send failed', err)
    }
  }

  private async dial(to: string, o: Outbound): Promise<void> {
    const address = this.addressOf(to)
    if (address === undefined) {
      o.queue.length = 0
      return
    }
    o.dialing = true
    try {
      const conn = await this.transport.dial(address)
      if (this.closed) {
        await conn.close()
        return
      }
      o.conn = conn
      o.backoff = 0
      conn.on('connection:close', () => {
        if (o.conn !== conn) return
        o.conn = null
        if (!this.closed) this.hooks.disconnected?.(to)
      })
      conn.on('connection:drain', () => {
        if (o.conn === conn && !this.closed) this.hooks.writable?.(to)
      })
      conn.send(encodeHello(this.self, to))
      const q = o.queue
      o.queue = []
      if (q.length > 0) this.write(conn, q, 0, q.length)
      this.hooks.writable?.(to)
    } catch (err) {
      o.queue.length = 0
      o.backoff = Math.min(Math.max(o.backoff * 2, 20), 1000)
      o.retryAt = this.clock.now() + o.backoff
      this.warn(`dial ${to} failed`, err)
    } finally {
      o.dialing = false
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const closing: Promise<void>[] = []
    if (this.listener) closing.push(this.listener.close())
    for (const o of this.out.values()) if (o.conn) closing.push(o.conn.close())
    for (const c of this.inbound) closing.push(c.close())
    this.out.clear()
    this.inbound.clear()
    await Promise.allSettled(closing)
  }
}
