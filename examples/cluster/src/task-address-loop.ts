// The leader's task-address allocator, incremental (issue #18). It builds a TaskAddressIndex from one view
// of the store, in time slices, then follows the store's events; a pass gives addresses to the tasks (and
// nodes) that events marked, in bounded transactions with the event loop free between them. At 150,000
// tasks the old passes, each a walk over every task and an IPAM rebuilt from every held address, held a new
// leader's loop for up to 1.9 s and cost it elections.
//
// The index never runs ahead of the store: an address is taken from the book as a reservation while its
// transaction is written, and the reservation is given back after the transaction, committed or not; a
// committed one's events, read right after the commit, have by then made the tasks the holders. Each
// transaction first reads every event queued on the watch, so the index matches the state the transaction
// sees (events are queued synchronously at commit), and the store may run it again after a conflict: its
// earlier reservations are given back first. A dropped watch, a change of the networks, or a commit whose
// outcome is unknown rebuild the index from a fresh view.

import {
  type ClusterStore,
  isStoreError,
  type Network,
  type Node,
  type ReadTx,
  type Service,
  type StoreEvent,
  type Task,
  type Tx,
  type Watch,
} from '@swarmkit/store'
import { type AddressKey, addressKey } from './address-book.js'
import { inDutyScope } from './leader-scope.js'
import {
  ADDRESS_TABLES,
  type AddressTable,
  attachedTo,
  concernsAllocator,
  publishes,
  TaskAddressIndex,
} from './task-address-index.js'

export interface TaskAddressLoopOptions {
  store: ClusterStore
  /** The leader's term: every write is a leader duty of it (see leader-scope.ts). */
  term?: number
  log?: (line: string) => void
  /** Most tasks given addresses in one transaction (default 500). */
  batchSize?: number
  /** Longest stretch of work between two turns of the event loop, in ms (default 5). */
  sliceMs?: number
  /** After a failed commit, the wait before the next try, in ms (default 1,000). */
  retryMs?: number
  /** Events the watch may queue while a rebuild or a pass runs (default 1,000,000); past it: a rebuild. */
  queueSize?: number
}

/**
 * The tasks a rebuild indexes: those on a network (through the store's per-network index) and those of a
 * service that publishes or published a port, not a walk over every task. Only a live task matters to the
 * index, and a live task's networks all exist (the store refuses to remove a network a live task uses). A new
 * leader rebuilt from every task inside its takeover: 300,000 tasks copied out of the store in one turn.
 */
export function allocatorTasks(
  tx: ReadTx,
  networks: readonly Network[],
  services: readonly Service[],
): Task[] {
  const out = new Map<string, Task>()
  for (const n of networks) for (const t of tx.find('tasks', { referencedNetworkId: n.id })) out.set(t.id, t)
  for (const s of services) {
    if (!servicePublishes(s)) continue
    for (const t of tx.find('tasks', { serviceId: s.id })) if (publishes(t)) out.set(t.id, t)
  }
  return [...out.values()]
}

function servicePublishes(s: Service): boolean {
  const specPorts = (spec: Service['spec'] | undefined) => (spec?.endpointSpec?.ports?.length ?? 0) > 0
  return (s.endpoint?.ports?.length ?? 0) > 0 || specPorts(s.spec) || specPorts(s.previousSpec)
}

/** Thrown out of a transaction that found the index must be rebuilt first (nothing is written). */
class Resync extends Error {}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

export class TaskAddressLoop {
  readonly #store: ClusterStore
  readonly #term: number | undefined
  readonly #log: (line: string) => void
  readonly #batchSize: number
  readonly #sliceMs: number
  readonly #retryMs: number
  readonly #queueSize: number
  readonly #stop = new AbortController()
  #index: TaskAddressIndex | undefined
  #watch: Watch<AddressTable> | undefined
  #rebuild = true
  #running: Promise<void> | undefined
  #busy = false
  #retryAt = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #wake: (() => void) | undefined
  #woken = false
  /** The book's `released` count when the index's blocked tasks and nodes were last let go. */
  #blockedAt = 0
  /** Passes and transactions so far (for tests and benches). */
  readonly stats = { rebuilds: 0, passes: 0, commits: 0, failures: 0 }

  constructor(options: TaskAddressLoopOptions) {
    this.#store = options.store
    this.#term = options.term
    this.#log = options.log ?? (() => {})
    this.#batchSize = options.batchSize ?? 500
    this.#sliceMs = options.sliceMs ?? 5
    this.#retryMs = options.retryMs ?? 1000
    this.#queueSize = options.queueSize ?? 1_000_000
  }

  start(): void {
    this.#running ??= this.#run().catch((err: unknown) => {
      if (!this.#stop.signal.aborted) this.#log(`task address allocator stopped: ${(err as Error).message}`)
    })
  }

  /** Stops; resolves once a pass or rebuild under way has ended. */
  async stop(): Promise<void> {
    this.#stop.abort()
    clearTimeout(this.#retryTimer)
    this.#watch?.close()
    this.#signal()
    await this.#running
  }

  /** The index as of the events read so far (for checks), or undefined during a rebuild. */
  get index(): TaskAddressIndex | undefined {
    return this.#index
  }

  /** Nothing to do: the index is built, every queued event read, no pass running, nothing left to give. */
  settled(): boolean {
    return (
      !this.#busy &&
      !this.#rebuild &&
      this.#index !== undefined &&
      (this.#watch?.pending ?? 0) === 0 &&
      !this.#hasWork()
    )
  }

  #signal(): void {
    this.#woken = true
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  #sleep(): Promise<void> {
    if (this.#woken) {
      this.#woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#woken = false
        resolve()
      }
    })
  }

  async #run(): Promise<void> {
    const stopped = this.#stop.signal
    while (!stopped.aborted && !this.#store.closed) {
      try {
        await this.#step()
      } catch (err) {
        // A bug, not a store failure (those are retried where they happen): start again from the store.
        if (stopped.aborted) return
        this.#log(`task address allocator failed: ${(err as Error).message}; rebuilding`)
        this.#rebuild = true
        await new Promise((r) => setTimeout(r, this.#retryMs))
      } finally {
        this.#busy = false
      }
    }
  }

  /** Rebuilds, or reads the queued events and runs a pass, or sleeps until there is something to do. */
  async #step(): Promise<void> {
    if (this.#rebuild) {
      this.#busy = true
      await this.#resync()
      return
    }
    this.#drain()
    if (this.#rebuild) return
    if (this.#hasWork() && performance.now() >= this.#retryAt) {
      this.#busy = true
      await this.#pass()
      return
    }
    await this.#sleep()
  }

  /** A fresh index from one view of the store (watched from that view's version), built in time slices. */
  async #resync(): Promise<void> {
    const first = this.stats.rebuilds === 0
    this.stats.rebuilds++
    this.#rebuild = false
    this.#index = undefined
    this.#watch?.close()
    if (!first) this.#log('task address allocator: rebuilding its index from the store')
    const watch = this.#store.watch<AddressTable>({
      table: ADDRESS_TABLES,
      queueSize: this.#queueSize,
      signal: this.#stop.signal,
      filter: (e) => {
        if (!concernsAllocator(e)) return false
        this.#signal()
        return true
      },
    })
    this.#watch = watch
    // Read at once, at the version the watch starts from; indexed below in slices (the objects are frozen).
    const { networks, services, nodes, tasks } = this.#store.view((tx) => {
      const networks = tx.find('networks')
      const services = tx.find('services')
      return { networks, services, nodes: tx.find('nodes'), tasks: allocatorTasks(tx, networks, services) }
    })
    const index = new TaskAddressIndex(networks, this.#log)
    let sliceStart = performance.now()
    let calls = 0
    const due = () => {
      if (++calls < 64) return false
      calls = 0
      return performance.now() - sliceStart >= this.#sliceMs
    }
    const pause = async () => {
      await turn()
      sliceStart = performance.now()
    }
    for (const s of services) {
      index.putService(s.id, s)
      if (due()) await pause()
    }
    for (const n of nodes) {
      index.putNode(n.id, n)
      if (due()) await pause()
    }
    for (const t of tasks) {
      if (t.networks.length > 0 || t.endpoint?.ports?.length) index.putTask(t.id, t)
      if (due()) {
        await pause()
        if (this.#stop.signal.aborted) return
      }
    }
    index.book.settle()
    this.#blockedAt = 0
    this.#retryAt = 0
    this.#index = index
    this.#drain()
  }

  /** Reads every queued event into the index. */
  #drain(): void {
    const w = this.#watch
    const index = this.#index
    if (!w || !index || this.#rebuild) return
    for (let e = w.poll(); e !== undefined; e = w.poll()) {
      if (!index.event(e as StoreEvent<AddressTable>)) {
        this.#rebuild = true
        return
      }
    }
    if (w.closed && !this.#stop.signal.aborted && !this.#store.closed) {
      this.#log('task address allocator: its store watch was dropped')
      this.#rebuild = true
    }
  }

  #hasWork(): boolean {
    const index = this.#index
    if (!index) return false
    if (index.book.released !== this.#blockedAt) {
      // An address went back: whatever waited for one may get it now.
      index.blockedTasks.clear()
      index.blockedNodes.clear()
      this.#blockedAt = index.book.released
    }
    if (index.tasks.size > index.blockedTasks.size) return true
    return (
      index.ingress !== undefined && index.onIngress.size > 0 && index.nodes.size > index.blockedNodes.size
    )
  }

  /** Gives addresses to what the index marked, in transactions, the loop free between them. */
  async #pass(): Promise<void> {
    this.stats.passes++
    const index = this.#index!
    const todo = [...index.tasks].filter((id) => !index.blockedTasks.has(id))
    let at = 0
    do {
      const next = await this.#commit(index, todo, at)
      if (next < 0) return
      at = next
      await turn()
      this.#drain()
      if (this.#rebuild || this.#stop.signal.aborted) return
    } while (at < todo.length)
  }

  /**
   * One transaction for the tasks of `todo` from `from` on (as many as fit its bounds), and the nodes if
   * due; returns where the next one starts, or -1 if it failed (and a retry or a rebuild is arranged).
   */
  async #commit(index: TaskAddressIndex, todo: readonly string[], from: number): Promise<number> {
    const reserved: AddressKey[] = []
    const giveBack = () => {
      for (const k of reserved) index.book.unreserve(k)
      reserved.length = 0
    }
    const write = () =>
      this.#store.update((tx) => {
        giveBack() // an earlier run of this transaction's (refused at apply, run again by the store)
        this.#drain()
        if (this.#rebuild || this.#index !== index) throw new Resync('the index is being rebuilt')
        return this.#write(tx, index, todo, from, reserved)
      })
    try {
      const next = await (this.#term === undefined ? write() : inDutyScope(this.#term, write))
      this.stats.commits++
      // The commit's own events: its tasks and nodes now hold what was reserved for them.
      this.#drain()
      giveBack()
      return next
    } catch (err) {
      giveBack()
      if (err instanceof Resync || this.#stop.signal.aborted) return -1
      this.stats.failures++
      this.#log(`task addresses not allocated: ${(err as Error).message}; retrying`)
      // A command whose outcome is unknown may still commit: start again from what the store holds.
      if (isStoreError(err, 'OUTCOME_UNKNOWN')) this.#rebuild = true
      this.#retryAt = performance.now() + this.#retryMs
      clearTimeout(this.#retryTimer)
      // (The timer may fire a little before `retryAt` by the clock: it ends the wait itself.)
      this.#retryTimer = setTimeout(() => {
        this.#retryAt = 0
        this.#signal()
      }, this.#retryMs)
      this.#retryTimer.unref?.()
      return -1
    }
  }

  /**
   * Writes tasks of `todo` from `from` on with their addresses, up to the batch size or the time slice, then
   * the nodes' ingress attachments if due; returns where the next transaction starts.
   */
  #write(
    tx: Tx,
    index: TaskAddressIndex,
    todo: readonly string[],
    from: number,
    reserved: AddressKey[],
  ): number {
    const reserve = (network: string, bits: string): string => {
      const address = index.book.reserve(network)
      reserved.push(addressKey(network, address))
      return `${address}/${bits}`
    }
    const started = performance.now()
    const ingress = index.ingress
    let gaveIngress = false
    let written = 0
    let at = from
    const end = Math.min(todo.length, from + this.#batchSize)
    for (; at < end; at++) {
      if (written % 32 === 31 && performance.now() - started >= this.#sliceMs) break
      const id = todo[at]!
      if (!index.tasks.has(id) || index.blockedTasks.has(id)) continue
      const t = tx.get('tasks', id)
      if (!t || !index.needs(t)) continue
      let networks: Task['networks']
      try {
        networks = t.networks.map((a) => {
          const bits = index.nets.get(a.networkId)
          return a.addresses.length > 0 || bits === undefined
            ? a
            : { ...a, addresses: [reserve(a.networkId, bits)] }
        })
        if (ingress && publishes(t) && !attachedTo(networks, ingress.id)) {
          networks = [
            ...networks.filter((a) => a.networkId !== ingress.id),
            { networkId: ingress.id, addresses: [reserve(ingress.id, ingress.bits)] },
          ]
          gaveIngress = true
        }
      } catch (err) {
        // No address left on a network: the task waits until one is released (its reservations so far
        // are given back with the transaction's).
        index.blockedTasks.add(id)
        this.#log(`task ${id} not given an address: ${(err as Error).message}`)
        continue
      }
      tx.update('tasks', { ...t, networks })
      written++
    }
    if (!ingress || index.nodes.size === 0 || !(gaveIngress || index.onIngress.size > 0)) return at
    for (const id of index.nodes) {
      if (index.blockedNodes.has(id)) continue
      const n: Node | undefined = tx.get('nodes', id)
      if (!n || !index.nodeNeeds(n)) continue
      let address: string
      try {
        address = reserve(ingress.id, ingress.bits)
      } catch (err) {
        index.blockedNodes.add(id)
        this.#log(`node ${id} not given an ingress address: ${(err as Error).message}`)
        continue
      }
      const others = (n.attachments ?? []).filter((a) => a.networkId !== ingress.id)
      tx.update('nodes', { ...n, attachments: [...others, { networkId: ingress.id, addresses: [address] }] })
      if (++written >= this.#batchSize * 2) break
    }
    return at
  }
}
