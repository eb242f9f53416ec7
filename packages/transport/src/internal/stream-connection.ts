import type { Socket } from 'node:net'
import { EventEmitter } from 'eventemitter3'
import { TransportError } from '../errors.js'
import type { AbortOptions, Clock, Connection, ConnectionEvents, PeerIdentity } from '../types.js'
import { checkSignal } from './abort.js'
import { COPIES_FRAMES_UP_TO } from './copy-limit.js'
import { nextConnectionId } from './ids.js'
import type { ResolvedLimits } from './limits.js'
import { bufferOverflow, checkSend } from './send-checks.js'

/** Frames up to this size are copied into a shared write buffer; larger ones are written as they are. */
const COPY_LIMIT = 16 * 1024
/**
 * A write buffer's size. A manager holds thousands of mostly quiet sessions (issue #18): the buffer is written
 * from its start again whenever the socket has sent all of it, so a quiet session keeps only its first pages
 * in use; a busy one fills buffers in turn (three at most: the one being filled and two spares).
 */
const ARENA_BYTES = 64 * 1024
const HEADER_BYTES = 4
/** How long a graceful close waits for the peer before dropping the socket. */
const CLOSE_TIMEOUT_MS = 5_000

/**
 * Length-prefixed frames (4-byte big-endian length, then the bytes) over a stream socket, for TCP
 * and TLS. Writes are coalesced: frames sent in one turn of the event loop go out in one write, and
 * while the socket is busy they collect in our buffer, bounded by `maxBufferedBytes`.
 */
export class StreamConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id = nextConnectionId()
  readonly maxFrameBytes: number
  closed = false
  private done = false
  // Outgoing: frames not yet handed to the socket.
  private arena: Buffer | undefined
  private arenaStart = 0
  private arenaEnd = 0
  /** Write buffers that filled up; their bytes are in `chunks`, not yet handed to the socket. */
  private full: Buffer[] = []
  /** Write buffers the socket is done with, for reuse (no allocation per 256 KiB sent). */
  private spare: Buffer[] = []
  private chunks: Buffer[] = []
  private pendingBytes = 0
  /** Flushes handed to the socket, and those it has finished writing. */
  private writesOut = 0
  private writesDone = 0
  private flushQueued = false
  private socketBusy = false
  private needDrain = false
  // Incoming: a frame split across reads.
  private header = Buffer.alloc(HEADER_BYTES)
  private headerFill = 0
  private partial: Buffer | undefined
  private partialFill = 0
  private closeWaiters: (() => void)[] = []
  private closeTimer: unknown

  constructor(
    private readonly socket: Socket,
    readonly localAddress: string,
    readonly remoteAddress: string,
    readonly remoteIdentity: PeerIdentity | undefined,
    readonly outbound: boolean,
    private readonly limits: ResolvedLimits,
    private readonly clock: Clock,
  ) {
    super()
    this.maxFrameBytes = limits.maxFrameBytes
    socket.on('data', this.onData)
    socket.on('drain', this.onSocketDrain)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onSocketClose)
  }

  /** `send` copies frames up to this size before returning (see copy-limit.ts). */
  readonly [COPIES_FRAMES_UP_TO] = COPY_LIMIT

  get bufferedBytes(): number {
    return this.pendingBytes + this.socket.writableLength
  }

  get writable(): boolean {
    return !this.closed && this.bufferedBytes <= this.limits.highWaterMarkBytes
  }

  send(frame: Uint8Array): boolean {
    const n = checkSend(frame, this.closed, this.maxFrameBytes)
    const total = HEADER_BYTES + n
    const buffered = this.bufferedBytes + total
    if (buffered > this.limits.maxBufferedBytes) {
      const error = bufferOverflow(this.limits.maxBufferedBytes, this.remoteAddress)
      this.abort(error)
      throw error
    }
    if (n <= COPY_LIMIT) {
      let arena = this.arena
      if (arena === undefined || arena.length - this.arenaEnd < total) {
        this.retireArena()
        if (this.arena !== undefined) this.full.push(this.arena)
        arena = this.arena = this.spare.pop() ?? Buffer.allocUnsafeSlow(ARENA_BYTES)
        this.arenaStart = this.arenaEnd = 0
      }
      const at = this.arenaEnd
      arena.writeUInt32BE(n, at)
      arena.set(frame, at + HEADER_BYTES)
      this.arenaEnd = at + total
    } else {
      this.retireArena()
      const head = Buffer.allocUnsafe(HEADER_BYTES)
      head.writeUInt32BE(n, 0)
      this.chunks.push(head, Buffer.from(frame.buffer, frame.byteOffset, n))
    }
    this.pendingBytes += total
    if (!this.flushQueued && !this.socketBusy) {
      this.flushQueued = true
      queueMicrotask(this.flush)
    }
    if (buffered > this.limits.highWaterMarkBytes) {
      this.needDrain = true
      return false
    }
    return true
  }

  close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.done) return Promise.resolve()
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve))
    if (!this.closed) {
      this.closed = true
      this.socketBusy = false
      this.flush()
      this.socket.end()
      this.closeTimer = this.clock.setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS)
    }
    const signal = options?.signal
    if (signal) {
      if (signal.aborted) this.socket.destroy()
      else signal.addEventListener('abort', () => this.socket.destroy(), { once: true })
    }
    return closed
  }

  abort(error?: TransportError): void {
    if (this.done) return
    this.closed = true
    this.finish(error)
    this.socket.destroy()
  }

  private retireArena(): void {
    if (this.arena !== undefined && this.arenaEnd > this.arenaStart) {
      this.chunks.push(this.arena.subarray(this.arenaStart, this.arenaEnd))
      this.arenaStart = this.arenaEnd
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false
    if (this.done || this.socketBusy || this.pendingBytes === 0) return
    this.retireArena()
    const chunks = this.chunks
    this.chunks = []
    this.pendingBytes = 0
    const full = this.full
    this.writesOut++
    // Once the socket has written this flush, the buffers that filled up before it can be reused.
    const done =
      full.length === 0
        ? this.onWritten
        : (error?: Error | null) => {
            if (!error && !this.done) for (const b of full) if (this.spare.length < 2) this.spare.push(b)
            this.onWritten(error)
          }
    if (full.length > 0) this.full = []
    let ok: boolean
    if (chunks.length === 1) {
      ok = this.socket.write(chunks[0]!, done)
    } else {
      this.socket.cork()
      ok = true
      const last = chunks.length - 1
      for (let i = 0; i < last; i++) ok = this.socket.write(chunks[i]!)
      ok = this.socket.write(chunks[last]!, done)
      this.socket.uncork()
    }
    if (!ok) this.socketBusy = true
    else this.maybeDrain()
  }

  /**
   * The socket has written a flush. Writes finish in order, so once the last one has, and nothing new waits,
   * no byte of the write buffer is in use: the next frames go at its start again (its first pages stay the
   * only ones touched while the connection is quiet).
   */
  private readonly onWritten = (error?: Error | null): void => {
    if (++this.writesDone !== this.writesOut || error || this.done) return
    if (this.pendingBytes === 0) this.arenaStart = this.arenaEnd = 0
  }

  private readonly onSocketDrain = (): void => {
    this.socketBusy = false
    if (this.pendingBytes > 0) this.flush()
    else this.maybeDrain()
  }

  private maybeDrain(): void {
    if (this.needDrain && !this.closed && this.bufferedBytes <= this.limits.highWaterMarkBytes) {
      this.needDrain = false
      this.emit('connection:drain')
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    let pos = 0
    const len = chunk.length
    while (pos < len && !this.done) {
      if (this.partial !== undefined) {
        const want = this.partial.length - this.partialFill
        const take = Math.min(want, len - pos)
        chunk.copy(this.partial, this.partialFill, pos, pos + take)
        this.partialFill += take
        pos += take
        if (this.partialFill === this.partial.length) {
          const frame = this.partial
          this.partial = undefined
          this.emit('frame:receive', frame)
        }
        continue
      }
      let size: number
      if (this.headerFill === 0 && len - pos >= HEADER_BYTES) {
        size = chunk.readUInt32BE(pos)
        pos += HEADER_BYTES
      } else {
        while (this.headerFill < HEADER_BYTES && pos < len) this.header[this.headerFill++] = chunk[pos++]!
        if (this.headerFill < HEADER_BYTES) return
        this.headerFill = 0
        size = this.header.readUInt32BE(0)
      }
      if (size > this.maxFrameBytes) {
        this.fail(
          new TransportError(
            'FRAME_TOO_LARGE',
            `peer ${this.remoteAddress} sent a frame of ${size} bytes, over the limit of ${this.maxFrameBytes}`,
          ),
        )
        return
      }
      if (len - pos >= size) {
        // A plain view (not a Buffer): cheaper to make, and decoders can share the chunk's memory.
        const frame = new Uint8Array(chunk.buffer, chunk.byteOffset + pos, size)
        pos += size
        this.emit('frame:receive', frame)
      } else {
        this.partial = Buffer.allocUnsafe(size)
        this.partialFill = 0
      }
    }
  }

  private readonly onEnd = (): void => {
    if (this.partial !== undefined || this.headerFill > 0) {
      this.fail(new TransportError('BAD_FRAME', `peer ${this.remoteAddress} closed in the middle of a frame`))
    }
  }

  private readonly onError = (error: Error): void => {
    if (this.done) return
    this.fail(
      new TransportError('CLOSED', `connection to ${this.remoteAddress} failed: ${error.message}`, {
        cause: error,
      }),
    )
  }

  private readonly onSocketClose = (): void => {
    this.closed = true
    this.finish(undefined)
  }

  /** Close because of `error` (a bad frame from the peer, a socket error). */
  private fail(error: TransportError): void {
    if (this.done) return
    this.closed = true
    this.finish(error)
    this.socket.destroy()
  }

  private finish(error: TransportError | undefined): void {
    if (this.done) return
    this.done = true
    this.closed = true
    if (this.closeTimer !== undefined) this.clock.clearTimeout(this.closeTimer)
    this.chunks = []
    this.arena = undefined
    this.full = []
    this.spare = []
    this.partial = undefined
    this.pendingBytes = 0
    this.emit('connection:close', error)
    this.removeAllListeners()
    for (const w of this.closeWaiters.splice(0)) w()
    // Resolve later close() calls at once; stop listening to the socket except for errors.
    this.socket.off('data', this.onData)
    this.socket.off('drain', this.onSocketDrain)
  }

  /** For the owner: resolve when the socket is gone. */
  whenClosed(): Promise<void> {
    if (this.done) return Promise.resolve()
    return new Promise((resolve) => this.closeWaiters.push(resolve))
  }
}
