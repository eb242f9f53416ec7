// What a session serves: the three kinds of method, their access rules and the context a handler gets.
// Kept apart from the session so that servers, clients and method tables can name them without the engine.
import type { RpcSession } from '../session.js'
import type { PeerIdentity } from '../types.js'

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
