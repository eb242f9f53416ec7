// When the routing mesh may have changed, for every node's mesh stream of a dispatcher at once. Each stream
// had its own store watch on services and tasks, so every task change was queued, and read one at a time, by
// every worker's stream: at 5,000 nodes and 150,000 tasks that is billions of reads for a list that, for
// services without published ports, never changes. One tap now notes that a burst of commits touched the
// tables and wakes the streams once per burst; each stream then compares the list (made once per store
// version by the dispatcher) with the one it sent. With `key` (the list's identity, made once per store
// version), a burst that leaves the list as the last burst left it wakes no stream: in a 150,000-task create
// every simulated worker's stream (1,700 per manager) was woken by every burst to find the same empty list.

import type { ClusterStore } from '@swarmkit/store'
import { tapStore } from './store-tap.js'

/** A stream's view of the feed: `next()` resolves true once something changed since the last call. */
export interface MeshChanges {
  /** True after a change (at once if one came since the last call); false once the feed ends for it. */
  next(): Promise<boolean>
  close(): void
}

export class MeshFeed {
  readonly #store: ClusterStore
  /** Bursts of commits seen so far: a subscription is behind while its count is lower. */
  #bursts = 0
  #burstQueued = false
  readonly #waiting = new Set<(more: boolean) => void>()
  #subscribers = 0
  #tap: AbortController | undefined
  /** Bumped when the tap ends: subscriptions of an earlier tap are over (their streams end, agents resubscribe). */
  #generation = 0

  readonly #key: (() => string) | undefined
  /** The list's key at the end of the last burst that woke the streams. */
  #lastKey: string | undefined
  /** A stream subscribed while a burst was open: it may have read a list the burst's end undoes. */
  #joinedMidBurst = false

  /** `key`: what identifies the list now (streams are woken only when it changed since the last wake). */
  constructor(store: ClusterStore, key?: () => string) {
    this.#store = store
    this.#key = key
  }

  /** Follows the changes that may alter the mesh until `signal` aborts or `close()`. */
  subscribe(signal: AbortSignal): MeshChanges {
    this.#startTap()
    this.#subscribers++
    if (this.#burstQueued) this.#joinedMidBurst = true
    const generation = this.#generation
    let seen = this.#bursts
    let closed = false
    let waiter: ((more: boolean) => void) | undefined
    const close = () => {
      if (closed) return
      closed = true
      this.#subscribers--
      signal.removeEventListener('abort', close)
      if (waiter) {
        this.#waiting.delete(waiter)
        waiter(false)
        waiter = undefined
      }
      if (this.#subscribers === 0) this.#stopTap()
    }
    if (signal.aborted) close()
    else signal.addEventListener('abort', close, { once: true })
    return {
      next: async () => {
        if (generation !== this.#generation) close()
        if (closed) return false
        if (this.#bursts === seen) {
          const more = await new Promise<boolean>((resolve) => {
            waiter = resolve
            this.#waiting.add(resolve)
          })
          waiter = undefined
          if (!more) {
            close()
            return false
          }
        }
        seen = this.#bursts
        return !closed
      },
      close,
    }
  }

  #wake(more: boolean): void {
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const w of waiting) w(more)
  }

  /** A commit touched the tables: wake the streams once, after the rest of the burst has landed. */
  #touched(): void {
    if (this.#burstQueued) return
    this.#burstQueued = true
    setImmediate(() => {
      this.#burstQueued = false
      if (this.#key) {
        const key = this.#key()
        const same = key === this.#lastKey && !this.#joinedMidBurst
        this.#lastKey = key
        this.#joinedMidBurst = false
        if (same) return
      }
      this.#bursts++
      this.#wake(true)
    })
  }

  /** One watch whose filter notes the change and keeps none: nothing queues, whatever the commit's size. */
  #startTap(): void {
    if (this.#tap) return
    // Commits while nothing watched were not seen: the next burst wakes the streams whatever its key.
    this.#lastKey = undefined
    const tap = tapStore(
      this.#store,
      ['services', 'tasks'],
      () => this.#touched(),
      () => {
        // The store closed or dropped the watch: every stream ends, and its agent resubscribes.
        if (this.#tap !== tap) return
        this.#tap = undefined
        this.#generation++
        this.#wake(false)
      },
    )
    this.#tap = tap
  }

  #stopTap(): void {
    this.#tap?.abort()
    this.#tap = undefined
  }
}
