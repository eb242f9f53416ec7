import type { RaftCore } from '../core.js'

/** Test-only access to a RaftNode's core (for invariant checks in simulations); not part of the public API. */
export const coreOf = new WeakMap<object, () => RaftCore | null>()
