// A follower manager's heartbeats, handed on to the leader together: the nodes heard since the last send go
// in one call, at most one call in flight, at most one call per interval. One call per heartbeat (a
// thousand a second at 5,000 nodes) queued on a busy leader, timed out at 2 s and was lost, and nodes whose
// heartbeats kept arriving here were marked down. Now a call waits as long as a heartbeat period, and the
// nodes of a call that failed go again with the next one: a node heard here reaches the leader as soon as
// the leader can take it.

export interface HeartbeatRelayOptions {
  /** Tells the leader these nodes were heard (rejects if it could not, or not within `timeoutMs`). */
  readonly send: (nodeIds: readonly string[], timeoutMs: number) => Promise<void>
  /** The heartbeat period now (the cluster's setting may change). */
  readonly periodMs: () => number
  /** Shortest time between two sends. Default: a fifth of the period, at most 1 s. */
  readonly intervalMs?: () => number
  readonly log?: (line: string) => void
  /** The clock of `handOnRecent`. Default `performance.now`. */
  readonly now?: () => number
}

export interface HeartbeatRelay {
  /** Notes a heartbeat of `nodeId`, to go to the leader with the next send. */
  seen(nodeId: string): void
  /**
   * Hands on again every node heard within the last `withinMs` (a new leader knows nothing of them: without
   * this it learns of this manager's nodes one heartbeat period after the election, as each beats again).
   */
  handOnRecent(withinMs: number): void
  /** Calls made so far (for tests and metrics). */
  readonly sends: number
  /** Nodes heard and not yet handed on. */
  readonly pending: number
  close(): void
}

/** Most nodes in one call: the list stays small on the wire (IDs of 25 characters). */
export const MAX_RELAYED = 10_000

export function heartbeatRelay(options: HeartbeatRelayOptions): HeartbeatRelay {
  const log = options.log ?? (() => {})
  const intervalMs = options.intervalMs ?? (() => Math.min(1000, options.periodMs() / 5))
  let pending = new Set<string>()
  /** When each node was last heard here (the clock of `now`). */
  let recent = new Map<string, number>()
  const now = options.now ?? (() => performance.now())
  let timer: ReturnType<typeof setTimeout> | undefined
  let inFlight = false
  let closed = false
  let sends = 0
  let failing = false

  const schedule = () => {
    if (closed || timer || inFlight || pending.size === 0) return
    timer = setTimeout(() => {
      timer = undefined
      void flush()
    }, intervalMs())
    timer.unref?.()
  }

  const flush = async () => {
    const ids = [...pending].slice(0, MAX_RELAYED)
    for (const id of ids) pending.delete(id)
    inFlight = true
    sends++
    try {
      // As long as a heartbeat period: a slow leader still takes the call, and a node counts as down only
      // after three periods without one.
      await options.send(ids, options.periodMs())
      if (failing) log('heartbeats reach the leader again')
      failing = false
    } catch (err) {
      // Heard all the same: they go again with the next call (unless closed).
      for (const id of ids) pending.add(id)
      if (!failing) log(`heartbeats not handed on to the leader (will retry): ${(err as Error).message}`)
      failing = true
    } finally {
      inFlight = false
      schedule()
    }
  }

  return {
    seen(nodeId) {
      if (closed) return
      pending.add(nodeId)
      recent.set(nodeId, now())
      schedule()
    },
    handOnRecent(withinMs) {
      if (closed) return
      const since = now() - withinMs
      for (const [id, at] of recent) {
        if (at >= since) pending.add(id)
        else recent.delete(id)
      }
      schedule()
    },
    get sends() {
      return sends
    },
    get pending() {
      return pending.size
    },
    close() {
      closed = true
      clearTimeout(timer)
      timer = undefined
      pending = new Set()
      recent = new Map()
    },
  }
}
