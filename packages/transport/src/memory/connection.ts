// One end of a memory connection: frame limits, send-side buffering with the same high-water behaviour as
// TCP and TLS, and FIN/RST close semantics. Frames travel through the network (which applies faults);
// the connection only queues, counts and releases them.
import { EventEmitter } from 'eventemitter3'
import { TransportError } from '../errors.js'
import { checkSignal } from '../internal/abort.js'
import { nextConnectionId } from '../internal/ids.js'
import type { ResolvedLimits } from '../internal/limits.js'
import { bufferOverflow, checkSend } from '../internal/send-checks.js'
import type { AbortOptions, Connection, ConnectionEvents, PeerIdentity } from '../types.js'
import type { MemoryTransport } from './endpoint.js'
import type { MemoryNodeStats } from './network.js'

/** Markers queued behind data frames: an orderly close and a reset. Compared by identity. */
export const FIN = new Uint8Array(0)
export const RST = new Uint8Array(0)
/**
 * Each queued frame counts with the 4-byte length prefix that TCP and TLS put before it, so that `send` returns
 * false and `connection:drain` fires after exactly the same sends as over the real transports.
 */
export const LENGTH_PREFIX_BYTES = 4

/** One end of a memory connection. */
export class MemoryConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id = nextConnectionId()
  readonly localAddress: string
  readonly localNode: string
  readonly maxFrameBytes: number
  peer: MemoryConnection | undefined
  closed = false
  buffered = 0
  lastAt = 0
  private needDrain = false
  private done = false
  readonly stats: MemoryNodeStats

  constructor(
    private readonly owner: MemoryTransport,
    readonly remoteNode: string,
    readonly remoteAddress: string,
    readonly remoteIdentity: PeerIdentity,
    readonly outbound: boolean,
    private readonly limits: ResolvedLimits,
  ) {
    super()
    this.localNode = owner.name
    this.localAddress = owner.name
    this.maxFrameBytes = limits.maxFrameBytes
    this.stats = owner.stats
  }

  get bufferedBytes(): number {
    return this.buffered
  }

  get writable(): boolean {
    return !this.closed && this.buffered <= this.limits.highWaterMarkBytes
  }

  send(frame: Uint8Array): boolean {
    const n = checkSend(frame, this.closed, this.maxFrameBytes)
    this.buffered += n + LENGTH_PREFIX_BYTES
    if (this.buffered > this.limits.maxBufferedBytes) {
      const error = bufferOverflow(this.limits.maxBufferedBytes, this.remoteAddress)
      this.abort(error)
      throw error
    }
    this.stats.messagesSent++
    this.stats.bytesSent += n
    this.owner.network.enqueue(this, frame)
    if (this.buffered > this.limits.highWaterMarkBytes) {
      this.needDrain = true
      return false
    }
    return true
  }

  /** Bytes of a frame left the sender's buffer (delivered or dropped). */
  release(n: number): void {
    this.buffered -= n
    if (this.needDrain && this.buffered <= this.limits.highWaterMarkBytes) {
      this.needDrain = false
      if (!this.closed) this.emit('connection:drain')
    }
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    this.owner.network.enqueue(this, FIN)
    this.finish(undefined)
  }

  abort(error?: TransportError): void {
    if (this.closed) return
    this.closed = true
    this.owner.network.enqueue(this, RST)
    this.finish(error)
  }

  /** The peer closed (FIN) or reset (RST) its side. */
  remoteClosed(reset: boolean): void {
    if (this.done) return
    this.closed = true
    this.finish(reset ? new TransportError('CLOSED', `connection reset by ${this.remoteAddress}`) : undefined)
  }

  private finish(error: TransportError | undefined): void {
    if (this.done) return
    this.done = true
    this.owner.forget(this)
    this.emit('connection:close', error)
    this.removeAllListeners()
  }
}
