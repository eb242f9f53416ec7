// What each node's assignment stream must send after a commit. One tap on the store's commits serves every
// stream of a dispatcher: each task change marks the task on the stream of its node (and of the node it
// left), instead of every stream filtering every change; the stream then sends only those tasks. A change
// the worker made itself, a status report past `assigned` with nothing else different, marks nothing
// (swarm's dispatcher skips those too): the worker knows the state it reported. The same tap marks the
// network views (network-view.ts) that a change can alter: those of the nodes that hold a view, and of the
// nodes a task with networks is on or a network change may concern.

import type { ClusterStore, StoreEvent, Task } from '@swarmkit/store'
import { taskStateRank } from '@swarmkit/store'
import { tapStore } from './store-tap.js'

const RANK_ASSIGNED = taskStateRank('assigned')

/** The tables a node's assignments and network view are made from (the cluster object holds the overlay keys). */
type ViewTable = 'tasks' | 'networks' | 'services' | 'nodes' | 'clusters'

/** Whether a store change can change some node's network view (cheap: runs at commit). */
export function touchesNetworkView(e: StoreEvent<ViewTable>): boolean {
  if (e.table !== 'tasks') return true
  return (
    ((e.object as Task).networks?.length ?? 0) > 0 ||
    (e.action === 'update' && ((e.oldObject as Task).networks?.length ?? 0) > 0)
  )
}

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

/** What changed for a node since its stream last asked. */
export interface NodeChange {
  /** IDs of the node's tasks (or tasks that left it) whose assignment may differ. */
  readonly tasks: ReadonlySet<string>
  /** Whether the node's network view may differ. */
  readonly view: boolean
}

/** A node's subscription: `next()` resolves once something changed for it, undefined when it ends. */
export interface NodeChanges {
  next(): Promise<NodeChange | undefined>
  /** Whether the node holds a network view now: then every change that touches views marks it. */
  holdsView: boolean
  close(): void
}

export class AssignmentFanout {
  readonly #store: ClusterStore
  readonly #subs = new Map<string, Set<Subscription>>()
  /** The subscriptions whose node holds a network view. */
  readonly #viewers = new Set<Subscription>()
  #tap: AbortController | undefined

  constructor(store: ClusterStore) {
    this.#store = store
  }

  /** Follows the changes that concern `nodeId` until `signal` aborts or `close()`. */
  subscribe(nodeId: string, signal: AbortSignal): NodeChanges {
    const sub = new Subscription(this.#viewers, () => this.#remove(nodeId, sub))
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
    this.#viewers.delete(sub)
    if (set?.size === 0) this.#subs.delete(nodeId)
    if (this.#subs.size === 0) {
      this.#tap?.abort()
      this.#tap = undefined
    }
  }

  #markTask(nodeId: string, taskId: string): void {
    const set = this.#subs.get(nodeId)
    if (set) for (const s of set) s.markTask(taskId)
  }

  #markView(nodeId: string): void {
    const set = this.#subs.get(nodeId)
    if (set) for (const s of set) s.markView()
  }

  /** Routes one committed change to the streams it concerns. */
  #route(e: StoreEvent<ViewTable>): void {
    if (e.table === 'tasks') {
      const t = e as StoreEvent<'tasks'>
      const old = t.action === 'update' ? t.oldObject : undefined
      if (changesAssignment(t)) {
        if (t.object.nodeId) this.#markTask(t.object.nodeId, t.object.id)
        if (old?.nodeId && old.nodeId !== t.object.nodeId) this.#markTask(old.nodeId, t.object.id)
      }
      if (!touchesNetworkView(e)) return
      // A node without a view gets one only through a task with networks on it.
      if (t.object.nodeId) this.#markView(t.object.nodeId)
      if (old?.nodeId && old.nodeId !== t.object.nodeId) this.#markView(old.nodeId)
    } else if (e.table === 'networks') {
      // A network that gets its VNI or subnet can give a view to a node that had none: every node checks.
      for (const set of this.#subs.values()) for (const s of set) s.markView()
      return
    }
    for (const s of this.#viewers) s.markView()
  }

  /**
   * The tap is a watch whose filter routes each change as it commits and keeps none: nothing queues, so a
   * commit of any size cannot overflow it (a watch is dropped past its queue bound).
   */
  #startTap(): void {
    if (this.#tap) return
    // A store that closes (or drops the watch) ends every subscription: their streams end and agents resubscribe.
    const tap = tapStore(
      this.#store,
      ['tasks', 'networks', 'services', 'nodes', 'clusters'],
      (e) => this.#route(e),
      () => {
        if (this.#tap !== tap) return
        this.#tap = undefined
        for (const set of [...this.#subs.values()]) for (const s of [...set]) s.close()
      },
    )
    this.#tap = tap
  }
}

class Subscription implements NodeChanges {
  #tasks = new Set<string>()
  #view = false
  #closed = false
  #waiter: ((more: boolean) => void) | undefined
  readonly #viewers: Set<Subscription>
  readonly #onClose: () => void

  constructor(viewers: Set<Subscription>, onClose: () => void) {
    this.#viewers = viewers
    this.#onClose = onClose
  }

  get holdsView(): boolean {
    return this.#viewers.has(this)
  }

  set holdsView(v: boolean) {
    if (v && !this.#closed) this.#viewers.add(this)
    else this.#viewers.delete(this)
  }

  markTask(taskId: string): void {
    this.#tasks.add(taskId)
    this.#wake()
  }

  markView(): void {
    this.#view = true
    this.#wake()
  }

  #wake(): void {
    const w = this.#waiter
    this.#waiter = undefined
    w?.(true)
  }

  async next(): Promise<NodeChange | undefined> {
    if (this.#closed) return undefined
    if (this.#tasks.size === 0 && !this.#view) {
      const more = await new Promise<boolean>((r) => {
        this.#waiter = r
      })
      if (!more) return undefined
    }
    // Let the rest of a burst of commits land first: one message for all of them.
    await new Promise((r) => setImmediate(r))
    if (this.#closed) return undefined
    const change = { tasks: this.#tasks, view: this.#view }
    this.#tasks = new Set()
    this.#view = false
    return change
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#viewers.delete(this)
    const w = this.#waiter
    this.#waiter = undefined
    w?.(false)
    this.#onClose()
  }
}
