import { EventEmitter } from 'eventemitter3'
import { systemClock } from './clock.js'
import { createCodec, type InternalCodec } from './codec.js'
import { isTransportError, type RemoteErrorInfo, TransportError, type TransportErrorCode } from './errors.js'
import { abortedError, checkSignal } from './internal/abort.js'
import { COPIES_FRAMES_UP_TO, type CopyingConnection } from './internal/copy-limit.js'
import { positiveInt } from './internal/limits.js'
import type { AbortOptions, Clock, Connection, PeerIdentity } from './types.js'

/** What a handler is told about the request it serves. */
export interface MethodContext {
  readonly method: string
  /** The authenticated peer (TLS certificate subject, memory identity), undefined over plain TCP. */
  readonly identity: PeerIdentity | undefined
  readonly session: RpcSession
  /** Aborted when the caller cancels (calls and streams) or the session closes. */
  readonly signal: AbortSignal
}

/** Who may use a method: the peer identity's `organizationalUnit` (swarm's role) must be listed. */
export interface MethodAccess {
  readonly roles?: readonly string[] | undefined
}

/** A request/response method. */
export interface CallMethod<P = any, R = any> extends MethodAccess {
  readonly kind: 'call'
  readonly handler: (payload: P, context: MethodContext) => R | Promise<R>
}

/** A one-way method: no answer; errors are reported in `handler:fail` on the receiving side. */
export interface NotifyMethod<P = any> extends MethodAccess {
  readonly kind: 'notify'
  readonly handler: (payload: P, context: MethodContext) => void | Promise<void>
}

/**
 * A server stream: the handler returns an (async) iterable whose items go to the caller. It is only
 * pulled while the caller has room (credit-based flow control) and the connection is below its
 * high-water mark, so a slow consumer slows the producer down instead of filling memory.
 */
export interface StreamMethod<P = any, T = any> extends MethodAccess {
  readonly kind: 'stream'
  readonly handler: (payload: P, context: MethodContext) => AsyncIterable<T> | Iterable<T>
}

/** One method an `RpcServer` serves: a call, a notification or a stream. */
export type MethodSpec = CallMethod | NotifyMethod | StreamMethod

/** The methods a session serves, by name. */
export type Methods = Readonly<Record<string, MethodSpec>>

/**
 * An extra authorization check, run after the method's `roles`. Return false or throw to refuse; the
 * caller then gets a `FORBIDDEN` error with the thrown message.
 */
export type MethodAuthorizer = (identity: PeerIdentity | undefined, method: string) => boolean | undefined

/** Options of {@link rpcSession}. */
export interface RpcSessionOptions {
  readonly methods?: Methods | undefined
  readonly authorize?: MethodAuthorizer | undefined
  /** Default timeout of `call` in ms (default 10,000). */
  readonly callTimeoutMs?: number | undefined
  /** Items a stream's producer may run ahead of its consumer (default 64). */
  readonly streamWindow?: number | undefined
  /** Calls and streams the peer may have in progress on this session at once (default 4096). */
  readonly maxConcurrent?: number | undefined
  /** Largest encoded message (default: the connection's `maxFrameBytes`). */
  readonly maxFrameBytes?: number | undefined
  /** Clock for timeouts (default: real time). */
  readonly clock?: Clock | undefined
}

/** Options of {@link RpcSession.call}. */
export interface CallOptions extends AbortOptions {
  /** Fail with `TIMEOUT` after this many ms (default: the session's `callTimeoutMs`). */
  readonly timeoutMs?: number | undefined
}

/** Options of {@link RpcSession.stream}. */
export interface StreamOptions extends AbortOptions {
  /** Items the producer may run ahead (default: the session's `streamWindow`). */
  readonly window?: number | undefined
}

/** Items of a server stream. Breaking out of `for await` (or `return()`) cancels it at the producer. */
export interface RpcStream<T = unknown> extends AsyncIterableIterator<T> {
  /** Stop the stream; pending and later `next()` calls end it. */
  cancel(): void
}

/** Events of an {@link RpcSession}. */
export interface RpcSessionEvents {
  /** The session closed; `error` is set when the connection failed. Pending calls were failed. */
  'session:close': (error?: TransportError) => void
  /** A one-way handler threw, or an answer could not be sent. */
  'handler:fail': (method: string, error: unknown) => void
  /** A request was refused by roles or the `authorize` hook. */
  'request:refuse': (method: string, identity: PeerIdentity | undefined, error: TransportError) => void
}

const NOTIFY = 0
const CALL = 1
const RESULT = 2
const ERROR = 3
const STREAM = 4
const ITEM = 5
const END = 6
const CREDIT = 7
const CANCEL = 8

const MAX_METHOD_LENGTH = 256
const MAX_WINDOW = 1 << 20
const DEFAULT_CALL_TIMEOUT_MS = 10_000
const DEFAULT_STREAM_WINDOW = 64
const DEFAULT_MAX_CONCURRENT = 4096

interface PendingCall {
  resolve: (value: any) => void
  reject: (error: unknown) => void
  timer: unknown
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/** A call or stream the peer has in progress here; its context, with the signal made on first use. */
class Incoming implements MethodContext {
  credits = 0
  wake: (() => void) | undefined = undefined
  cancelled = false
  private controller: AbortController | undefined
  private reason: unknown

  constructor(
    readonly method: string,
    readonly identity: PeerIdentity | undefined,
    readonly session: RpcSession,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      if (this.cancelled) this.controller.abort(this.reason)
    }
    return this.controller.signal
  }

  abort(reason: unknown): void {
    if (this.cancelled) return
    this.cancelled = true
    this.reason = reason
    this.controller?.abort(reason)
    this.wake?.()
  }
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
      this.onNotify(str(msg[1]), msg[2])
      return
    }
    const id = msg[1]
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw protocolError('bad message id')
    switch (type) {
      case CALL:
        this.onCall(id, str(msg[2]), msg[3])
        return
      case RESULT:
        this.finishCall(id, undefined, false, msg[2])
        return
      case ERROR:
        this.onError(id, msg[2])
        return
      case STREAM: {
        const credits = msg[4]
        if (
          typeof credits !== 'number' ||
          !Number.isSafeInteger(credits) ||
          credits <= 0 ||
          credits > MAX_WINDOW
        ) {
          throw protocolError('bad stream window')
        }
        this.onStream(id, str(msg[2]), msg[3], credits)
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
        const n = msg[2]
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0 || n > MAX_WINDOW) {
          throw protocolError('bad credit')
        }
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
    const identity = this.connection.remoteIdentity
    if (spec.roles !== undefined) {
      const role = identity?.organizationalUnit
      if (role === undefined || !spec.roles.includes(role)) {
        return this.refuse(
          method,
          `method ${method} is allowed for ${spec.roles.join(', ') || 'no role'}; the peer${
            identity ? ` ${identity.commonName}` : ''
          } has ${role === undefined ? 'no role' : `role ${role}`}`,
        )
      }
    }
    if (this.authorizer) {
      try {
        if (this.authorizer(identity, method) === false) {
          return this.refuse(method, `method ${method} is not allowed for this peer`)
        }
      } catch (error) {
        return this.refuse(
          method,
          `method ${method} is not allowed: ${(error as Error)?.message ?? error}`,
          error,
        )
      }
    }
    return spec
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

class StreamConsumer<T = unknown> implements RpcStream<T> {
  private buffer: unknown[] = []
  private head = 0
  private consumed = 0
  private done = false
  private error: unknown
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined
  private readonly onAbort: (() => void) | undefined

  constructor(
    private readonly session: RpcSession,
    private readonly id: number,
    private readonly method: string,
    private readonly window: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal) {
      this.onAbort = () => {
        this.session.forgetStream(this.id, true)
        this.fail(abortedError(signal, `stream ${this.method}`))
      }
      signal.addEventListener('abort', this.onAbort, { once: true })
    }
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** False when the producer overran the window. */
  push(item: unknown): boolean {
    if (this.done) return true
    if (this.buffer.length - this.head >= this.window) return false
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      this.took()
      w.resolve({ value: item as T, done: false })
      return true
    }
    this.buffer.push(item)
    return true
  }

  end(): void {
    if (this.done) return
    this.done = true
    this.detach()
    if (this.waiter && this.head >= this.buffer.length) {
      const w = this.waiter
      this.waiter = undefined
      w.resolve({ value: undefined, done: true })
    }
  }

  fail(error: unknown): void {
    if (this.done) return
    this.done = true
    this.error = error
    this.buffer = []
    this.head = 0
    this.detach()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.reject(error)
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head] as T
      this.buffer[this.head++] = undefined
      if (this.head === this.buffer.length) {
        this.buffer.length = 0
        this.head = 0
      }
      this.took()
      return Promise.resolve({ value, done: false })
    }
    if (this.done) {
      if (this.error !== undefined) {
        const e = this.error
        this.error = undefined
        return Promise.reject(e)
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    if (this.waiter) return Promise.reject(new TypeError('next() called while another next() is pending'))
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel()
    return Promise.resolve({ value: undefined, done: true })
  }

  cancel(): void {
    if (this.done) return
    this.session.forgetStream(this.id, true)
    this.done = true
    this.buffer = []
    this.head = 0
    this.detach()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.resolve({ value: undefined, done: true })
    }
  }

  private took(): void {
    if (this.done) return
    this.consumed++
    if (this.consumed * 2 >= this.window) {
      const n = this.consumed
      this.consumed = 0
      this.session.sendControl([CREDIT, this.id, n])
    }
  }

  private detach(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort)
  }
}

/** The value could not be encoded (as opposed to the connection failing). */
function isEncodingError(error: unknown): boolean {
  return error instanceof TypeError || isTransportError(error, 'FRAME_TOO_LARGE')
}

function checkMethod(method: unknown): asserts method is string {
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) {
    throw new TypeError(`method must be a string of 1 to ${MAX_METHOD_LENGTH} characters`)
  }
}

function str(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_METHOD_LENGTH)
    throw protocolError('bad method name')
  return v
}

function protocolError(message: string): TransportError {
  return new TransportError('BAD_FRAME', `protocol violation: ${message}`)
}

const TRANSPORT_CODES: ReadonlySet<TransportErrorCode> = new Set<TransportErrorCode>([
  'FORBIDDEN',
  'UNKNOWN_METHOD',
  'OVERLOADED',
  'FRAME_TOO_LARGE',
])

/** What the caller learns about an error: its name, message and string code, nothing else. */
function errorInfo(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const info: Record<string, unknown> = { name: error.name, message: error.message }
    if (typeof code === 'string') info.code = code
    if (isTransportError(error) && TRANSPORT_CODES.has(error.code)) info.t = 1
    return info
  }
  return { name: 'Error', message: String(error) }
}

function errorFromInfo(info: unknown): TransportError {
  const o = (typeof info === 'object' && info !== null ? info : {}) as Record<string, unknown>
  const name = typeof o.name === 'string' ? o.name.slice(0, 256) : 'Error'
  const message = typeof o.message === 'string' ? o.message.slice(0, 4096) : 'remote error'
  const code = typeof o.code === 'string' ? o.code.slice(0, 256) : undefined
  if (o.t === 1 && code !== undefined && TRANSPORT_CODES.has(code as TransportErrorCode)) {
    return new TransportError(code as TransportErrorCode, message)
  }
  const remote: RemoteErrorInfo = { name, message, code }
  return new TransportError('REMOTE_ERROR', `remote ${name}${code ? ` ${code}` : ''}: ${message}`, { remote })
}

interface ResolvedSessionOptions {
  methods: Methods
  authorize: MethodAuthorizer | undefined
  callTimeoutMs: number
  streamWindow: number
  maxConcurrent: number
  clock: Clock
}

/** Checks every session option (shared by sessions, servers and clients). */
export function resolveSessionOptions(options: RpcSessionOptions | undefined): ResolvedSessionOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  const methods = options?.methods ?? {}
  if (typeof methods !== 'object' || methods === null)
    throw new TypeError('options.methods must be an object')
  for (const [name, spec] of Object.entries(methods)) {
    if (name.length === 0 || name.length > MAX_METHOD_LENGTH) {
      throw new TypeError(`options.methods: method names must have 1 to ${MAX_METHOD_LENGTH} characters`)
    }
    if (
      !spec ||
      (spec.kind !== 'call' && spec.kind !== 'notify' && spec.kind !== 'stream') ||
      typeof spec.handler !== 'function'
    ) {
      throw new TypeError(`options.methods.${name} must be { kind: 'call' | 'notify' | 'stream', handler }`)
    }
    if (
      spec.roles !== undefined &&
      (!Array.isArray(spec.roles) || spec.roles.some((r) => typeof r !== 'string'))
    ) {
      throw new TypeError(`options.methods.${name}.roles must be an array of strings`)
    }
  }
  if (options?.authorize !== undefined && typeof options.authorize !== 'function') {
    throw new TypeError('options.authorize must be a function')
  }
  const streamWindow = positiveInt(options?.streamWindow, DEFAULT_STREAM_WINDOW, 'options.streamWindow')
  if (streamWindow > MAX_WINDOW) throw new RangeError(`options.streamWindow must be at most ${MAX_WINDOW}`)
  if (options?.maxFrameBytes !== undefined) positiveInt(options.maxFrameBytes, 1, 'options.maxFrameBytes')
  const clock = options?.clock ?? systemClock
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function') {
    throw new TypeError('options.clock must be a Clock')
  }
  return {
    methods,
    authorize: options?.authorize,
    callTimeoutMs: positiveInt(options?.callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS, 'options.callTimeoutMs'),
    streamWindow,
    maxConcurrent: positiveInt(options?.maxConcurrent, DEFAULT_MAX_CONCURRENT, 'options.maxConcurrent'),
    clock,
  }
}

/** Messaging over one connection (see {@link RpcSession}). */
export function rpcSession(connection: Connection, options?: RpcSessionOptions): RpcSession {
  return new RpcSession(connection, options)
}
