// The serving side's record of one call or stream the peer has in progress: credits, cancellation, and the
// handler's context (its AbortSignal is made only if a handler asks for it, since most never do).
import type { RpcSession } from '../session.js'
import type { PeerIdentity } from '../types.js'
import type { MethodContext } from './methods.js'

/** A call or stream the peer has in progress here; its context, with the signal made on first use. */
export class Incoming implements MethodContext {
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
