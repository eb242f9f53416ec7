// The replicated orchestrator, slot by slot: the restart supervisor, duplicates, liveness and the reaper act on
// one slot at a time, so that a pass may visit every slot (a full reconcile) or only the slots events touched
// since the last pass (the steady state; issue #18). Both run the same per-slot code; a full pass only starts
// the per-service bookkeeping (live slots, the rolling update's out-of-date slots) afresh.
import type { Service, Task } from '@swarmkit/store'
import type { NewTask, Plan } from './plan.js'
import type { RollingUpdates, UpdateSlot } from './rolling-update.js'
import { slotsToRemove } from './scale-down.js'
import { slotDuplicates } from './slot-duplicates.js'
import type { ServiceSlots } from './slot-index.js'
import { isDesiredUp, isFinished, RANK_ASSIGNED, rank } from './task-state.js'
import { type SliceMeter, TimeSlice } from './time-slice.js'

/** What the replicated orchestrator borrows from the orchestrator. */
export interface ReplicatedHost {
  /** The restart supervisor for a task that should be up: the replacement, `null` if stopped for good. */
  supervise(svc: Service, t: Task, plan: Plan, now: number): NewTask | null | undefined
  /** Starts a replacement (desired `ready`) once its restart delay passed. */
  promote(svc: Service, t: Task, plan: Plan, now: number): void
  /** Whether the restart policy restarts this finished task. */
  shouldRestart(t: Task, now: number): boolean
  newTask(svc: Service, slot: number, nodeId: string, now: number, desired: Task['desiredState']): NewTask
  /** Finished tasks kept per slot (negative: never reaped). */
  keep(svc: Service): number
  readonly updates: RollingUpdates
  /**
   * Commits the plan's complete steps so far ({@link Plan.take}) in the middle of a full pass; false if that
   * failed, and the pass ends there (what it planned after is not committed; the next pass looks again).
   */
  commitSoFar?(serviceId: string, plan: Plan): Promise<boolean>
}

/** A task no longer holding its slot: finished, or never placed. */
export function stopped(t: Task): boolean {
  return isFinished(t) || rank(t.status.state) < RANK_ASSIGNED
}

export function newest(tasks: readonly Task[]): Task | undefined {
  let best: Task | undefined
  for (const t of tasks)
    if (
      !best ||
      t.meta.createdAt > best.meta.createdAt ||
      (t.meta.createdAt === best.meta.createdAt && t.meta.version > best.meta.version)
    )
      best = t
  return best
}

const EMPTY: ReadonlyMap<string, Task> = new Map()

/**
 * One pass over a replicated service: every slot if `full`, else the slots in `state.dirty`. A slot whose work
 * did not fit in the plan stays dirty for the next pass. Returns whether the service needs a full pass next
 * (a scale-down, which ranks every slot, found by an incremental pass).
 */
export async function reconcileReplicated(
  host: ReplicatedHost,
  svc: Service,
  replicas: number,
  state: ServiceSlots,
  full: boolean,
  plan: Plan,
  now: number,
  meter?: SliceMeter,
): Promise<boolean> {
  const slice = new TimeSlice(10, meter)
  const rollingBack = svc.updateStatus?.state === 'rollback_started'
  const inFlight = host.updates.runs.get(svc.id)?.inFlight
  const keep = host.keep(svc)
  let visit: number[]
  if (full) {
    state.live.clear()
    state.freeFrom = 1
    visit = [...state.slots.keys()].sort((a, b) => a - b)
  } else visit = [...state.dirty].sort((a, b) => a - b)
  state.dirty = new Set()
  const touched: UpdateSlot[] = []
  /** Full passes only: every live slot's tasks that should be up (what a scale-down ranks). */
  const actives = full ? new Map<number, Task[]>() : undefined
  for (const slot of visit) {
    if (slice.due()) await slice.yield()
    // Each slot's restarts, promotions and reaping stand alone: a transaction may end between two slots.
    plan.cut()
    // A full pass over a large service (a new leader's first) commits as it goes: its first changes reach
    // the workers a transaction after it began, not after the whole walk (seconds at 150,000 slots).
    if (full && host.commitSoFar && plan.takeable >= plan.maxTxOps && !(await host.commitSoFar(svc.id, plan)))
      return true
    const tasks = state.slots.get(slot) ?? EMPTY
    let skipped = false
    let created = false
    let done = false
    const all: Task[] = []
    let active: Task[] = []
    for (const t of tasks.values()) {
      if (t.desiredState === 'remove') continue
      all.push(t)
      if (!isDesiredUp(t)) continue
      if (plan.full) {
        // No room: the task stays as it is, and the slot is looked at again in the next pass.
        skipped = true
        active.push(t)
        continue
      }
      const r = host.supervise(svc, t, plan, now)
      if (r === null) {
        // stopped for good (restart policy): the slot stays, holding its finished task
        done = true
        continue
      }
      if (r) {
        created = true
        continue
      }
      if (t.desiredState === 'ready') {
        if (plan.full) skipped = true
        else host.promote(svc, t, plan, now)
      }
      active.push(t)
    }
    // Two live tasks in one slot outside an update step (see slot-duplicates.ts): keep one.
    if (active.length > 1 && !inFlight?.has(`s:${slot}`)) {
      if (plan.full) skipped = true
      else {
        const extra = slotDuplicates(active, svc.specVersion.index)
        for (const t of extra) plan.setDesired(t, 'shutdown')
        plan.cut()
        if (extra.length) active = active.filter((t) => !extra.includes(t))
      }
    }
    // A slot is live if a task in it should be up, or its last task ended and is not to be restarted.
    let live = active.length > 0 || created || done
    if (!live && !rollingBack) {
      const last = newest(all)
      if (last && last.desiredState === 'shutdown' && isFinished(last) && !host.shouldRestart(last, now))
        live = true
    }
    if (live) state.live.add(slot)
    else state.unlive(slot)
    if (!reapSlot(tasks, keep, plan)) skipped = true
    if (skipped) state.dirty.add(slot)
    if (live && active.length > 0) actives?.set(slot, active)
    touched.push({ key: `s:${slot}`, slot, nodeId: '', active, tasks, live })
  }
  let needsFull = false
  if (state.live.size < replicas) {
    let slot = state.freeFrom - 1
    for (let n = state.live.size; n < replicas; n++) {
      if (plan.bulkFull) break
      while (state.live.has(++slot));
      plan.bulk.push(host.newTask(svc, slot, '', now, 'running'))
      // (A pass may create tens of thousands: in slices too.)
      if (slice.due()) await slice.yield()
    }
    // The slots just created become live when their tasks' events come, before the next pass.
    state.freeFrom = slot + 1
  } else if (state.live.size > replicas) {
    if (actives) scaleDown(state, actives, replicas, plan)
    else needsFull = true
  }
  if (full)
    await host.updates.update(
      svc,
      touched.filter((s) => s.live && s.active.length > 0),
      plan,
      now,
      meter,
    )
  else if (
    (await host.updates.advance(svc, touched, plan, now, (s) => activeOf(state, s.slot), meter)) === 'full'
  )
    needsFull = true
  return needsFull
}

/** The tasks of `slot` that should be up (what an update step replaces), as a pass that changed none sees them. */
function activeOf(state: ServiceSlots, slot: number): Task[] {
  const out: Task[] = []
  for (const t of state.slots.get(slot)?.values() ?? []) if (isDesiredUp(t)) out.push(t)
  return out
}

/** Removes slots from the nodes with the most tasks of the service first, non-running tasks before running. */
function scaleDown(state: ServiceSlots, actives: Map<number, Task[]>, replicas: number, plan: Plan): void {
  for (const slot of slotsToRemove(state.live, actives, replicas)) {
    if (plan.full) return
    for (const t of state.slots.get(slot)?.values() ?? [])
      if (t.desiredState !== 'remove') plan.setDesired(t, 'remove')
    plan.cut()
  }
}

/**
 * The reaper for one slot: deletes its removed tasks once stopped, and keeps only its newest `keep` finished
 * ones (negative: all). False if the plan had no room for all of it.
 */
function reapSlot(tasks: ReadonlyMap<string, Task>, keep: number, plan: Plan): boolean {
  let history: Task[] | undefined
  for (const t of tasks.values()) {
    if (isDesiredUp(t) || !stopped(t) || plan.touches(t.id)) continue
    if (t.desiredState === 'remove') {
      if (plan.full) return false
      plan.ops.push({ kind: 'delete', id: t.id, version: t.meta.version })
      plan.cut()
      continue
    }
    ;(history ??= []).push(t)
  }
  if (keep < 0 || !history || history.length <= keep) return true
  history.sort((a, b) => b.meta.createdAt - a.meta.createdAt || b.meta.version - a.meta.version)
  for (const t of history.slice(keep)) {
    if (plan.full) return false
    plan.ops.push({ kind: 'delete', id: t.id, version: t.meta.version })
    plan.cut()
  }
  return true
}
