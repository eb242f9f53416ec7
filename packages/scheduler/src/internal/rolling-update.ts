// Rolling updates and rollbacks of a service's tasks (swarm's updater): which slots are out of date, how many
// to replace at once (parallelism, delay, start-first or stop-first), the monitor window after each step,
// and what a failure does (pause, roll back, continue). The orchestrator calls it on each pass for a
// service; a run's progress is kept here between passes.

import type { Node, Service, Task, UpdateStatus } from '@swarmkit/store'
import type { ConstraintSet } from '../constraints.js'
import { updateConfig } from '../defaults.js'
import type { NewTask, Plan } from './plan.js'
import { isDesiredUp, isFinished } from './task-state.js'
import { type SliceMeter, TimeSlice } from './time-slice.js'

interface InFlight {
  taskId: string
  /** start-first: the tasks to stop once the new one runs. */
  stopAfter: string[]
}

/** An update in progress for one service version. */
export interface UpdateRun {
  version: number
  rollback: boolean
  total: number
  failures: number
  failed: Set<string>
  /** Tasks this run created -> when first seen running (0 until then). */
  updated: Map<string, number>
  inFlight: Map<string, InFlight>
  nextAt: number
  paused: boolean
  /**
   * Out-of-date slots by key: found by the last full walk, then kept per slot an event touched (a slot is
   * current once a task of the current spec holds it), so that a pass between full walks looks only at them.
   */
  outdated: Map<string, SlotRef>
  /** Tasks in `updated` not finished when last seen: the update is monitoring while any is left. */
  unfinished: Set<string>
  /** Tasks of `updated` first seen running, in that order: their monitor windows end in the same order. */
  window: { id: string; since: number }[]
  windowHead: number
}

/** Where a slot is: its key (`s:N` replicated, `n:NODE` global), slot number and node (global). */
export interface SlotRef {
  key: string
  slot: number
  nodeId: string
}

/** A slot as a pass found it: its tasks that should be up and (incremental passes) all its tasks. */
export interface UpdateSlot extends SlotRef {
  active: Task[]
  /** Every task of the slot (incremental passes look at the run's tasks among them). */
  tasks?: ReadonlyMap<string, Task>
  /** The slot holds a replica (incremental passes: a slot that does not is no longer out of date). */
  live?: boolean
}

type Config = ReturnType<typeof updateConfig>

const UPDATE_ACTIVE = new Set(['updating', 'rollback_started'])

/** What the updater reads from and asks of the orchestrator. */
export interface UpdateHost {
  readonly task: (id: string) => Task | undefined
  readonly node: (id: string) => Node | undefined
  /** The service's placement constraints (null: unparsable, undefined: none). */
  readonly matcher: (spec: Task['spec']) => ConstraintSet | null | undefined
  readonly newTask: (
    svc: Service,
    slot: number,
    nodeId: string,
    now: number,
    desired: Task['desiredState'],
  ) => NewTask
  /** Runs a pass for the service again at `at` (at once if that time has come). */
  readonly wake: (serviceId: string, at: number) => void
  /** Starts task `taskId` not before `delay.at`, once the tasks in `delay.waitFor` have stopped. */
  readonly delay: (taskId: string, delay: { at: number; waitFor: string[] }) => void
  /** An update status was written (the orchestrator's `update:state` event). */
  readonly emit: (serviceId: string, status: UpdateStatus) => void
}

export class RollingUpdates {
  readonly #host: UpdateHost
  /** Updates in progress, by service ID. */
  readonly runs = new Map<string, UpdateRun>()

  constructor(host: UpdateHost) {
    this.#host = host
  }

  #setStatus(svc: Service, plan: Plan, status: UpdateStatus, change?: (s: Service) => Service): void {
    plan.ops.push({
      kind: 'service',
      id: svc.id,
      version: svc.meta.version,
      next: (cur) => ({ ...(change ? change(cur) : cur), updateStatus: status }),
    })
    plan.after.push(() => this.#host.emit(svc.id, status))
    plan.cut()
  }

  /**
   * One pass over every slot of a service (a full walk). Async only to run in time slices: with parallelism 0
   * every slot of a service of tens of thousands is dirty, in flight or monitored at once, and walking them
   * all without yielding held a manager's event loop past the election timeout (issue #18). The caller's view
   * of the store does not change meanwhile. Starts afresh what {@link advance} keeps between full walks.
   */
  async update(
    svc: Service,
    slots: UpdateSlot[],
    plan: Plan,
    now: number,
    meter?: SliceMeter,
  ): Promise<void> {
    const version = svc.specVersion.index
    const status = svc.updateStatus
    const isCurrent = this.#currency(svc)
    const slice = new TimeSlice(10, meter)
    const dirty: UpdateSlot[] = []
    for (const s of slots) {
      if (slice.due()) await slice.yield()
      if (!s.active.some(isCurrent)) dirty.push(s)
    }
    // Replicated slots in slot order, global ones by node.
    dirty.sort(bySlot)
    const paused = status?.state === 'paused' || status?.state === 'rollback_paused'
    let run = this.runs.get(svc.id)
    // A new spec, or a paused update whose status was cleared (the service was updated again): start over.
    if (run && (run.version !== version || (run.paused && !paused))) {
      this.runs.delete(svc.id)
      run = undefined
    }
    if (!run) {
      if (dirty.length === 0) {
        if (status && UPDATE_ACTIVE.has(status.state)) {
          const rollback = status.state === 'rollback_started'
          this.#setStatus(svc, plan, {
            ...status,
            state: rollback ? 'rollback_completed' : 'completed',
            completedAt: now,
            message: rollback ? 'rollback completed' : 'update completed',
          })
        }
        return
      }
      if (paused) return
      const rollback = status?.state === 'rollback_started'
      run = {
        version,
        rollback,
        total: dirty.length,
        failures: 0,
        failed: new Set(),
        updated: new Map(),
        inFlight: new Map(),
        nextAt: now,
        paused: false,
        outdated: new Map(),
        unfinished: new Set(),
        window: [],
        windowHead: 0,
      }
      const created = run
      plan.after.push(() => this.runs.set(svc.id, created))
      // (An orchestrator taking over an update in progress keeps its status.)
      if (!rollback && status?.state !== 'updating')
        this.#setStatus(svc, plan, { state: 'updating', startedAt: now, message: 'update in progress' })
    }
    const r = run
    r.outdated = new Map(dirty.map((s) => [s.key, { key: s.key, slot: s.slot, nodeId: s.nodeId }]))
    if (paused || r.paused) return
    const config = updateConfig(r.rollback ? svc.spec.rollbackConfig : svc.spec.updateConfig)
    // Watch the tasks this run started: running ones finish their slot; early exits count as failures.
    for (const [key, f] of [...r.inFlight]) {
      if (slice.due()) await slice.yield()
      plan.cut()
      this.#watchStep(svc.id, r, key, f, plan, now, config)
    }
    let failedTask: string | undefined
    r.unfinished = new Set()
    r.window = []
    r.windowHead = 0
    for (const [id, startedAt] of r.updated) {
      if (slice.due()) await slice.yield()
      const t = this.#host.task(id)
      if (!t) {
        r.updated.delete(id)
        continue
      }
      if (this.#monitor(r, t, startedAt, now, config)) failedTask ??= id
      const since = r.updated.get(id)
      if (since === undefined) continue
      if (since > 0) {
        r.window.push({ id, since })
        if (r.unfinished.has(id)) this.#host.wake(svc.id, since + config.monitorMs + 1)
      }
    }
    r.window.sort((a, b) => a.since - b.since)
    const waiting = dirty.filter((s) => !r.inFlight.has(s.key))
    await this.#proceed(
      svc,
      r,
      config,
      failedTask,
      waiting,
      (s) => (s as UpdateSlot).active,
      plan,
      now,
      slice,
    )
  }

  /**
   * One pass over the slots events touched since the last pass (`touched`, every one of them visited by the
   * orchestrator), between full walks: their currency, their steps in flight, the run's tasks in them; then
   * the next steps from the out-of-date slots kept. `activeOf` gives an untouched slot's tasks that should be
   * up. `'full'`: a full walk is needed (no run of the service's version here).
   */
  async advance(
    svc: Service,
    touched: readonly UpdateSlot[],
    plan: Plan,
    now: number,
    activeOf: (s: SlotRef) => Task[],
    meter?: SliceMeter,
  ): Promise<'full' | undefined> {
    const status = svc.updateStatus
    const r = this.runs.get(svc.id)
    if (!r) return status && UPDATE_ACTIVE.has(status.state) ? 'full' : undefined
    const paused = status?.state === 'paused' || status?.state === 'rollback_paused'
    if (r.version !== svc.specVersion.index || (r.paused && !paused)) return 'full'
    if (paused || r.paused) return undefined
    const config = updateConfig(r.rollback ? svc.spec.rollbackConfig : svc.spec.updateConfig)
    const isCurrent = this.#currency(svc)
    const slice = new TimeSlice(10, meter)
    const activeByKey = new Map<string, Task[]>()
    let failedTask: string | undefined
    for (const s of touched) {
      if (slice.due()) await slice.yield()
      activeByKey.set(s.key, s.active)
      if (s.live !== false && s.active.length > 0 && !s.active.some(isCurrent))
        r.outdated.set(s.key, { key: s.key, slot: s.slot, nodeId: s.nodeId })
      else r.outdated.delete(s.key)
      const f = r.inFlight.get(s.key)
      if (f) {
        plan.cut()
        this.#watchStep(svc.id, r, s.key, f, plan, now, config)
      }
      for (const t of s.tasks?.values() ?? []) {
        const startedAt = r.updated.get(t.id)
        if (startedAt === undefined) continue
        if (this.#monitor(r, t, startedAt, now, config)) failedTask ??= t.id
        const since = r.updated.get(t.id)
        if (startedAt === 0 && since !== undefined && since > 0) r.window.push({ id: t.id, since })
      }
    }
    // Monitor windows that ended: those tasks can no longer fail the update.
    while (r.windowHead < r.window.length) {
      const w = r.window[r.windowHead] as { id: string; since: number }
      if (now - w.since <= config.monitorMs) {
        if (r.unfinished.size > 0) this.#host.wake(svc.id, w.since + config.monitorMs + 1)
        break
      }
      if (r.updated.get(w.id) === w.since && !r.failed.has(w.id)) {
        r.updated.delete(w.id)
        r.unfinished.delete(w.id)
      }
      r.windowHead++
    }
    if (r.windowHead > 1024 && r.windowHead * 2 > r.window.length) {
      r.window = r.window.slice(r.windowHead)
      r.windowHead = 0
    }
    const waiting: SlotRef[] = []
    for (const [key, s] of r.outdated) if (!r.inFlight.has(key)) waiting.push(s)
    waiting.sort(bySlot)
    // (the tasks of a slot are looked up only for the slots a step reaches)
    const active = (s: SlotRef) => activeByKey.get(s.key) ?? activeOf(s)
    await this.#proceed(svc, r, config, failedTask, waiting, active, plan, now, slice)
    return undefined
  }

  /** Task `id` of a run's service was deleted: it is no longer watched. */
  taskGone(serviceId: string, id: string): void {
    const r = this.runs.get(serviceId)
    if (!r) return
    r.updated.delete(id)
    r.unfinished.delete(id)
  }

  /** Whether a task is of the service's current spec. */
  #currency(svc: Service): (t: Task) => boolean {
    const version = svc.specVersion.index
    const template = specKey(svc.spec.taskTemplate)
    const unplaced = specKey(withoutPlacement(svc.spec.taskTemplate))
    const placement = this.#host.matcher(svc.spec.taskTemplate)
    // A task is out of date when it comes from another spec version and its spec differs from the template;
    // as in swarm, not when only the placement changed and its node still meets the new constraints.
    return (t: Task) => {
      if ((t.specVersion?.index ?? 0) === version) return true
      if (specKey(t.spec) === template) return true
      if (specKey(withoutPlacement(t.spec)) !== unplaced || placement === null) return false
      const node = this.#host.node(t.nodeId)
      return node !== undefined && (!placement || placement.matches(node))
    }
  }

  /** A step in flight in slot `key`: its new task running finishes it; an early end is the step's end too. */
  #watchStep(
    serviceId: string,
    r: UpdateRun,
    key: string,
    f: InFlight,
    plan: Plan,
    now: number,
    config: Config,
  ): void {
    // A step that ends makes room for the next one: a pass takes it (once the update delay passed) rather
    // than waiting for whatever event comes next.
    const end = () => {
      r.inFlight.delete(key)
      this.#host.wake(serviceId, r.nextAt)
    }
    const t = this.#host.task(f.taskId)
    if (!t) {
      plan.after.push(end)
      return
    }
    if (t.status.state === 'running') {
      for (const id of f.stopAfter) {
        const old = this.#host.task(id)
        if (old && isDesiredUp(old)) plan.setDesired(old, 'shutdown')
      }
      plan.after.push(() => {
        r.nextAt = Math.max(r.nextAt, now + config.delayMs)
        if (r.updated.get(t.id) === 0) {
          r.updated.set(t.id, now)
          r.window.push({ id: t.id, since: now })
        }
        end()
      })
    } else if (t.status.state === 'pending' && t.status.err && f.stopAfter.length) {
      // start-first, but no node can run both (ports, max replicas, resources): stop the old task
      // first after all, so that the new one fits.
      for (const id of f.stopAfter) {
        const old = this.#host.task(id)
        if (old && isDesiredUp(old)) plan.setDesired(old, 'shutdown')
      }
      plan.after.push(() => {
        f.stopAfter = []
      })
    } else if (isFinished(t) || !isDesiredUp(t) || (t.status.state === 'pending' && t.status.err)) {
      // failed, stopped, or no node can take it now: this step is over either way
      plan.after.push(end)
    }
  }

  /**
   * Looks at task `t` this run created (first seen running at `startedAt`, 0 if not yet): notes when it runs,
   * lets it go once past its monitor window, counts an exit we did not ask for as a failure. True if that
   * failure takes the run past its failure ratio. Keeps `r.unfinished` in step.
   */
  #monitor(r: UpdateRun, t: Task, startedAt: number, now: number, config: Config): boolean {
    const id = t.id
    if (t.status.state === 'running' && startedAt === 0) r.updated.set(id, now)
    const since = r.updated.get(id) as number
    const inWindow = since === 0 || now - since <= config.monitorMs
    if (!inWindow && !r.failed.has(id)) {
      // Past its monitor window it can no longer fail the update: do not walk it again in every pass.
      r.updated.delete(id)
      r.unfinished.delete(id)
      return false
    }
    if (!isFinished(t) && inWindow) r.unfinished.add(id)
    else r.unfinished.delete(id)
    // An exit we did not ask for (a task we stopped, e.g. when scaling down, is not a failure).
    if (isFinished(t) && isDesiredUp(t) && !r.failed.has(id) && inWindow) {
      r.failed.add(id)
      r.failures++
      return r.failures / r.total > config.maxFailureRatio
    }
    return false
  }

  /** After the walk: pause or roll back on failure, complete, or take the next steps from `waiting`. */
  async #proceed(
    svc: Service,
    r: UpdateRun,
    config: Config,
    failedTask: string | undefined,
    waiting: readonly SlotRef[],
    activeOf: (s: SlotRef) => Task[],
    plan: Plan,
    now: number,
    slice: TimeSlice,
  ): Promise<void> {
    const status = svc.updateStatus
    if (failedTask !== undefined && config.failureAction !== 'continue') {
      const what = `failure or early termination of task ${failedTask}`
      if (config.failureAction === 'pause' || r.rollback || !svc.previousSpec) {
        plan.after.push(() => {
          r.paused = true
        })
        this.#setStatus(svc, plan, {
          state: r.rollback ? 'rollback_paused' : 'paused',
          startedAt: status?.startedAt ?? now,
          message: `${r.rollback ? 'rollback' : 'update'} paused due to ${what}`,
        })
        return
      }
      plan.after.push(() => this.runs.delete(svc.id))
      this.#setStatus(
        svc,
        plan,
        { state: 'rollback_started', startedAt: now, message: `update rolled back due to ${what}` },
        (cur) => rollbackSpec(cur),
      )
      return
    }
    if (waiting.length === 0 && r.inFlight.size === 0) {
      if (r.unfinished.size > 0) return
      plan.after.push(() => this.runs.delete(svc.id))
      this.#setStatus(svc, plan, {
        state: r.rollback ? 'rollback_completed' : 'completed',
        startedAt: status?.startedAt ?? now,
        completedAt: now,
        message: r.rollback ? 'rollback completed' : 'update completed',
      })
      return
    }
    if (now < r.nextAt) {
      this.#host.wake(svc.id, r.nextAt)
      return
    }
    const limit = config.parallelism === 0 ? Number.POSITIVE_INFINITY : config.parallelism
    let inFlight = r.inFlight.size
    for (const s of waiting) {
      if (slice.due()) await slice.yield()
      // Each slot's step stands alone: a transaction may end between two slots.
      plan.cut()
      if (plan.full) break
      const up = activeOf(s).filter((t) => isDesiredUp(t))
      if (!up.some((t) => t.status.state === 'running')) {
        // Nothing runs in this slot (its task is still pending, e.g. unschedulable): replacing it takes
        // nothing down, so it is not an update step to wait for.
        for (const o of up) plan.setDesired(o, 'shutdown')
        const t = this.#host.newTask(svc, s.slot, s.nodeId, now, 'ready')
        plan.ops.push({ kind: 'create', task: t })
        const waitFor = up.map((o) => o.id)
        plan.after.push(() => {
          this.#host.delay(t.id, { at: now, waitFor })
          r.updated.set(t.id, 0)
          r.unfinished.add(t.id)
        })
        continue
      }
      if (inFlight >= limit) continue
      inFlight++
      if (config.order === 'start-first') {
        const t = this.#host.newTask(svc, s.slot, s.nodeId, now, 'running')
        plan.ops.push({ kind: 'create', task: t })
        const stopAfter = up.map((o) => o.id)
        plan.after.push(() => {
          r.inFlight.set(s.key, { taskId: t.id, stopAfter })
          r.updated.set(t.id, 0)
          r.unfinished.add(t.id)
        })
      } else {
        for (const o of up) plan.setDesired(o, 'shutdown')
        const t = this.#host.newTask(svc, s.slot, s.nodeId, now, 'ready')
        plan.ops.push({ kind: 'create', task: t })
        const waitFor = up.map((o) => o.id)
        plan.after.push(() => {
          this.#host.delay(t.id, { at: now, waitFor })
          r.inFlight.set(s.key, { taskId: t.id, stopAfter: [] })
          r.updated.set(t.id, 0)
          r.unfinished.add(t.id)
        })
      }
    }
  }
}

/** Replicated slots in slot order, global ones by node. */
function bySlot(a: SlotRef, b: SlotRef): number {
  return a.slot - b.slot || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}

const specKeys = new WeakMap<object, string>()

const unplacedSpecs = new WeakMap<object, Task['spec']>()

/** The spec without its placement (cached per frozen store object, so that its key is cached too). */
function withoutPlacement(spec: Task['spec']): Task['spec'] {
  let out = unplacedSpecs.get(spec)
  if (!out) {
    const { placement: _placement, ...rest } = spec
    out = rest
    unplacedSpecs.set(spec, out)
  }
  return out
}

/** A canonical string of a task spec (cached per frozen store object). */
function specKey(spec: Task['spec']): string {
  let k = specKeys.get(spec)
  if (k === undefined) {
    k = JSON.stringify(spec, (_key, v) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([, x]) => x !== undefined)
              .sort(([a], [b]) => (a < b ? -1 : 1)),
          )
        : v,
    )
    specKeys.set(spec, k)
  }
  return k
}

/** The service with its previous spec restored (and the current one kept as previous), as swarm rolls back. */
export function rollbackSpec(cur: Service): Service {
  if (!cur.previousSpec) return cur
  const next: Service = {
    ...cur,
    spec: cur.previousSpec,
    specVersion: cur.previousSpecVersion ?? { index: cur.specVersion.index + 1 },
    previousSpec: cur.spec,
    previousSpecVersion: cur.specVersion,
  }
  return next
}
