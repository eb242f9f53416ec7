// Which nodes' assignment streams must send again after a commit. One tap on the store's commits serves every
// stream of a dispatcher: each task change wakes only the stream of its node (and of the node it left),
// instead of every stream filtering every change. A change the worker made itself, a status report past
// `assigned` with nothing else different, wakes nobody (swarm's dispatcher skips those too): the worker
// knows the state it reported, and the next list it gets carries it.

import type { ClusterStore, StoreEvent, Task } from '@swarmkit/store'
import { taskStateRank } from '@swarmkit/store'

const RANK_ASSIGNED = taskStateRank('assigned')

/** Whether a task change matters to the node that runs it. */
export function changesAssignment(e: StoreEvent<'tasks'>): boolean {
  if (e.action !== 'update') return true
  const a = e.oldObject
  const b = e.object
  if (taskStateRank(b.status.state) <= RANK_ASSIGNED) return true
  if (taskStateRank(a.status.state) < RANK_ASSIGNED) return true
  return !(
    a.nodeId === b.nodeId &&
    a.desiredState === b.desiredState &&
    a.slot === b.slot &&
    a.serviceAnnotations.name === b.serviceAnnotations.name &&
    (a.spec === b.spec || JSON.stringify(a.spec) === JSON.stringify(b.spec)) &&
    (a.networks === b.networks || JSON.stringify(a.networks) === JSON.stringify(b.networks)) &&
    (a.assignedGenericResources === b.assignedGenericResources ||
      JSON.stringify(a.assignedGenericResources) === JSON.stringify(b.assignedGenericResources))
  )
}

/** A node's subscription: `next()` resolves true once something changed for it, false when it ends. */
export interface NodeChanges {
  next(): Promise<boolean>
  close(): void
}

export class AssignmentFanout {
  readonly #store: ClusterStore
  readonly #subs = new Map<string, Set<Subscription>>()
  #tap: AbortController | undefined

  constructor(store: ClusterStore) {
    this.#store = store
  }

  /** Follows the changes that concern `nodeId` until `signal` aborts or `close()`. */
  subscribe(nodeId: string, signal: AbortSignal): NodeChanges {
    const sub = new Subscription(() => this.#remove(nodeId, sub))
    let set = this.#subs.get(nodeId)
    if (!set) this.#subs.set(nodeId, (set = new Set()))
    set.add(sub)
    if (signal.aborted) sub.close()
    else signal.addEventListener('abort', () => sub.close(), { once: true })
    this.#startTap()
    return sub
  }

  #remove(nodeId: string, sub: Subscription): void {
    const set = this.#subs.get(nodeId)
    set?.delete(sub)
    if (set?.size === 0) this.#subs.delete(nodeId)
    if (this.#subs.size === 0) {
      this.#tap?.abort()
      this.#tap = undefined
    }
  }

  #wake(nodeId: string): void {
    const set = this.#subs.get(nodeId)
    if (set) for (const s of set) s.wake()
  }

  /**
   * The tap is a watch whose filter routes each change as it commits and keeps none: nothing queues, so a
   * commit of any size cannot overflow it (a watch is dropped past its queue bound).
   */
  #startTap(): void {
    if (this.#tap) return
    const tap = new AbortController()
    this.#tap = tap
    const watch = this.#store.watch({
      table: 'tasks',
      signal: tap.signal,
      filter: (e) => {
        if (!changesAssignment(e)) return false
        if (e.object.nodeId) this.#wake(e.object.nodeId)
        if (e.action === 'update' && e.oldObject.nodeId && e.oldObject.nodeId !== e.object.nodeId)
          this.#wake(e.oldObject.nodeId)
        return false
      },
    })
    // A store that closes (or drops the watch) ends every subscription: their streams end and agents resubscribe.
    void (async () => {
      try {
        for await (const _ of watch);
      } catch {
        // dropped: end the subscriptions below
      }
      if (this.#tap !== tap) return
      this.#tap = undefined
      for (const set of [...this.#subs.values()]) for (const s of [...set]) s.close()
    })()
  }
}

class Subscription implements NodeChanges {
  #dirty = false
  #closed = false
  #waiter: ((more: boolean) => void) | undefined
  readonly #onClose: () => void

  constructor(onClose: () => void) {
    this.#onClose = onClose
  }

  wake(): void {
    this.#dirty = true
    const w = this.#waiter
    this.#waiter = undefined
    w?.(true)
  }

  async next(): Promise<boolean> {
    if (this.#closed) return false
    if (!this.#dirty) {
      const more = await new Promise<boolean>((r) => {
        this.#waiter = r
      })
      if (!more) return false
    }
    // Let the rest of a burst of commits land first: one list for all of them.
    await new Promise((r) => setImmediate(r))
    this.#dirty = false
    return !this.#closed
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    const w = this.#waiter
    this.#waiter = undefined
    w?.(false)
    this.#onClose()
  }
}
