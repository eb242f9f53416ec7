// The RPC session: one connection, symmetric calls, notifications and streams. Method and option types, the
// wire protocol, access rules, remote errors, and the two ends of a stream live in ./session/. What stays
// here is one state machine, a little under 600 lines and so over the house ~500 on purpose: the calling
// and serving halves share the connection, the dispatcher, the drain waiters and the close path, and
// splitting them would put that shared state behind an interface whose only user is this class.
import { EventEmitter } from 'eventemitter3'
import { createCodec, type InternalCodec } from './codec.js'
import { isTransportError, TransportError } from './errors.js'
import { abortedError, checkSignal } from './internal/abort.js'
import { COPIES_FRAMES_UP_TO, type CopyingConnection } from './internal/copy-limit.js'
import { positiveInt } from './internal/limits.js'
import { accessRefusal } from './session/access.js'
import { Incoming } from './session/incoming.js'
import type {
  CallMethod,
  MethodAuthorizer,
  MethodContext,
  MethodSpec,
  NotifyMethod,
  StreamMethod,
} from './session/methods.js'
import {
  type CallOptions,
  type RpcSessionOptions,
  resolveSessionOptions,
  type StreamOptions,
} from './session/options.js'
import {
  CALL,
  CANCEL,
  CREDIT,
  checkMethod,
  END,
  ERROR,
  ITEM,
  isEncodingError,
  MAX_WINDOW,
  messageId,
  methodName,
  NOTIFY,
  protocolError,
  RESULT,
  STREAM,
  windowCredits,
} from './session/protocol.js'
import { errorFromInfo, errorInfo } from './session/remote-errors.js'
import { type RpcStream, StreamConsumer } from './session/stream-consumer.js'
import type { AbortOptions, Clock, Connection, PeerIdentity } from './types.js'

export type {
  CallMethod,
  MethodAccess,
  MethodAuthorizer,
  MethodContext,
  MethodSpec,
  Methods,
  NotifyMethod,
  StreamMethod,
} from './session/methods.js'
export type { CallOptions, RpcSessionOptions, StreamOptions } from './session/options.js'
export type { RpcStream } from './session/stream-consumer.js'

/** Events of an {@link RpcSession}. */
export interface RpcSessionEvents {
  /** The session closed; `error` is set when the connection failed. Pending calls were failed. */
  'session:close': (error?: TransportError) => void
  /** A one-way handler threw, or an answer could not be sent. */
  'handler:fail': (method: string, error: unknown) => void
  /** A request was refused by roles or the `authorize` hook. */
  'request:refuse': (method: string, identity: PeerIdentity | undefined, error: TransportError) => void
}

interface PendingCall {
  resolve: (value: any) => void
  reject: (error: unknown) => void
  timer: unknown
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/**
 * Messaging over one connection, symmetric: either side can call, notify and open streams on the
 * other, and serves its own `methods`. Each message is one msgpack-encoded frame.
 */
export class RpcSession extends EventEmitter<RpcSessionEvents> {
  readonly connection: Connection
  private readonly codec: InternalCodec
  /** Frames up to this size may be encoded into reused memory (the connection copies them). */
  private readonly copyLimit: number
  private readonly methods: Map<string, MethodSpec>
  private readonly authorizer: MethodAuthorizer | undefined
  private readonly callTimeoutMs: number
  private readonly streamWindow: number
  private readonly maxConcurrent: number
  private readonly clock: Clock
  private nextId = 1
  private readonly calls = new Map<number, PendingCall>()
  private readonly streams = new Map<number, StreamConsumer>()
  private readonly incoming = new Map<number, Incoming>()
  private readonly drainWaiters = new Set<() => void>()
  private readonly notifyContexts = new Map<string, MethodContext>()
  private readonly lifetime = new AbortController()
  private closeError: TransportError | undefined
  private isClosed = false

  constructor(connection: Connection, options?: RpcSessionOptions) {
    super()
    if (!connection || typeof connection.send !== 'function' || typeof connection.on !== 'function') {
      throw new TypeError('connection must be a Connection')
    }
    const o = resolveSessionOptions(options)
    this.connection = connection
    this.methods = new Map(Object.entries(o.methods))
    this.authorizer = o.authorize
    this.callTimeoutMs = o.callTimeoutMs
    this.streamWindow = o.streamWindow
    this.maxConcurrent = o.maxConcurrent
    this.clock = o.clock
    this.copyLimit = (connection as CopyingConnection)[COPIES_FRAMES_UP_TO] ?? 0
    this.codec = createCodec({
      maxFrameBytes: positiveInt(options?.maxFrameBytes, connection.maxFrameBytes, 'options.maxFrameBytes'),
    })
    connection.on('frame:receive', this.onFrame)
    connection.on('connection:drain', this.onDrain)
    connection.on('connection:close', this.onClose)
    if (connection.closed) this.onClose(new TransportError('CLOSED', 'connection was already closed'))
  }

  /** Encode and send one message; throws what the codec or the connection throws. */
  private write(message: unknown[]): void {
    if (this.copyLimit > 0) {
      // Encoded into msgpackr's reused buffer: send() copies it before anything else can encode.
      let frame = this.codec.encodeTransient(message)
      // A copy (msgpackr returns a Buffer, whose slice() would be a view).
      if (frame.byteLength > this.copyLimit) frame = new Uint8Array(frame)
      this.connection.send(frame)
    } else {
      this.connection.send(this.codec.encode(message))
    }
  }

  /** The peer's identity (see {@link Connection.remoteIdentity}). */
  get identity(): PeerIdentity | undefined {
    return this.connection.remoteIdentity
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Calls and streams this side has open. */
  get pending(): number {
    return this.calls.size + this.streams.size
  }

  /**
   * Call `method` on the peer and resolve with its answer. Rejects with a `TransportError`: `TIMEOUT`,
   * `ABORTED`, `CLOSED` (the session closed first), `FORBIDDEN`, `UNKNOWN_METHOD`, `OVERLOADED`,
   * `FRAME_TOO_LARGE`, or `REMOTE_ERROR` (the handler threw; see `error.remote`).
   */
  call<R = unknown>(method: string, payload?: unknown, options?: CallOptions): Promise<R> {
    checkMethod(method)
    checkSignal(options)
    const timeoutMs = positiveInt(options?.timeoutMs, this.callTimeoutMs, 'options.timeoutMs')
    const signal = options?.signal
    if (this.isClosed) return Promise.reject(this.closedError())
    if (signal?.aborted) return Promise.reject(abortedError(signal, `call ${method}`))
    const id = this.nextId++
    return new Promise<R>((resolve, reject) => {
      const pending: PendingCall = { resolve, reject, timer: undefined, signal, onAbort: undefined }
      this.calls.set(id, pending)
      pending.timer = this.clock.setTimeout(() => {
        this.finishCall(
          id,
          new TransportError('TIMEOUT', `call ${method} timed out after ${timeoutMs} ms`),
          true,
        )
      }, timeoutMs)
      if (signal) {
        pending.onAbort = () => this.finishCall(id, abortedError(signal, `call ${method}`), true)
        signal.addEventListener('abort', pending.onAbort, { once: true })
      }
      try {
        this.write([CALL, id, method, payload])
      } catch (error) {
        this.finishCall(id, error, false)
      }
    })
  }

  /**
   * Send a one-way message. Returns false when it was not sent (the session is closed, or the
   * connection failed); it is never retried. Throws `FRAME_TOO_LARGE` or a TypeError for a payload
   * that cannot be encoded.
   */
  notify(method: string, payload?: unknown): boolean {
    checkMethod(method)
    if (this.isClosed) return false
    try {
      this.write([NOTIFY, method, payload])
      return true
    } catch (error) {
      if (isEncodingError(error)) throw error
      return false
    }
  }

  /** True while the connection is below its high-water mark (see `drained`). */
  get writable(): boolean {
    return !this.isClosed && this.connection.writable
  }

  /** Resolves once the connection's outgoing buffer is below its high-water mark. */
  drained(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    return this.waitDrain(options?.signal)
  }

  /** Open a server stream of `method` on the peer. */
  stream<T = unknown>(method: string, payload?: unknown, options?: StreamOptions): RpcStream<T> {
    checkMethod(method)
    checkSignal(options)
    const window = positiveInt(options?.window, this.streamWindow, 'options.window')
    if (window > MAX_WINDOW) throw new RangeError(`options.window must be at most ${MAX_WINDOW}`)
    const id = this.nextId++
    const consumer = new StreamConsumer<T>(this, id, method, window, options?.signal)
    if (this.isClosed) {
      consumer.fail(this.closedError())
      return consumer
    }
    if (options?.signal?.aborted) {
      consumer.fail(abortedError(options.signal, `stream ${method}`))
      return consumer
    }
    this.streams.set(id, consumer as StreamConsumer)
    try {
      this.write([STREAM, id, method, payload, window])
    } catch (error) {
      this.streams.delete(id)
      consumer.fail(error)
    }
    return consumer
  }

  /** Fail pending calls and streams with `CLOSED`, send what is queued, and close the connection. */
  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    this.shutdown(new TransportError('CLOSED', 'session closed'), undefined)
    await this.connection.close(options)
  }

  // ---- internals used by StreamConsumer ----

  /** @internal */
  sendControl(message: unknown[]): void {
    if (this.isClosed) return
    try {
      this.write(message)
    } catch {
      // The connection failed; onClose fails everything that is pending.
    }
  }

  /** @internal */
  forgetStream(id: number, cancel: boolean): void {
    if (this.streams.delete(id) && cancel) this.sendControl([CANCEL, id])
  }

  // ---- receiving ----

  private readonly onFrame = (frame: Uint8Array): void => {
    if (this.isClosed) return
    let msg: unknown
    try {
      msg = this.codec.decode(frame)
      this.dispatch(msg)
    } catch (error) {
      const e = isTransportError(error)
        ? error
        : new TransportError('BAD_FRAME', `bad message: ${(error as Error).message}`, { cause: error })
      this.connection.abort(e)
    }
  }

  private dispatch(msg: unknown): void {
    if (!Array.isArray(msg) || msg.length < 2) throw protocolError('a message must be an array')
    const type = msg[0]
    if (type === NOTIFY) {
      this.onNotify(methodName(msg[1]), msg[2])
      return
    }
    const id = messageId(msg[1])
    switch (type) {
      case CALL:
        this.onCall(id, methodName(msg[2]), msg[3])
        return
      case RESULT:
        this.finishCall(id, undefined, false, msg[2])
        return
      case ERROR:
        this.onError(id, msg[2])
        return
      case STREAM: {
        const credits = windowCredits(msg[4], 'bad stream window')
        this.onStream(id, methodName(msg[2]), msg[3], credits)
        return
      }
      case ITEM: {
        const consumer = this.streams.get(id)
        if (consumer && !consumer.push(msg[2])) throw protocolError('stream item beyond the granted window')
        return
      }
      case END:
        this.streams.get(id)?.end()
        this.streams.delete(id)
        return
      case CREDIT: {
        const n = windowCredits(msg[2], 'bad credit')
        const s = this.incoming.get(id)
        if (s) {
          s.credits += n
          if (s.credits > MAX_WINDOW) throw protocolError('credit beyond the window limit')
          s.wake?.()
        }
        return
      }
      case CANCEL: {
        const s = this.incoming.get(id)
        if (s) {
          this.incoming.delete(id)
          s.abort(new TransportError('ABORTED', 'the caller cancelled'))
        }
        return
      }
      default:
        throw protocolError(`unknown message type ${String(type)}`)
    }
  }

  private check(method: string, kind: MethodSpec['kind']): MethodSpec | TransportError {
    const spec = this.methods.get(method)
    if (spec === undefined || spec.kind !== kind) {
      return new TransportError('UNKNOWN_METHOD', `no ${kind} method ${method}`)
    }
    const refused = accessRefusal(spec, method, this.connection.remoteIdentity, this.authorizer)
    return refused === undefined ? spec : this.refuse(method, refused.message, refused.cause)
  }

  private refuse(method: string, message: string, cause?: unknown): TransportError {
    const error = new TransportError('FORBIDDEN', message, { cause })
    this.emit('request:refuse', method, this.connection.remoteIdentity, error)
    return error
  }

  private onNotify(method: string, payload: unknown): void {
    const spec = this.check(method, 'notify')
    if (spec instanceof TransportError) {
      if (spec.code === 'UNKNOWN_METHOD') this.emit('handler:fail', method, spec)
      return
    }
    let context = this.notifyContexts.get(method)
    if (!context) {
      context = this.context(method, this.lifetime.signal)
      this.notifyContexts.set(method, context)
    }
    try {
      const r = (spec as NotifyMethod).handler(payload, context)
      if (r && typeof (r as Promise<void>).then === 'function') {
        ;(r as Promise<void>).then(undefined, (error) => this.emit('handler:fail', method, error))
      }
    } catch (error) {
      this.emit('handler:fail', method, error)
    }
  }

  private context(method: string, signal: AbortSignal): MethodContext {
    return { method, identity: this.connection.remoteIdentity, session: this, signal }
  }

  private admit(id: number, method: string): Incoming | TransportError {
    if (this.incoming.has(id)) throw protocolError('duplicate request id')
    if (this.incoming.size >= this.maxConcurrent) {
      return new TransportError('OVERLOADED', `more than ${this.maxConcurrent} requests in progress`)
    }
    const entry = new Incoming(method, this.connection.remoteIdentity, this)
    this.incoming.set(id, entry)
    return entry
  }

  private onCall(id: number, method: string, payload: unknown): void {
    const spec = this.check(method, 'call')
    if (spec instanceof TransportError) {
      this.sendError(id, spec)
      return
    }
    const entry = this.admit(id, method)
    if (entry instanceof TransportError) {
      this.sendError(id, entry)
      return
    }
    let result: unknown
    try {
      result = (spec as CallMethod).handler(payload, entry)
    } catch (error) {
      this.answer(id, entry, method, false, error)
      return
    }
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      ;(result as Promise<unknown>).then(
        (value) => this.answer(id, entry, method, true, value),
        (error) => this.answer(id, entry, method, false, error),
      )
    } else {
      this.answer(id, entry, method, true, result)
    }
  }

  private answer(id: number, entry: Incoming, method: string, ok: boolean, value: unknown): void {
    if (this.incoming.get(id) !== entry) return // cancelled, or the session closed
    this.incoming.delete(id)
    if (this.isClosed) return
    if (ok) {
      try {
        this.write([RESULT, id, value])
      } catch (error) {
        this.emit('handler:fail', method, error)
        if (isEncodingError(error)) this.sendError(id, error)
      }
    } else {
      this.sendError(id, value)
    }
  }

  private sendError(id: number, error: unknown): void {
    this.sendControl([ERROR, id, errorInfo(error)])
  }

  private onError(id: number, info: unknown): void {
    const error = errorFromInfo(info)
    if (this.calls.has(id)) this.finishCall(id, error, false)
    else {
      const consumer = this.streams.get(id)
      if (consumer) {
        this.streams.delete(id)
        consumer.fail(error)
      }
    }
  }

  private onStream(id: number, method: string, payload: unknown, credits: number): void {
    const spec = this.check(method, 'stream')
    if (spec instanceof TransportError) {
      this.sendError(id, spec)
      return
    }
    const entry = this.admit(id, method)
    if (entry instanceof TransportError) {
      this.sendError(id, entry)
      return
    }
    entry.credits = credits
    void this.produce(id, entry, spec as StreamMethod, method, payload)
  }

  private async produce(
    id: number,
    entry: Incoming,
    spec: StreamMethod,
    method: string,
    payload: unknown,
  ): Promise<void> {
    const live = () => !entry.cancelled && !this.isClosed && this.incoming.get(id) === entry
    let iterator: Iterator<unknown> | AsyncIterator<unknown> | undefined
    try {
      const iterable = spec.handler(payload, entry) as any
      const factory = iterable?.[Symbol.asyncIterator] ?? iterable?.[Symbol.iterator]
      if (typeof factory !== 'function') throw new TypeError(`stream handler ${method} returned no iterable`)
      iterator = factory.call(iterable) as Iterator<unknown> | AsyncIterator<unknown>
      for (;;) {
        while (live() && (entry.credits === 0 || !this.writable)) {
          if (entry.credits === 0) {
            await new Promise<void>((resolve) => {
              entry.wake = resolve
            })
            entry.wake = undefined
          } else {
            await this.waitDrain(entry.signal).catch(() => undefined)
          }
        }
        if (!live()) break
        const step = await iterator.next()
        if (step.done || !live()) break
        entry.credits--
        this.write([ITEM, id, step.value])
      }
      if (live()) {
        this.incoming.delete(id)
        this.sendControl([END, id])
        iterator = undefined
      }
    } catch (error) {
      if (live()) {
        this.incoming.delete(id)
        this.emit('handler:fail', method, error)
        this.sendError(id, error)
      }
    } finally {
      if (this.incoming.get(id) === entry) this.incoming.delete(id)
      if (iterator && typeof iterator.return === 'function') {
        try {
          await iterator.return()
        } catch (error) {
          this.emit('handler:fail', method, error)
        }
      }
    }
  }

  private readonly onDrain = (): void => {
    const waiters = [...this.drainWaiters]
    this.drainWaiters.clear()
    for (const w of waiters) w()
  }

  private waitDrain(signal: AbortSignal | undefined): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError())
    if (this.connection.writable) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort)
        this.drainWaiters.delete(done)
        if (this.isClosed) reject(this.closedError())
        else resolve()
      }
      const onAbort = () => {
        this.drainWaiters.delete(done)
        reject(abortedError(signal!, 'waiting for drain'))
      }
      this.drainWaiters.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private finishCall(id: number, error: unknown, cancel: boolean, value?: unknown): void {
    const pending = this.calls.get(id)
    if (!pending) return
    this.calls.delete(id)
    this.clock.clearTimeout(pending.timer)
    if (pending.onAbort) pending.signal!.removeEventListener('abort', pending.onAbort)
    if (cancel) this.sendControl([CANCEL, id])
    if (error === undefined) pending.resolve(value)
    else pending.reject(error)
  }

  private closedError(): TransportError {
    return new TransportError('CLOSED', 'session is closed', { cause: this.closeError })
  }

  private readonly onClose = (error?: TransportError): void => {
    this.shutdown(
      new TransportError('CLOSED', error ? `connection failed: ${error.message}` : 'connection closed', {
        cause: error,
      }),
      error,
    )
  }

  private shutdown(failure: TransportError, cause: TransportError | undefined): void {
    if (this.isClosed) return
    this.isClosed = true
    this.closeError = cause
    this.connection.off('frame:receive', this.onFrame)
    this.connection.off('connection:drain', this.onDrain)
    this.connection.off('connection:close', this.onClose)
    for (const id of [...this.calls.keys()]) this.finishCall(id, failure, false)
    for (const consumer of this.streams.values()) consumer.fail(failure)
    this.streams.clear()
    for (const entry of this.incoming.values()) {
      entry.abort(failure)
    }
    this.incoming.clear()
    this.lifetime.abort(failure)
    this.onDrain()
    this.emit('session:close', cause)
  }
}

/** Messaging over one connection (see {@link RpcSession}). */
export function rpcSession(connection: Connection, options?: RpcSessionOptions): RpcSession {
  return new RpcSession(connection, options)
}
