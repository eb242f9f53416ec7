import type { ReadTx, StoreEvent, Task } from '@swarmkit/store'
import { EventEmitter } from 'eventemitter3'
import { type Clock, systemClock } from './clock.js'
import { SchedulerError } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import { WatchLoop } from './internal/loop.js'
import { checkActivate, checkDeactivate } from './internal/standby.js'
import { holdsNode, isFailure, isPending } from './internal/task-state.js'
import { TimeSlice } from './internal/time-slice.js'
import { type Assignment, createPlacer, type Placer, type PlacerOptions } from './placement.js'
import { checkStore, type Logger, type SchedulerStore, silentLogger } from './store.js'

/** What `createScheduler` takes: the store, and optional clock, logger and batching limits. */
export interface SchedulerOptions {
  /** The cluster state (a `ClusterStore`). */
  store: SchedulerStore
  clock?: Clock
  logger?: Logger
  /** Task updates per store transaction when writing decisions (default 1000). */
  commitSize?: number
  /**
   * Tasks placed per pass, per node in the cluster (default 0: a pass places `commitSize`). A pass places
   * at most `max(commitSize, passPerNode x nodes)` tasks, and writes them grouped by node: a node's tasks of
   * one pass are committed in one transaction (but where a group is larger than a transaction), so that
   * its dispatcher sends them in one assignments message. At 5,000 nodes, 1,000 tasks per pass put at most
   * one task on a node per commit: every task its own message, and its own status report.
   */
  passPerNode?: number
  /**
   * While pending tasks keep coming (another came less than this many milliseconds ago) and a pass would
   * place fewer than it may, the pass waits for them, at most `passWaitMaxMs` after the first of them came
   * (swarm's scheduler debounces commits the same way: 50 ms, at most 1 s). Default 0: no wait.
   */
  passWaitGapMs?: number
  /** See `passWaitGapMs` (default 1000). */
  passWaitMaxMs?: number
  /**
   * Whether more pending tasks are on their way now (e.g. the orchestrator is committing a scale-up): a
   * pass that would place fewer than it may then waits for them too, at most `passWaitMaxMs` after the
   * first pending task came, looking again at every commit and every 50 ms.
   */
  passWaitWhile?: () => boolean
  /** Queue bound of the scheduler's watch; past it the scheduler resynchronizes from a view (default 1,000,000). */
  queueSize?: number
  /** Nodes placed on only after every other eligible node (see {@link PlacerOptions.placeLast}). */
  placeLast?: (nodeId: string) => boolean
  /**
   * Follow the store without acting: the placer and the pending tasks are kept in step with every commit,
   * but nothing is placed or written until {@link Scheduler.activate}. A manager that is not the leader keeps
   * one, so that taking over starts placing at once instead of loading every task first.
   */
  standby?: boolean
}

/** The events a scheduler emits (eventemitter3, typed). */
export interface SchedulerEvents {
  /** A pass committed `assigned` assignments; `unplaced` tasks stay pending with the reason in `status.err`. */
  'pass:done': (stats: { assigned: number; unplaced: number }) => void
  /** A background failure (a failed commit, a store error); the scheduler goes on. */
  error: (err: Error) => void
}

/** Moves pending tasks to nodes, driven by store watches. */
export interface Scheduler extends EventEmitter<SchedulerEvents> {
  /** Starts following the store: loads nodes and tasks, then places pending tasks as they appear. */
  start(): void
  /**
   * Ends standby (the `standby` option, or {@link Scheduler.deactivate}): places pending tasks from now on,
   * writing through `writer` (default: the options' store; a leader passes one that scopes its writes to its
   * term). `NOT_STANDBY` if it already acts, `STOPPED` once stopped.
   */
  activate(writer?: Pick<SchedulerStore, 'update'>): void
  /**
   * Back to standby (a leader stepped down): no pass starts from now on, and this resolves once the pass in
   * progress has ended; the nodes and tasks it follows stay loaded, so that activating it again costs no
   * reload. Tasks set aside (unplaceable, or a failed commit's) are tried again by the first pass after the
   * next activation; `settled()` callers waiting now get `STANDBY`. `STANDBY` if in standby, `STOPPED` once
   * stopped.
   */
  deactivate(): Promise<void>
  /** Whether it follows the store without acting (started with `standby` or deactivated, not activated since). */
  readonly standby: boolean
  /** Stops following the store and resolves once the current pass has finished. */
  stop(): Promise<void>
  readonly running: boolean
  /** The placement engine, kept in step with the store. */
  readonly placer: Placer
  /** Tasks waiting for a node. */
  readonly pendingCount: number
  /** Resolves once no pending task can be placed right now (all placed or unschedulable); `STANDBY` in standby. */
  settled(): Promise<void>
}

const ASSIGNED_MESSAGE = 'scheduler assigned task to node'
/** How often a pass waiting on `passWaitWhile` looks again (besides at every commit). */
const HOLD_POLL_MS = 50

/** Creates a {@link Scheduler} for `options.store`. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  if (typeof options !== 'object' || options === null) throw typeError('options', 'be an object')
  checkStore(options.store, 'options.store')
  const commitSize = options.commitSize ?? 1000
  if (!Number.isSafeInteger(commitSize) || commitSize < 1)
    throw rangeError('options.commitSize', 'be an integer >= 1')
  const queueSize = options.queueSize ?? 1_000_000
  if (!Number.isSafeInteger(queueSize) || queueSize < 1)
    throw rangeError('options.queueSize', 'be an integer >= 1')
  if (options.standby !== undefined && typeof options.standby !== 'boolean')
    throw typeError('options.standby', 'be a boolean')
  if (options.placeLast !== undefined && typeof options.placeLast !== 'function')
    throw typeError('options.placeLast', 'be a function')
  const passPerNode = options.passPerNode ?? 0
  if (!Number.isFinite(passPerNode) || passPerNode < 0) throw rangeError('options.passPerNode', 'be >= 0')
  const gap = options.passWaitGapMs ?? 0
  const max = options.passWaitMaxMs ?? 1000
  if (!Number.isFinite(gap) || gap < 0) throw rangeError('options.passWaitGapMs', 'be >= 0')
  if (!Number.isFinite(max) || max < 0) throw rangeError('options.passWaitMaxMs', 'be >= 0')
  const hold = options.passWaitWhile
  if (hold !== undefined && typeof hold !== 'function')
    throw typeError('options.passWaitWhile', 'be a function')
  return new SchedulerImpl(
    options.store,
    options.clock ?? systemClock,
    options.logger ?? silentLogger,
    commitSize,
    queueSize,
    options.standby ?? false,
    options.placeLast ? { placeLast: options.placeLast } : {},
    { perNode: passPerNode, gapMs: gap, maxMs: max, hold },
  )
}

class SchedulerImpl extends EventEmitter<SchedulerEvents> implements Scheduler {
  readonly placer: Placer
  /** Pending tasks not yet tried since they appeared. */
  #fresh = new Map<string, Task>()
  /** Pending tasks that could not be placed; retried when the cluster changes. */
  #waiting = new Map<string, Task>()
  #changed = false
  readonly #loop: WatchLoop
  #waiters: { resolve: () => void; reject: (err: Error) => void }[] = []
  #retry: (() => void) | undefined
  readonly #store: SchedulerStore
  /** Where passes write: the store, or what `activate()` was given. */
  #writer: Pick<SchedulerStore, 'update'>
  #standby: boolean
  /** When the oldest and the newest fresh task came (the clock's time), while a pass waits for more. */
  #freshSince: number | undefined
  #freshLast = 0
  #waitTimer: (() => void) | undefined

  constructor(
    store: SchedulerStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly commitSize: number,
    queueSize: number,
    standby: boolean,
    private readonly placerOptions: PlacerOptions,
    private readonly passing: {
      perNode: number
      gapMs: number
      maxMs: number
      hold: (() => boolean) | undefined
    },
  ) {
    super()
    this.placer = createPlacer(placerOptions)
    this.#store = store
    this.#writer = store
    this.#standby = standby
    this.#loop = new WatchLoop(
      store,
      ['nodes', 'tasks'],
      { reset: (tx) => this.#reset(tx), event: (e) => this.#event(e), idle: () => this.#pass() },
      queueSize,
      log,
      (err) => this.#fail(err),
    )
  }

  get running(): boolean {
    return this.#loop.running
  }

  get pendingCount(): number {
    return this.#fresh.size + this.#waiting.size
  }

  get standby(): boolean {
    return this.#standby
  }

  start(): void {
    this.#loop.start(this.standby)
  }

  activate(writer?: Pick<SchedulerStore, 'update'>): void {
    checkActivate(
      'scheduler',
      { standby: this.standby, stopped: this.#stopped, deactivating: this.#loop.deactivating },
      writer,
    )
    this.#standby = false
    this.#writer = writer ?? this.#store
    this.#loop.activate()
  }

  async deactivate(): Promise<void> {
    checkDeactivate('scheduler', { standby: this.standby, stopped: this.#stopped })
    this.#standby = true
    await this.#loop.deactivate(() => this.#forgetDecisions())
  }

  /** What passes set aside goes back to fresh, as a fresh standby would load it; `settled()` waiters get `STANDBY`. */
  #forgetDecisions(): void {
    this.#retry?.()
    this.#retry = undefined
    this.#waitTimer?.()
    this.#waitTimer = undefined
    for (const [id, t] of this.#waiting) this.#fresh.set(id, t)
    this.#waiting.clear()
    this.#changed = false
    const standby = new SchedulerError('STANDBY', 'the scheduler went back to standby')
    for (const w of this.#waiters.splice(0)) w.reject(standby)
  }

  #stopped = false

  async stop(): Promise<void> {
    this.#stopped = true
    this.#retry?.()
    this.#retry = undefined
    this.#waitTimer?.()
    this.#waitTimer = undefined
    await this.#loop.stop()
    for (const w of this.#waiters.splice(0)) w.resolve()
  }

  settled(): Promise<void> {
    if (!this.running) return Promise.reject(new SchedulerError('STOPPED', 'the scheduler is not running'))
    if (this.standby)
      return Promise.reject(new SchedulerError('STANDBY', 'the scheduler is in standby: activate() it first'))
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
      this.#loop.kick()
    })
  }

  #fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err))
    this.log('error', 'scheduler error', { error: e.message })
    if (this.listenerCount('error') > 0) this.emit('error', e)
  }

  /** Nodes at once; the tasks, read from the view now, are added in slices (the loop runs them). */
  #reset(tx: ReadTx): Iterator<unknown> {
    const placer = createPlacer(this.placerOptions)
    ;(this as { placer: Placer }).placer = placer
    this.#fresh.clear()
    this.#waiting.clear()
    for (const n of tx.find('nodes')) placer.setNode(n)
    return this.#addTasks(placer, tx.find('tasks'))
  }

  *#addTasks(placer: Placer, tasks: readonly Task[]): Generator<void> {
    for (const t of tasks) {
      if (holdsNode(t)) placer.addTask(t)
      else if (isPending(t)) this.#fresh.set(t.id, t)
      yield
    }
  }

  #event(e: StoreEvent): void {
    if (e.table === 'nodes') {
      if (e.action === 'delete') this.placer.removeNode(e.object.id)
      else this.placer.setNode(e.object)
      this.#changed = true
      return
    }
    if (e.table !== 'tasks') return
    const t = e.object
    if (e.action === 'delete') {
      if (this.placer.hasTask(t.id)) this.#changed = true
      this.placer.removeTask(t.id)
      this.#fresh.delete(t.id)
      this.#waiting.delete(t.id)
      return
    }
    if (e.action === 'update' && isFailure(t.status.state) && !isFailure(e.oldObject.status.state))
      this.placer.recordFailure(t, this.clock.now())
    if (holdsNode(t)) {
      this.placer.addTask(t)
    } else if (this.placer.hasTask(t.id)) {
      this.placer.removeTask(t.id)
      this.#changed = true
    }
    // (The size checks skip a lookup in the common case: the echo of a pass's assignments, maps empty.)
    if (isPending(t)) {
      if (this.#waiting.size > 0 && this.#waiting.has(t.id)) this.#waiting.set(t.id, t)
      else {
        if ((this.passing.gapMs > 0 || this.passing.hold) && !this.#fresh.has(t.id)) {
          this.#freshLast = this.clock.now()
          this.#freshSince ??= this.#freshLast
        }
        this.#fresh.set(t.id, t)
      }
    } else {
      if (this.#fresh.size > 0) this.#fresh.delete(t.id)
      if (this.#waiting.size > 0) this.#waiting.delete(t.id)
    }
  }

  /** Tasks a pass may place: `commitSize`, or more in a large cluster (`passPerNode`). */
  #passSize(): number {
    return Math.max(this.commitSize, Math.floor(this.passing.perNode * this.placer.nodeCount))
  }

  /**
   * Whether the pass should wait for more pending tasks (they keep coming, and there are fewer than a pass
   * places); if so, a timer brings the loop back when the wait is over.
   */
  #holdFresh(size: number): boolean {
    const { gapMs, maxMs, hold } = this.passing
    if (this.#freshSince === undefined) return false
    if (this.#changed || this.#fresh.size >= size || this.#waiters.length > 0) return false
    const now = this.clock.now()
    const end = this.#freshSince + maxMs
    if (end <= now) return false
    let until: number
    if (hold?.()) until = Math.min(end, now + HOLD_POLL_MS)
    else if (gapMs > 0 && this.#freshLast + gapMs > now) until = Math.min(this.#freshLast + gapMs, end)
    else return false
    this.#waitTimer?.()
    this.#waitTimer = this.clock.setTimer(until - now, () => {
      this.#waitTimer = undefined
      this.#loop.kick()
    })
    return true
  }

  async #pass(): Promise<void> {
    const size = this.#passSize()
    if (this.#holdFresh(size)) return
    this.#waitTimer?.()
    this.#waitTimer = undefined
    this.#freshSince = undefined
    const batch: Task[] = []
    if (this.#changed) {
      for (const t of this.#waiting.values()) batch.push(t)
      this.#waiting.clear()
      this.#changed = false
    }
    // New tasks at most `size` per pass (a pass is one synchronous placement: a create of 50,000 tasks
    // placed at once held the event loop for seconds); the loop comes back at once for the rest.
    for (const t of this.#fresh.values()) {
      if (batch.length >= size) break
      batch.push(t)
    }
    for (const t of batch) this.#fresh.delete(t.id)
    if (this.#fresh.size > 0) {
      // What is left came before this pass: the next one takes it without waiting.
      this.#freshSince = undefined
      this.#loop.kick()
    }
    if (batch.length === 0) {
      for (const w of this.#waiters.splice(0)) w.resolve()
      return
    }
    const now = this.clock.now()
    // Placed `commitSize` at a time, the event loop free between (a pass of 20,000 tasks over 5,000 nodes
    // held it for 100-250 ms at once); each slice sees what the ones before it placed, so the decisions are
    // those of one placement. Events wait on the watch until the pass ends, as during its commits.
    const result = this.placer.place(
      batch.length > this.commitSize ? batch.slice(0, this.commitSize) : batch,
      now,
    )
    const slice = new TimeSlice()
    for (let from = this.commitSize; from < batch.length; from += this.commitSize) {
      await slice.yield()
      const more = this.placer.place(batch.slice(from, from + this.commitSize), now)
      for (const a of more.assigned) result.assigned.push(a)
      for (const u of more.unplaced) result.unplaced.push(u)
    }
    let assigned = 0
    const reasons = new Map<string, string>()
    for (const u of result.unplaced) {
      reasons.set(u.task.id, u.reason)
      this.#waiting.set(u.task.id, u.task)
    }
    // The writes: every assignment, a node's together, then every unplaced task whose reason changed,
    // `commitSize` per transaction.
    const assignments = byNode(result.assigned)
    const notes: { id: string; reason: string }[] = []
    for (const [id, reason] of reasons) {
      const t = this.#waiting.get(id)
      if (t && t.status.err !== reason) notes.push({ id, reason })
    }
    // One frozen status for every assignment of the pass: the store shares frozen parts instead of copying them.
    const status = Object.freeze({ timestamp: now, state: 'assigned' as const, message: ASSIGNED_MESSAGE })
    const total = assignments.length + notes.length
    for (let from = 0; from < total; from += this.commitSize) {
      const to = Math.min(from + this.commitSize, total)
      try {
        assigned += await this.#writer.update((tx) => {
          let n = 0
          for (let i = from; i < to; i++) {
            if (i < assignments.length) {
              const { task, nodeId, genericResources } = assignments[i] as Assignment
              const cur = tx.get('tasks', task.id)
              // Never assign twice: only a task still pending, unchanged in where it may go, is assigned.
              if (!cur || !isPending(cur) || cur.nodeId !== task.nodeId) {
                this.placer.removeTask(task.id)
                continue
              }
              const next: Task = { ...cur, nodeId, status }
              if (genericResources) next.assignedGenericResources = genericResources
              tx.update('tasks', next)
              n++
            } else {
              const w = notes[i - assignments.length] as { id: string; reason: string }
              const cur = tx.get('tasks', w.id)
              if (!cur || !isPending(cur) || cur.status.err === w.reason) continue
              tx.update('tasks', { ...cur, status: { ...cur.status, timestamp: now, err: w.reason } })
            }
          }
          return n
        })
      } catch (err) {
        // Nothing in this chunk was written: release what the placer counted, and retry them later.
        for (let i = from; i < Math.min(to, assignments.length); i++) {
          const a = assignments[i] as Assignment
          this.placer.removeTask(a.task.id)
          this.#waiting.set(a.task.id, a.task)
        }
        this.#changed = true
        this.#fail(err)
        // Nothing changed in the store, so no event will bring us back: try again in a second.
        this.#retry ??= this.clock.setTimer(1000, () => {
          this.#retry = undefined
          this.#loop.kick()
        })
      }
    }
    this.emit('pass:done', { assigned, unplaced: result.unplaced.length })
    if (this.#fresh.size === 0 && !this.#changed) for (const w of this.#waiters.splice(0)) w.resolve()
  }
}

/**
 * The assignments with each node's together, nodes in the order they first come (the order within a node
 * kept): a node's tasks of one pass then commit in one transaction, and reach it in one message.
 */
function byNode(assigned: readonly Assignment[]): readonly Assignment[] {
  const groups = new Map<string, Assignment[]>()
  for (const a of assigned) {
    const g = groups.get(a.nodeId)
    if (g) g.push(a)
    else groups.set(a.nodeId, [a])
  }
  if (groups.size === assigned.length) return assigned
  const out: Assignment[] = []
  for (const g of groups.values()) for (const a of g) out.push(a)
  return out
}
