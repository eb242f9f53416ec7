import { EventEmitter } from 'eventemitter3'
import { TransportError } from './errors.js'
import { abortedError, checkSignal } from './internal/abort.js'
import { checkAddress, nonNegative, positiveInt } from './internal/limits.js'
import { resolveSessionOptions } from './session/options.js'
import {
  type CallOptions,
  RpcSession,
  type RpcSessionOptions,
  type RpcStream,
  type StreamOptions,
} from './session.js'
import type { AbortOptions, Clock, Transport } from './types.js'

/** Exponential backoff with jitter between dial attempts. */
export interface ReconnectOptions {
  /** Delay before the first retry in ms (default 50). */
  readonly initialDelayMs?: number | undefined
  /** Largest delay in ms (default 5,000). */
  readonly maxDelayMs?: number | undefined
  /** Growth per failed attempt (default 2). */
  readonly multiplier?: number | undefined
  /** Fraction in [0, 1] of each delay that is random (default 0.5: a delay d becomes d/2 to d). */
  readonly jitter?: number | undefined
}

/** Options of {@link rpcClient}. */
export interface RpcClientOptions extends RpcSessionOptions {
  readonly transport: Transport
  readonly address: string
  /** Redial with backoff when a dial fails or the connection drops (default on); `false` to dial only on use. */
  readonly reconnect?: ReconnectOptions | false | undefined
  /** Random source in [0, 1) for the jitter (default `Math.random`); seed it for simulations. */
  readonly random?: (() => number) | undefined
  /** Per-dial timeout in ms (default: the transport's). */
  readonly connectTimeoutMs?: number | undefined
}

/** Events of an {@link RpcClient}. */
export interface RpcClientEvents {
  'session:open': (session: RpcSession) => void
  'session:close': (error?: TransportError) => void
  /** A dial failed; the next attempt is in `retryInMs` (undefined: no retry, reconnect is off). */
  'dial:fail': (error: unknown, attempt: number, retryInMs: number | undefined) => void
}

interface Waiter {
  resolve: (session: RpcSession) => void
  reject: (error: unknown) => void
}

/**
 * A session to one address that dials on first use and redials with exponential backoff and jitter.
 * Calls made while disconnected wait for the connection (within their timeout); one-way messages
 * are dropped (`notify` returns false) and trigger a dial.
 */
export class RpcClient extends EventEmitter<RpcClientEvents> {
  readonly address: string
  private readonly transport: Transport
  private readonly sessionOptions: RpcSessionOptions
  private readonly clock: Clock
  private readonly callTimeoutMs: number
  private readonly reconnect: Required<ReconnectOptions> | undefined
  private readonly random: () => number
  private readonly connectTimeoutMs: number | undefined
  private current: RpcSession | undefined
  private dialing = false
  private attempt = 0
  private retryTimer: unknown
  private waiters: Waiter[] = []
  private isClosed = false
  private readonly lifetime = new AbortController()

  constructor(options: RpcClientOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    const t = options.transport
    if (!t || typeof t.listen !== 'function' || typeof t.dial !== 'function') {
      throw new TypeError('options.transport must be a Transport')
    }
    checkAddress(options.address, 'options.address')
    this.address = options.address
    this.transport = t
    this.sessionOptions = { ...options, clock: options.clock ?? t.clock }
    const resolved = resolveSessionOptions(this.sessionOptions)
    this.clock = resolved.clock
    this.callTimeoutMs = resolved.callTimeoutMs
    const r = options.reconnect
    if (r === false) {
      this.reconnect = undefined
    } else {
      if (r !== undefined && (typeof r !== 'object' || r === null)) {
        throw new TypeError('options.reconnect must be an object or false')
      }
      const jitter = nonNegative(r?.jitter, 0.5, 'options.reconnect.jitter')
      if (jitter > 1) throw new RangeError('options.reconnect.jitter must be in [0, 1]')
      const multiplier = nonNegative(r?.multiplier, 2, 'options.reconnect.multiplier')
      if (multiplier < 1) throw new RangeError('options.reconnect.multiplier must be at least 1')
      this.reconnect = {
        initialDelayMs: nonNegative(r?.initialDelayMs, 50, 'options.reconnect.initialDelayMs'),
        maxDelayMs: nonNegative(r?.maxDelayMs, 5000, 'options.reconnect.maxDelayMs'),
        multiplier,
        jitter,
      }
    }
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw new TypeError('options.random must be a function')
    }
    this.random = options.random ?? Math.random
    this.connectTimeoutMs =
      options.connectTimeoutMs === undefined
        ? undefined
        : positiveInt(options.connectTimeoutMs, 1, 'options.connectTimeoutMs')
  }

  /** The open session, if connected. */
  get session(): RpcSession | undefined {
    return this.current
  }

  get connected(): boolean {
    return this.current !== undefined
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** The delay before retry number `attempt` (1-based), with jitter drawn from `random`. */
  backoffMs(attempt: number): number {
    const r = this.reconnect
    if (!r) return 0
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.multiplier ** Math.max(0, attempt - 1))
    return base * (1 - r.jitter * this.random())
  }

  /** Resolve with the session once connected (dialing, and redialing with backoff, as needed). */
  connect(options?: AbortOptions): Promise<RpcSession> {
    checkSignal(options)
    return this.waitSession(options?.signal, undefined)
  }

  /** Call a method on the server; waits for a connection within the call's timeout. */
  call<R = unknown>(method: string, payload?: unknown, options?: CallOptions): Promise<R> {
    // Connected (nearly always): straight to the session, without a promise of our own around its call.
    // Every mistake still rejects (as from an async function), never throws.
    try {
      checkSignal(options)
      const timeoutMs = positiveInt(options?.timeoutMs, this.callTimeoutMs, 'options.timeoutMs')
      const session = this.current
      if (session !== undefined) return session.call<R>(method, payload, options)
      return this.callWhenConnected<R>(method, payload, options, timeoutMs)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private async callWhenConnected<R>(
    method: string,
    payload: unknown,
    options: CallOptions | undefined,
    timeoutMs: number,
  ): Promise<R> {
    // Waiting for the connection counts against the call's timeout.
    const start = this.clock.now()
    const session = await this.waitSession(options?.signal, timeoutMs)
    const remaining = Math.max(1, Math.ceil(timeoutMs - (this.clock.now() - start)))
    return session.call<R>(method, payload, { signal: options?.signal, timeoutMs: remaining })
  }

  /** Send a one-way message if connected; otherwise start dialing and return false. */
  notify(method: string, payload?: unknown): boolean {
    const session = this.current
    if (!session) {
      this.ensure()
      return false
    }
    return session.notify(method, payload)
  }

  /** Open a server stream; waits for a connection first. */
  stream<T = unknown>(method: string, payload?: unknown, options?: StreamOptions): RpcStream<T> {
    checkSignal(options)
    if (this.current) return this.current.stream<T>(method, payload, options)
    return lazyStream<T>(this.waitSession(options?.signal, undefined), method, payload, options)
  }

  /** Stop redialing, fail waiting calls and close the session; pending calls fail with `CLOSED`. */
  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.isClosed) return
    this.isClosed = true
    this.lifetime.abort(new TransportError('CLOSED', 'client closed'))
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    this.rejectWaiters(new TransportError('CLOSED', 'client closed'))
    const s = this.current
    this.current = undefined
    await s?.close(options)
  }

  private waitSession(signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<RpcSession> {
    if (this.isClosed) return Promise.reject(new TransportError('CLOSED', 'client is closed'))
    if (signal?.aborted) return Promise.reject(abortedError(signal, 'connect'))
    if (this.current) return Promise.resolve(this.current)
    return new Promise<RpcSession>((resolve, reject) => {
      let timer: unknown
      const cleanup = () => {
        if (timer !== undefined) this.clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      }
      const waiter: Waiter = {
        resolve: (s) => {
          cleanup()
          resolve(s)
        },
        reject: (e) => {
          cleanup()
          reject(e)
        },
      }
      const onAbort = () => waiter.reject(abortedError(signal!, 'connect'))
      signal?.addEventListener('abort', onAbort, { once: true })
      if (timeoutMs !== undefined) {
        timer = this.clock.setTimeout(
          () =>
            waiter.reject(
              new TransportError('TIMEOUT', `no connection to ${this.address} within ${timeoutMs} ms`),
            ),
          timeoutMs,
        )
      }
      this.waiters.push(waiter)
      this.ensure()
    })
  }

  private ensure(): void {
    if (this.isClosed || this.current || this.dialing || this.retryTimer !== undefined) return
    this.dialing = true
    void this.dialOnce()
  }

  private async dialOnce(): Promise<void> {
    let connection: Awaited<ReturnType<Transport['dial']>>
    try {
      connection = await this.transport.dial(this.address, {
        signal: this.lifetime.signal,
        timeoutMs: this.connectTimeoutMs,
      })
    } catch (error) {
      this.dialing = false
      if (this.isClosed) return
      this.attempt++
      if (!this.reconnect) {
        this.emit('dial:fail', error, this.attempt, undefined)
        this.rejectWaiters(error)
        return
      }
      const delay = this.backoffMs(this.attempt)
      this.emit('dial:fail', error, this.attempt, delay)
      this.scheduleRetry(delay)
      return
    }
    this.dialing = false
    if (this.isClosed) {
      await connection.close()
      return
    }
    const session = new RpcSession(connection, this.sessionOptions)
    this.current = session
    this.attempt = 0
    session.on('session:close', (error) => {
      if (this.current === session) this.current = undefined
      this.emit('session:close', error)
      if (!this.isClosed && this.reconnect) {
        // Redial soon, with jitter, so that a restarted server is not hit by every client at once.
        this.scheduleRetry(this.backoffMs(1))
      }
    })
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.resolve(session)
    this.emit('session:open', session)
  }

  private scheduleRetry(delay: number): void {
    if (this.isClosed || this.retryTimer !== undefined) return
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined
      this.ensure()
    }, delay)
  }

  private rejectWaiters(error: unknown): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(error)
  }
}

function lazyStream<T>(
  session: Promise<RpcSession>,
  method: string,
  payload: unknown,
  options: StreamOptions | undefined,
): RpcStream<T> {
  let inner: RpcStream<T> | undefined
  let cancelled = false
  const ready = session.then((s) => {
    inner = s.stream<T>(method, payload, options)
    if (cancelled) inner.cancel()
    return inner
  })
  // A failure is reported by next(); until someone calls it, it must not count as unhandled.
  ready.catch(() => undefined)
  const stream: RpcStream<T> = {
    [Symbol.asyncIterator]() {
      return stream
    },
    async next() {
      if (cancelled) return { value: undefined, done: true }
      return (inner ?? (await ready)).next()
    },
    async return() {
      stream.cancel()
      return { value: undefined, done: true }
    },
    cancel() {
      cancelled = true
      inner?.cancel()
    },
  }
  return stream
}

/** A client of one address (see {@link RpcClient}). */
export function rpcClient(options: RpcClientOptions): RpcClient {
  return new RpcClient(options)
}
