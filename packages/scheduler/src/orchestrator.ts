// The orchestrator: one level-triggered reconciliation loop over every service (replicated slots, global
// nodes, restarts by policy, node drain and failure, the constraint enforcer, the task reaper). Over 600 lines
// because those passes share one pass's indexes (tasks per service and slot, node fit and overcommit caches)
// and one commit path; rolling updates (internal/rolling-update.ts), jobs (jobs.ts), plans and slot
// duplicates (internal/) already live beside it. The restart supervisor is the next seam if it grows.

import {
  checkServiceSpec,
  DEFAULT_SPEC_LIMITS,
  generateId,
  isStoreError,
  type Node,
  type ReadTx,
  type Service,
  type SpecLimits,
  type StoreEvent,
  type Task,
  type Tx,
  taskStateRank,
  type UpdateStatus,
} from '@swarmkit/store'
import { EventEmitter } from 'eventemitter3'
import { type Clock, systemClock } from './clock.js'
import { ConstraintSet } from './constraints.js'
import { DEFAULTS, restartPolicy } from './defaults.js'
import { isSchedulerError } from './errors.js'
import { WatchLoop } from './internal/loop.js'
import { PassPacing } from './internal/pass-pacing.js'
import { type NewTask, type Op, Plan } from './internal/plan.js'
import { newest, type ReplicatedHost, reconcileReplicated, stopped } from './internal/replicated.js'
import { RollingUpdates, type UpdateSlot } from './internal/rolling-update.js'
import { SlotIndex } from './internal/slot-index.js'
import { checkActivate, checkDeactivate } from './internal/standby.js'
import { isDesiredUp, isFinished, progressOnly, RANK_ASSIGNED } from './internal/task-state.js'
import { type SliceMeter, TimeSlice } from './internal/time-slice.js'
import { isJob, type JobHost, jobIteration, reconcileGlobalJob, reconcileReplicatedJob } from './jobs.js'
import { platformOk } from './placement.js'
import { checkStore, type Logger, type SchedulerStore, silentLogger } from './store.js'

/** How an {@link Orchestrator} is built: its store and the injectable clock, logger and randomness. */
export interface OrchestratorOptions {
  /** The cluster state (a `ClusterStore`). */
  store: SchedulerStore
  clock?: Clock
  logger?: Logger
  /** Random bytes for task IDs (default `node:crypto`); inject a seeded source for replayable tests. */
  random?: (n: number) => Uint8Array
  /**
   * Finished tasks kept per slot; default: the cluster's `orchestration.taskHistoryRetentionLimit`, else 5.
   * Negative: never reaped (swarm's meaning). A restart policy's `maxAttempts` keeps `maxAttempts + 1`.
   */
  taskHistory?: number
  /**
   * State new tasks are created in: `pending` (default) goes straight to the scheduler; `new` leaves them
   * for an allocator (networks, ports) to move to `pending`.
   */
  initialState?: 'pending' | 'new'
  /** Task creations per store transaction when scaling up (default 200, swarm's batch size). */
  commitSize?: number
  /**
   * Task creations per pass when scaling up (default 5 x `commitSize`), committed in transactions of
   * `createCommitSize` (default `commitSize`). More per pass lets the scheduler place more at once, a node's
   * share together (see the scheduler's `passPerNode`).
   */
  createsPerPass?: number
  /** See `createsPerPass`. */
  createCommitSize?: number
  /** Queue bound of the orchestrator's watch; past it the orchestrator resynchronizes (default 1,000,000). */
  queueSize?: number
  /**
   * `incremental` (default): a replicated service's pass looks only at the slots events touched since its
   * last pass, and every slot only on start, resync, a change of the service or a failed commit. `full`:
   * every pass looks at every slot (the reference the incremental passes are tested and measured against).
   */
  reconcile?: 'incremental' | 'full'
  /**
   * Follow the store without acting: services, nodes and tasks are kept in step with every commit, but no
   * pass runs and nothing is written until {@link Orchestrator.activate}. A manager that is not the leader
   * keeps one, so that taking over reconciles at once instead of loading every task first.
   */
  standby?: boolean
}

/** What an {@link Orchestrator} emits while it works in the background. */
export interface OrchestratorEvents {
  /** A service's rolling update (or rollback) changed state. */
  'update:state': (serviceId: string, status: UpdateStatus) => void
  /** A background failure (a failed commit); the orchestrator goes on and retries. */
  error: (err: Error) => void
  /**
   * A pass over the services marked changed ended, having written `changes` (task and service writes);
   * `busyMs` is its own time in slices, without what ran between them.
   */
  'pass:done': (stats: { services: number; changes: number; busyMs: number }) => void
}

/**
 * Keeps services running as specified: replicated slots 1..N, one task per eligible node for global
 * services, restarts by restart policy, rolling updates and rollbacks, node drain and failure, the constraint
 * enforcer and the task reaper. Level-triggered: every pass compares the store with the specs.
 */
export interface Orchestrator extends EventEmitter<OrchestratorEvents> {
  start(): void
  stop(): Promise<void>
  readonly running: boolean
  /**
   * Ends standby (the `standby` option, or {@link Orchestrator.deactivate}): the first pass looks at every
   * slot of every service, as after a start, writing through `writer` (default: the options' store; a leader
   * passes one that scopes its writes to its term). `NOT_STANDBY` if it already acts, `STOPPED` once stopped.
   */
  activate(writer?: Pick<SchedulerStore, 'update'>): void
  /**
   * Back to standby (a leader stepped down): no pass starts from now on, and this resolves once the pass in
   * progress has ended. What passes decided (restart delays and history, rolling updates' progress, timers)
   * is dropped, as a new leader's orchestrator starts without it; the services, nodes and tasks it follows
   * stay loaded, so that activating it again costs no reload. `STANDBY` if in standby, `STOPPED` once stopped.
   */
  deactivate(): Promise<void>
  /** Whether it follows the store without acting (started with `standby` or deactivated, not activated since). */
  readonly standby: boolean
  /** A pass is committing task creations (a scale-up) now: more pending tasks are on their way. */
  readonly creating: boolean
}

/** Creates an {@link Orchestrator} for `options.store`. */
export function createOrchestrator(options: OrchestratorOptions): Orchestrator {
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected an object')
  checkStore(options.store, 'options.store')
  if (options.random !== undefined && typeof options.random !== 'function')
    throw new TypeError('options.random: expected a function')
  if (options.taskHistory !== undefined && !Number.isSafeInteger(options.taskHistory))
    throw new RangeError('options.taskHistory: expected an integer (negative: never reaped)')
  if (
    options.initialState !== undefined &&
    options.initialState !== 'pending' &&
    options.initialState !== 'new'
  )
    throw new TypeError("options.initialState: expected 'pending' or 'new'")
  const commitSize = options.commitSize ?? 200
  if (!Number.isSafeInteger(commitSize) || commitSize < 1)
    throw new RangeError('options.commitSize: expected an integer >= 1')
  const queueSize = options.queueSize ?? 1_000_000
  if (!Number.isSafeInteger(queueSize) || queueSize < 1)
    throw new RangeError('options.queueSize: expected an integer >= 1')
  for (const k of ['createsPerPass', 'createCommitSize'] as const) {
    const v = options[k]
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1))
      throw new RangeError(`options.${k}: expected an integer >= 1`)
  }
  if (options.reconcile !== undefined && options.reconcile !== 'incremental' && options.reconcile !== 'full')
    throw new TypeError("options.reconcile: expected 'incremental' or 'full'")
  if (options.standby !== undefined && typeof options.standby !== 'boolean')
    throw new TypeError('options.standby: expected a boolean')
  return new OrchestratorImpl(options, commitSize, queueSize)
}

class Conflict extends Error {}

interface Delay {
  /** Not before this time. */
  at: number
  /** Wait for these tasks to stop first. */
  waitFor: string[]
}

const RETRY_MS = 1000
/**
 * The slices of the first pass after activation: five times the usual 10 ms, still far under a raft election
 * timeout (300 ms) and near its heartbeat interval (60 ms), so that the loop's I/O between slices (a failover's
 * registrations and heartbeats) takes a smaller share of it while every service waits for this pass.
 */
const FIRST_PASS_SLICE_MS = 50
/**
 * Bulk creations, and changes made in independent steps (see Plan.cut), per pass, in transactions of
 * `commitSize`: a scale-up or an update is paced, a pass stays bounded.
 */
const BULK_CHUNKS = 5
/**
 * A pass walks every task of its service; it may write one change per this many tasks walked (in
 * transactions of `commitSize`, at least BULK_CHUNKS of them), so that the walk is paid for by its changes.
 */
const TASKS_PER_CHANGE = 20

function invalidNode(n: Node | undefined): boolean {
  return n === undefined || n.status.state === 'down' || n.spec.availability === 'drain'
}

class OrchestratorImpl extends EventEmitter<OrchestratorEvents> implements Orchestrator {
  readonly #store: SchedulerStore
  /** Where passes write: the store, or what `activate()` was given. */
  #writer: Pick<SchedulerStore, 'update'>
  #standby: boolean
  #stopped = false
  readonly #clock: Clock
  readonly #log: Logger
  readonly #random: ((n: number) => Uint8Array) | undefined
  readonly #taskHistory: number | undefined
  readonly #initialState: 'pending' | 'new'
  readonly #commitSize: number
  readonly #createsPerPass: number
  readonly #createCommitSize: number
  readonly #loop: WatchLoop

  #services = new Map<string, Service>()
  #nodes = new Map<string, Node>()
  #tasks = new Map<string, Task>()
  #bySvc = new Map<string, Map<string, Task>>()
  #byNode = new Map<string, Set<string>>()
  /** Node ID -> its tasks that reserve CPU or memory (the only ones the overcommit check weighs). */
  #reserving = new Map<string, Set<string>>()
  /** Tasks by service and slot, and per service what its next pass must look at. */
  #slots = new SlotIndex()
  readonly #fullPasses: boolean
  #retention: number = DEFAULTS.taskHistory
  #dirty = new Set<string>()
  readonly #delays = new Map<string, Delay>()
  readonly #history = new Map<string, { version: number; times: number[] }>()
  readonly #wakes = new Map<string, { at: number; cancel: () => void }>()
  readonly #constraints = new Map<string, ConstraintSet | null>()
  /** Per pass: tasks to reject per node for lack of resources. */
  readonly #overcommit = new Map<string, Set<string>>()
  readonly #limits: Readonly<SpecLimits>
  readonly #jobHost: JobHost = {
    nodes: () => this.#nodes.values(),
    node: (id) => this.#nodes.get(id),
    fits: (spec, node) => this.#fits(spec, node),
    newTask: (svc, slot, nodeId, now, desired) => this.#newTask(svc, slot, nodeId, now, desired),
    supervise: (svc, t, plan, now) => this.#supervise(svc, t, plan, now),
    promote: (svc, t, plan, now) => this.#promote(svc, t, plan, now),
    shouldRestart: (t, now) => this.#shouldRestart(t, now),
  }
  /** Rolling updates and rollbacks in progress. */
  readonly #updates = new RollingUpdates({
    task: (id) => this.#tasks.get(id),
    node: (id) => this.#nodes.get(id),
    matcher: (spec) => this.#matcher(spec),
    newTask: (svc, slot, nodeId, now, desired) => this.#newTask(svc, slot, nodeId, now, desired),
    wake: (serviceId, at) => this.#wake(serviceId, at),
    delay: (taskId, delay) => {
      this.#delays.set(taskId, delay)
    },
    emit: (serviceId, status) => this.emit('update:state', serviceId, status),
  })
  readonly #replicatedHost: ReplicatedHost = {
    supervise: (svc, t, plan, now) => this.#supervise(svc, t, plan, now),
    promote: (svc, t, plan, now) => this.#promote(svc, t, plan, now),
    shouldRestart: (t, now) => this.#shouldRestart(t, now),
    newTask: (svc, slot, nodeId, now, desired) => this.#newTask(svc, slot, nodeId, now, desired),
    keep: (svc) => this.#keep(svc),
    updates: this.#updates,
    commitSoFar: async (serviceId, plan) => {
      const chunks = plan.take()
      const ok = await this.#commit(serviceId, plan, chunks, [])
      if (ok) for (const c of chunks) plan.committed += c.ops.length
      else plan.abandoned = true
      return ok
    },
  }
  /** What the current service's pass cost in slices (its rest, if paced, is as long). */
  #passMeter: SliceMeter = { busyMs: 0 }
  /** The next pass is the first since activation (see `FIRST_PASS_SLICE_MS`). */
  #firstPass = false
  readonly #pacing = new PassPacing((id) => {
    this.#dirty.add(id)
    this.#loop.kick()
  })
  /** Services left alone for exceeding the limits -> the `meta.version` already logged. */
  readonly #refusals = new Map<string, number>()

  constructor(options: OrchestratorOptions, commitSize: number, queueSize: number) {
    super()
    this.#store = options.store
    this.#writer = options.store
    this.#standby = options.standby ?? false
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? silentLogger
    this.#random = options.random
    this.#taskHistory = options.taskHistory
    this.#initialState = options.initialState ?? 'pending'
    this.#commitSize = commitSize
    this.#createsPerPass = options.createsPerPass ?? commitSize * BULK_CHUNKS
    this.#createCommitSize = options.createCommitSize ?? commitSize
    this.#fullPasses = options.reconcile === 'full'
    this.#limits = (options.store as { limits?: Readonly<SpecLimits> }).limits ?? DEFAULT_SPEC_LIMITS
    this.#loop = new WatchLoop(
      this.#store,
      ['nodes', 'services', 'tasks', 'clusters'],
      { reset: (tx) => this.#reset(tx), event: (e) => this.#event(e), idle: () => this.#pass() },
      queueSize,
      this.#log,
      (err) => this.#fail(err),
    )
  }

  get running(): boolean {
    return this.#loop.running
  }

  get standby(): boolean {
    return this.#standby
  }

  #creating = 0

  get creating(): boolean {
    return this.#creating > 0
  }

  start(): void {
    this.#loop.start(this.standby)
  }

  activate(writer?: Pick<SchedulerStore, 'update'>): void {
    checkActivate(
      'orchestrator',
      { standby: this.standby, stopped: this.#stopped, deactivating: this.#loop.deactivating },
      writer,
    )
    this.#standby = false
    this.#firstPass = true
    this.#writer = writer ?? this.#store
    // Its first pass is a start's: the reset (or deactivate) marked every service and slot, and no pass has
    // run since to clear them.
    this.#loop.activate()
  }

  async deactivate(): Promise<void> {
    checkDeactivate('orchestrator', { standby: this.standby, stopped: this.#stopped })
    this.#standby = true
    await this.#loop.deactivate(() => this.#forgetDecisions())
  }

  /** Drops what passes decided, and marks every service and slot for a full pass (as a reset leaves them). */
  #forgetDecisions(): void {
    for (const w of this.#wakes.values()) w.cancel()
    this.#wakes.clear()
    this.#pacing.stop()
    this.#delays.clear()
    this.#history.clear()
    this.#updates.runs.clear()
    this.#overcommit.clear()
    this.#slots.fullPasses()
    this.#dirty = new Set([...this.#services.keys(), ...this.#bySvc.keys()])
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop.stop()
    for (const w of this.#wakes.values()) w.cancel()
    this.#wakes.clear()
    this.#pacing.stop()
  }

  #fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err))
    this.#log('error', 'orchestrator error', { error: e.message })
    if (this.listenerCount('error') > 0) this.emit('error', e)
  }

  // ------------------------------------------------------------------------------------------ state

  /** Services, nodes and the cluster at once; the tasks, read from the view now, are indexed in slices. */
  #reset(tx: ReadTx): Iterator<unknown> {
    this.#services = new Map()
    this.#nodes = new Map()
    this.#tasks = new Map()
    this.#bySvc = new Map()
    this.#byNode = new Map()
    this.#reserving = new Map()
    this.#slots = new SlotIndex()
    for (const s of tx.find('services')) this.#services.set(s.id, s)
    for (const n of tx.find('nodes')) this.#nodes.set(n.id, n)
    const cluster = tx.find('clusters')[0]
    this.#retention =
      this.#taskHistory ?? cluster?.spec.orchestration?.taskHistoryRetentionLimit ?? DEFAULTS.taskHistory
    return this.#putTasks(tx.find('tasks'))
  }

  *#putTasks(tasks: readonly Task[]): Generator<void> {
    for (const t of tasks) {
      // A task without a service (a container's network attachment) is not an orchestrator's.
      if (t.serviceId !== '') this.#putTask(t)
      yield
    }
    this.#dirty = new Set([...this.#services.keys(), ...this.#bySvc.keys()])
  }

  #putTask(t: Task): void {
    const old = this.#tasks.get(t.id)
    this.#slots.put(t, old)
    if (old && old.nodeId !== t.nodeId) {
      this.#byNode.get(old.nodeId)?.delete(t.id)
      this.#reserving.get(old.nodeId)?.delete(t.id)
    }
    const r = t.spec.resources?.reservations
    if (t.nodeId && r && (r.nanoCPUs > 0 || r.memoryBytes > 0)) {
      let s = this.#reserving.get(t.nodeId)
      if (!s) this.#reserving.set(t.nodeId, (s = new Set()))
      s.add(t.id)
    } else if (t.nodeId) this.#reserving.get(t.nodeId)?.delete(t.id)
    this.#tasks.set(t.id, t)
    let m = this.#bySvc.get(t.serviceId)
    if (!m) this.#bySvc.set(t.serviceId, (m = new Map()))
    m.set(t.id, t)
    if (t.nodeId) {
      let s = this.#byNode.get(t.nodeId)
      if (!s) this.#byNode.set(t.nodeId, (s = new Set()))
      s.add(t.id)
    }
  }

  #dropTask(t: Task): void {
    this.#tasks.delete(t.id)
    this.#slots.drop(t)
    this.#updates.taskGone(t.serviceId, t.id)
    const m = this.#bySvc.get(t.serviceId)
    m?.delete(t.id)
    if (m && m.size === 0) this.#bySvc.delete(t.serviceId)
    this.#byNode.get(t.nodeId)?.delete(t.id)
    this.#reserving.get(t.nodeId)?.delete(t.id)
  }

  #event(e: StoreEvent): void {
    switch (e.table) {
      case 'services':
        if (e.action === 'delete') this.#services.delete(e.object.id)
        else this.#services.set(e.object.id, e.object)
        // Its spec, scale or update status changed: every slot is looked at again.
        this.#slots.service(e.object.id).full = true
        this.#dirty.add(e.object.id)
        return
      case 'tasks':
        if (e.object.serviceId === '') return
        // A task's progress towards running (a worker's reports) changes no decision: no pass for it.
        if (e.action === 'update' && progressOnly(e.oldObject, e.object)) {
          this.#putTask(e.object)
          return
        }
        if (e.action === 'delete') {
          this.#dropTask(e.object)
          this.#delays.delete(e.object.id)
        } else {
          this.#putTask(e.object)
          this.#slots.touch(e.object.serviceId, e.object.slot)
        }
        this.#dirty.add(e.object.serviceId)
        return
      case 'nodes': {
        const n = e.object
        if (e.action === 'delete') this.#nodes.delete(n.id)
        else this.#nodes.set(n.id, n)
        for (const id of this.#byNode.get(n.id) ?? []) {
          const t = this.#tasks.get(id)
          if (!t) continue
          this.#slots.touch(t.serviceId, t.slot)
          this.#dirty.add(t.serviceId)
        }
        for (const s of this.#services.values())
          if ('global' in s.spec.mode || 'globalJob' in s.spec.mode) this.#dirty.add(s.id)
        return
      }
      case 'clusters':
        if (e.action !== 'delete') {
          this.#retention =
            this.#taskHistory ??
            e.object.spec.orchestration?.taskHistoryRetentionLimit ??
            DEFAULTS.taskHistory
          for (const id of this.#bySvc.keys()) {
            this.#slots.service(id).full = true
            this.#dirty.add(id)
          }
        }
        return
      default:
        return
    }
  }

  /** Runs a pass for the service at `at`; `slot`: one that looks at that slot (else: no slot in particular). */
  #wake(serviceId: string, at: number, slot?: number): void {
    if (slot !== undefined && slot > 0) {
      const timed = this.#slots.service(serviceId).timed
      const was = timed.get(slot)
      if (was === undefined || at < was) timed.set(slot, at)
    }
    const now = this.#clock.now()
    if (slot === undefined && at <= now) {
      this.#dirty.add(serviceId)
      this.#loop.kick()
      // Slots whose time has come go into this pass too, and the others keep a timer. A timer fires by the
      // event loop's cached time, which lags the wall clock: its callback can find a slot due a moment later
      // and ask for that moment, which has come by the time it gets here. Only the service was woken then,
      // the slot kept its time with no timer left to act on it, and a restart's replacement stayed `ready`.
      const next = this.#dueSlots(serviceId, now)
      if (next === undefined) return
      at = next
    }
    const cur = this.#wakes.get(serviceId)
    if (cur && cur.at <= at) return
    cur?.cancel()
    const cancel = this.#clock.setTimer(Math.max(0, at - now), () => {
      this.#wakes.delete(serviceId)
      const next = this.#dueSlots(serviceId, this.#clock.now())
      if (next !== undefined) this.#wake(serviceId, next)
      this.#dirty.add(serviceId)
      this.#loop.kick()
    })
    this.#wakes.set(serviceId, { at, cancel })
  }

  /** Marks the service's timed slots due by `now` for its next pass; the earliest time of the others. */
  #dueSlots(serviceId: string, now: number): number | undefined {
    const st = this.#slots.get(serviceId)
    let next: number | undefined
    for (const [s, due] of st?.timed ?? []) {
      if (due <= now) {
        st!.timed.delete(s)
        st!.dirty.add(s)
      } else if (next === undefined || due < next) next = due
    }
    return next
  }

  // ------------------------------------------------------------------------------------------ passes

  async #pass(): Promise<void> {
    const dirty = [...this.#dirty].sort()
    this.#dirty.clear()
    this.#overcommit.clear()
    let changes = 0
    let busyMs = 0
    // The first pass after activation (a new leader's) in longer slices: nothing a service needs happens
    // until it has walked every slot, and in 10 ms slices on a leader busy with a failover (the dead
    // manager's nodes registering again) it took 4-5 s at 150,000 tasks.
    const budgetMs = this.#firstPass ? FIRST_PASS_SLICE_MS : undefined
    this.#firstPass = false
    for (const id of dirty) {
      if (this.#pacing.resting(id)) {
        this.#dirty.add(id)
        continue
      }
      const tasks = this.#bySvc.get(id)?.size ?? 0
      const chunks = Math.max(BULK_CHUNKS, Math.ceil(tasks / TASKS_PER_CHANGE / this.#commitSize))
      const plan = new Plan(this.#commitSize * chunks, this.#createsPerPass, this.#commitSize)
      const meter: SliceMeter = budgetMs ? { busyMs: 0, budgetMs } : { busyMs: 0 }
      this.#passMeter = meter
      let again = false
      try {
        again = await this.#reconcile(id, plan, this.#clock.now())
      } catch (err) {
        this.#slots.service(id).full = true
        this.#fail(err)
        continue
      } finally {
        // The pass's own time, not what ran between its slices (a busy new leader's passes took seconds of
        // wall time for a fraction of it in CPU, and rested as long).
        this.#pacing.passed(id, tasks, meter.busyMs)
        busyMs += meter.busyMs
      }
      // (A commit during the pass failed: it arranged what comes next, as a failed commit at the end does.)
      if (plan.abandoned) {
        changes += plan.committed
        continue
      }
      if (plan.ops.length === 0 && plan.bulk.length === 0) {
        for (const f of plan.after) f()
        if (again) {
          this.#dirty.add(id)
          this.#loop.kick()
        }
        continue
      }
      const committed = await this.#commit(id, plan)
      changes += committed ? plan.ops.length + plan.bulk.length : plan.committed
      if (committed && (plan.more || again)) {
        // The plan was bounded: this service has more to do, in the next pass (after the events of this one).
        // (Not after a failed commit: that one is retried a second later, never in a loop.)
        this.#dirty.add(id)
        this.#loop.kick()
      }
    }
    if (dirty.length > 0) this.emit('pass:done', { services: dirty.length, changes, busyMs })
  }

  /** Writes `ops` in `tx`; a task or service changed since the pass read it is a {@link Conflict}. */
  #apply(tx: Tx, ops: readonly Op[]): void {
    for (const op of ops) {
      if (op.kind === 'create') {
        tx.create('tasks', op.task)
        continue
      }
      if (op.kind === 'delete') {
        const cur = tx.get('tasks', op.id)
        if (!cur) continue
        if (cur.meta.version !== op.version) throw new Conflict()
        tx.delete('tasks', op.id)
        continue
      }
      if (op.kind === 'task') {
        const cur = tx.get('tasks', op.id)
        // A worker's progress since the pass read the task changes none of its decisions (such a change
        // calls for no pass either): the change still applies.
        if (!cur || (cur.meta.version !== op.version && !(op.base && progressOnly(op.base, cur))))
          throw new Conflict()
        op.written = tx.update('tasks', op.next(cur)).meta.version
        continue
      }
      const cur = tx.get('services', op.id)
      if (!cur || cur.meta.version !== op.version) throw new Conflict()
      tx.update('services', op.next(cur))
    }
  }

  /**
   * Commits `chunks` (default: what is left of `plan`) and `bulk` creations; false if it failed (and a retry is
   * arranged).
   */
  async #commit(
    serviceId: string,
    plan: Plan,
    chunks = plan.chunks(),
    bulk: readonly NewTask[] = plan.bulk,
  ): Promise<boolean> {
    try {
      // Transactions of independent steps in order; a conflict in one leaves the ones before committed.
      for (const chunk of chunks) {
        if (chunk.ops.length) await this.#writer.update((tx) => this.#apply(tx, chunk.ops))
        for (const f of chunk.after) f()
      }
      if (bulk.length > 0) this.#creating++
      try {
        for (let i = 0; i < bulk.length; i += this.#createCommitSize) {
          const chunk = bulk.slice(i, i + this.#createCommitSize)
          await this.#writer.update((tx) => {
            for (const t of chunk) tx.create('tasks', t)
          })
        }
      } finally {
        if (bulk.length > 0) this.#creating--
      }
      return true
    } catch (err) {
      // Someone changed an object we reasoned about: its event is on our watch already, and the pass that
      // follows it looks again with the newer state, at every slot (what this pass kept may not have come).
      this.#dirty.add(serviceId)
      this.#slots.service(serviceId).full = true
      if (!(err instanceof Conflict)) {
        // A failed commit (e.g. no raft quorum) changed nothing: try again in a second.
        this.#fail(err)
        this.#wake(serviceId, this.#clock.now() + RETRY_MS)
      }
      return false
    }
  }

  /**
   * One service's plan. Async only to run in time slices (a service of tens of thousands of tasks): the
   * orchestrator's view of the store does not change meanwhile (the loop takes no events during a pass).
   */
  async #reconcile(serviceId: string, plan: Plan, now: number): Promise<boolean> {
    const svc = this.#services.get(serviceId)
    const slots = this.#slots.service(serviceId)
    const mode = svc?.spec.mode
    if (svc && !svc.pendingDelete && mode && 'replicated' in mode && !this.#refused(svc)) {
      // The steady state: only the slots events touched since this service's last pass.
      const full = slots.full || this.#fullPasses
      slots.full = false
      const again = await reconcileReplicated(
        this.#replicatedHost,
        svc,
        mode.replicated.replicas,
        slots,
        full,
        plan,
        now,
        this.#passMeter,
      )
      if (again) slots.full = true
      return again
    }
    // Every other pass walks every task of the service (and the next replicated pass must, too).
    slots.full = true
    slots.dirty.clear()
    await this.#reconcileAll(svc, serviceId, plan, now)
    return false
  }

  /** A pass over every task of a service that is gone, refused, global or a job. */
  async #reconcileAll(svc: Service | undefined, serviceId: string, plan: Plan, now: number): Promise<void> {
    const tasks = [...(this.#bySvc.get(serviceId)?.values() ?? [])]
    if (!svc || svc.pendingDelete) {
      if (!svc && tasks.length === 0) {
        // Nothing left of it: forget its restart history, update run, timer and slots.
        for (const key of this.#history.keys()) if (key.startsWith(`${serviceId}/`)) this.#history.delete(key)
        this.#updates.runs.delete(serviceId)
        this.#refusals.delete(serviceId)
        this.#wakes.get(serviceId)?.cancel()
        this.#wakes.delete(serviceId)
        this.#slots.forget(serviceId)
        return
      }
      // The service is gone (or going): stop its tasks, then remove them once they stopped.
      for (const t of tasks) {
        if (plan.full) break
        if (t.desiredState !== 'remove' && !stopped(t)) plan.setDesired(t, 'remove')
        else if (stopped(t)) plan.ops.push({ kind: 'delete', id: t.id, version: t.meta.version })
        plan.cut()
      }
      return
    }
    const refused = this.#refused(svc)
    if (refused) {
      // Over this manager's limits (written before they were enforced, or under other limits): creating its
      // tasks could exhaust the manager. Leave it as it is, keep reaping.
      await this.#reap(svc, tasks, plan)
      return
    }
    const mode = svc.spec.mode
    if ('global' in mode) await this.#global(svc, tasks, plan, now)
    else if ('replicatedJob' in mode)
      reconcileReplicatedJob(this.#jobHost, svc, mode.replicatedJob, tasks, plan, now)
    else if ('globalJob' in mode) reconcileGlobalJob(this.#jobHost, svc, tasks, plan, now)
    await this.#reap(svc, tasks, plan)
  }

  /** Why `svc` is over this manager's spec limits (logged once per version), or undefined. */
  #refused(svc: Service): string | undefined {
    try {
      checkServiceSpec(svc.spec, this.#limits)
      this.#refusals.delete(svc.id)
      return undefined
    } catch (err) {
      if (!isStoreError(err)) throw err
      if (this.#refusals.get(svc.id) !== svc.meta.version) {
        this.#refusals.set(svc.id, svc.meta.version)
        this.#log('error', 'service not reconciled: its spec exceeds the limits', {
          service: svc.id,
          error: err.message,
        })
      }
      return err.message
    }
  }

  /** Tasks on `node` whose CPU or memory reservations no longer fit in what it offers (memoized per pass). */
  #overcommitted(node: Node): Set<string> {
    let out = this.#overcommit.get(node.id)
    if (out) return out
    out = new Set()
    this.#overcommit.set(node.id, out)
    let cpu = node.description?.resources?.nanoCPUs ?? 0
    let mem = node.description?.resources?.memoryBytes ?? 0
    const held: Task[] = []
    for (const id of this.#reserving.get(node.id) ?? []) {
      const t = this.#tasks.get(id)
      if (!t || !isDesiredUp(t) || isFinished(t) || taskStateRank(t.status.state) < RANK_ASSIGNED) continue
      const r = t.spec.resources?.reservations
      if (r && (r.nanoCPUs > 0 || r.memoryBytes > 0)) held.push(t)
    }
    held.sort((a, b) => a.meta.createdAt - b.meta.createdAt || (a.id < b.id ? -1 : 1))
    for (const t of held) {
      const r = t.spec.resources?.reservations
      const needCpu = r?.nanoCPUs ?? 0
      const needMem = r?.memoryBytes ?? 0
      if (needCpu > cpu || needMem > mem) {
        out.add(t.id)
        continue
      }
      cpu -= needCpu
      mem -= needMem
    }
    return out
  }

  #matcher(spec: Task['spec']): ConstraintSet | null | undefined {
    const list = spec.placement?.constraints
    if (!list?.length) return undefined
    const key = list.join('\n')
    let c = this.#constraints.get(key)
    if (c === undefined) {
      try {
        c = ConstraintSet.parse(list)
      } catch (err) {
        if (!isSchedulerError(err)) throw err
        c = null
      }
      if (this.#constraints.size > 1024) this.#constraints.clear()
      this.#constraints.set(key, c)
    }
    return c
  }

  /** Whether `node` may run tasks of `spec` (constraints and platforms). */
  #fits(spec: Task['spec'], node: Node): boolean {
    const c = this.#matcher(spec)
    if (c === null) return false
    if (c && !c.matches(node)) return false
    const platforms = spec.placement?.platforms
    return !platforms?.length || platformOk(platforms, node)
  }

  #newTask(svc: Service, slot: number, nodeId: string, now: number, desired: Task['desiredState']): NewTask {
    const id = this.#random ? generateId(this.#random) : generateId()
    const spec = svc.spec.taskTemplate
    let endpoint = svc.endpoint
    if (!endpoint && svc.spec.endpointSpec) {
      const ports = svc.spec.endpointSpec.ports ?? []
      endpoint = { spec: svc.spec.endpointSpec, ports, virtualIPs: [] }
    }
    const t: NewTask = {
      id,
      spec,
      specVersion: { index: svc.specVersion.index },
      serviceId: svc.id,
      slot,
      nodeId,
      serviceAnnotations: { name: svc.spec.name, labels: svc.spec.labels },
      status: {
        timestamp: now,
        state: this.#initialState,
        message: this.#initialState === 'pending' ? 'pending task scheduling' : 'created',
      },
      desiredState: desired,
      networks: (spec.networks ?? []).map((n) =>
        n.aliases
          ? { networkId: n.target, addresses: [], aliases: n.aliases }
          : { networkId: n.target, addresses: [] },
      ),
    }
    if (endpoint) t.endpoint = endpoint
    if (spec.logDriver) t.logDriver = spec.logDriver
    if (isJob(svc)) t.jobIteration = { index: jobIteration(svc) }
    return t
  }

  // ------------------------------------------------------------------------------------------ restarts

  #slotKey(t: Task): string {
    return t.slot === 0 ? `n:${t.nodeId}` : `s:${t.slot}`
  }

  #shouldRestart(t: Task, now: number): boolean {
    const p = restartPolicy(t.spec.restartPolicy)
    if (p.condition === 'none') return false
    // A job's completed task is done whatever the condition: restarting it would run the job again.
    if ((p.condition === 'on-failure' || t.jobIteration) && t.status.state === 'complete') return false
    if (p.maxAttempts === 0) return true
    const h = this.#history.get(`${t.serviceId}/${this.#slotKey(t)}`)
    if (!h || h.version !== (t.specVersion?.index ?? 0)) return true
    if (p.windowMs === 0) return h.times.length < p.maxAttempts
    // As swarm: the restarts in the window before the task ended (not before now), so that the decision
    // for a task is the same whenever it is made, and a slot stopped for good stays stopped.
    const ended = isFinished(t) ? Math.min(t.status.timestamp, now) : now
    const count = h.times.filter((x) => x > ended - p.windowMs && x <= ended).length
    return count < p.maxAttempts
  }

  /**
   * Stops `t` and, when its restart policy says so (or it is being moved off a node), creates its replacement
   * with desired state `ready`; the replacement is started after the restart delay, once `t` has stopped.
   */
  #restart(
    svc: Service,
    t: Task,
    moved: boolean,
    plan: Plan,
    now: number,
    desired: 'shutdown' | 'rejected' = 'shutdown',
  ): NewTask | undefined {
    if (desired === 'rejected') {
      plan.change(t, (cur) => ({
        ...cur,
        desiredState: 'shutdown',
        status: {
          ...cur.status,
          timestamp: now,
          state: 'rejected',
          message: 'task rejected by constraint enforcer',
          err: 'assigned node no longer meets constraints',
        },
      }))
    } else plan.setDesired(t, 'shutdown')
    const exited = desired === 'rejected' ? { ...t, status: { ...t.status, state: 'rejected' as const } } : t
    if (!moved && !this.#shouldRestart(exited, now)) return undefined
    const node = this.#nodes.get(t.nodeId)
    const replacement = this.#newTask(svc, t.slot, t.slot === 0 ? t.nodeId : '', now, 'ready')
    plan.ops.push({ kind: 'create', task: replacement })
    const delayMs =
      moved || node?.spec.availability === 'drain' ? 0 : restartPolicy(t.spec.restartPolicy).delayMs
    const waitStop = !(node === undefined || node.status.state === 'down' || isFinished(exited))
    const key = `${svc.id}/${this.#slotKey(t)}`
    plan.after.push(() => {
      this.#delays.set(replacement.id, { at: now + delayMs, waitFor: waitStop ? [t.id] : [] })
      const version = t.specVersion?.index ?? 0
      let h = this.#history.get(key)
      if (!h || h.version !== version) this.#history.set(key, (h = { version, times: [] }))
      h.times.push(now)
      if (h.times.length > 64) h.times.splice(0, h.times.length - 64)
    })
    return replacement
  }

  /** Starts a replacement (desired `ready`) once its delay passed and the task it replaces stopped. */
  #promote(svc: Service, t: Task, plan: Plan, now: number): void {
    const d = this.#delays.get(t.id)
    if (d) {
      if (now < d.at) {
        this.#wake(svc.id, d.at, t.slot)
        return
      }
      for (const id of d.waitFor) {
        const old = this.#tasks.get(id)
        const node = this.#nodes.get(old?.nodeId ?? '')
        // A task on a node that is down or gone will never report stopping: do not wait for it.
        if (old && !stopped(old) && node && node.status.state !== 'down') return
      }
    }
    plan.setDesired(t, t.jobIteration ? 'complete' : 'running')
    plan.after.push(() => this.#delays.delete(t.id))
  }

  /**
   * The restart supervisor, node failure and drain, and the constraint enforcer for one task that should be
   * up. Returns the replacement created, `null` when the task was stopped without one, `undefined` if untouched.
   */
  #supervise(svc: Service, t: Task, plan: Plan, now: number): NewTask | null | undefined {
    if (t.nodeId) {
      const node = this.#nodes.get(t.nodeId)
      if (invalidNode(node)) return this.#restart(svc, t, true, plan, now) ?? null
      const rank = taskStateRank(t.status.state)
      // The constraint enforcer: the service's current constraints (the task's may be older), and the
      // node's resources (a node that shrank rejects its newest tasks first).
      if (node && !isFinished(t) && rank >= RANK_ASSIGNED) {
        const c = t.slot === 0 ? undefined : this.#matcher(svc.spec.taskTemplate)
        if (c === null || (c && !c.matches(node)) || this.#overcommitted(node).has(t.id))
          return this.#restart(svc, t, false, plan, now, 'rejected') ?? null
      }
    }
    if (isFinished(t)) {
      // A replacement that ended before its own restart delay passed (a worker prepares it while it waits,
      // and preparing fails at once while its engine is away) is restarted once that delay passed, as swarm
      // does: restarting it now would loop without pause, reap the slot's history and use up max attempts.
      const d = this.#delays.get(t.id)
      if (d && now < d.at) {
        this.#wake(svc.id, d.at, t.slot)
        return undefined
      }
      return this.#restart(svc, t, false, plan, now) ?? null
    }
    return undefined
  }

  // ------------------------------------------------------------------------------------------ global

  async #global(svc: Service, tasks: Task[], plan: Plan, now: number): Promise<void> {
    const active = new Map<string, Task[]>()
    const all = new Map<string, Task[]>()
    const created = new Set<string>()
    const template = svc.spec.taskTemplate
    for (const t of tasks) {
      if (t.desiredState === 'remove') continue
      let list = all.get(t.nodeId)
      if (!list) all.set(t.nodeId, (list = []))
      list.push(t)
      if (!isDesiredUp(t)) continue
      const node = this.#nodes.get(t.nodeId)
      // A node that is gone, down, drained or no longer eligible loses its task, without a replacement.
      if (invalidNode(node) || !this.#fits(template, node as Node)) {
        if (!plan.full) plan.setDesired(t, 'shutdown')
        continue
      }
      const r = plan.full ? undefined : this.#supervise(svc, t, plan, now)
      if (r === null || r) {
        // replaced, or stopped for good by its restart policy: either way, no new task for this node
        created.add(t.nodeId)
        continue
      }
      if (t.desiredState === 'ready' && !plan.full) this.#promote(svc, t, plan, now)
      let a = active.get(t.nodeId)
      if (!a) active.set(t.nodeId, (a = []))
      a.push(t)
    }
    for (const node of [...this.#nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      if (active.has(node.id) || created.has(node.id)) continue
      if (invalidNode(node) || node.spec.availability !== 'active' || !this.#fits(template, node)) continue
      const last = newest(all.get(node.id) ?? [])
      if (last && last.desiredState === 'shutdown' && isFinished(last) && !this.#shouldRestart(last, now))
        continue
      if (plan.full) break
      plan.ops.push({ kind: 'create', task: this.#newTask(svc, 0, node.id, now, 'running') })
    }
    const slots: UpdateSlot[] = []
    for (const [nodeId, list] of active) slots.push({ key: `n:${nodeId}`, slot: 0, nodeId, active: list })
    await this.#updates.update(svc, slots, plan, now, this.#passMeter)
  }

  // ------------------------------------------------------------------------------------------ reaper

  /**
   * Finished tasks kept per slot. As swarm: a restart limit keeps max attempts + 1 tasks of a slot (the history
   * the restarts are counted from) whatever the cluster's limit; a negative limit never reaps.
   */
  #keep(svc: Service): number {
    const maxAttempts = restartPolicy(svc.spec.taskTemplate.restartPolicy).maxAttempts
    return maxAttempts > 0 ? maxAttempts + 1 : this.#retention
  }

  /** Deletes removed tasks once stopped, and keeps only the newest finished tasks of each slot. */
  async #reap(svc: Service, tasks: Task[], plan: Plan): Promise<void> {
    const bySlot = new Map<string, Task[]>()
    const touched = new Set(plan.ops.map((o) => ('id' in o ? o.id : '')))
    const slice = new TimeSlice(10, this.#passMeter)
    for (const t of tasks) {
      if (slice.due()) await slice.yield()
      if (isDesiredUp(t) || !stopped(t) || touched.has(t.id)) continue
      if (t.desiredState === 'remove') {
        if (plan.full) return
        plan.ops.push({ kind: 'delete', id: t.id, version: t.meta.version })
        plan.cut()
        continue
      }
      const key = this.#slotKey(t)
      let list = bySlot.get(key)
      if (!list) bySlot.set(key, (list = []))
      list.push(t)
    }
    const keep = this.#keep(svc)
    if (keep < 0) return
    for (const list of bySlot.values()) {
      if (list.length <= keep) continue
      list.sort((a, b) => b.meta.createdAt - a.meta.createdAt || b.meta.version - a.meta.version)
      for (const t of list.slice(keep)) {
        if (plan.full) return
        plan.ops.push({ kind: 'delete', id: t.id, version: t.meta.version })
        plan.cut()
      }
    }
  }
}

export { rollbackSpec } from './internal/rolling-update.js'
