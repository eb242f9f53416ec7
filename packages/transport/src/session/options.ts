// Session options and their checks, shared by sessions, servers and clients (which pass them through).
import { systemClock } from '../clock.js'
import { positiveInt } from '../internal/limits.js'
import type { AbortOptions, Clock } from '../types.js'
import type { MethodAuthorizer, Methods } from './methods.js'
import { MAX_METHOD_LENGTH, MAX_WINDOW } from './protocol.js'

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

const DEFAULT_CALL_TIMEOUT_MS = 10_000
const DEFAULT_STREAM_WINDOW = 64
const DEFAULT_MAX_CONCURRENT = 4096

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
