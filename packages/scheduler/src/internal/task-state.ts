import { type Task, type TaskState, taskStateRank } from '@swarmkit/store'

export const RANK_PENDING = taskStateRank('pending')
export const RANK_ASSIGNED = taskStateRank('assigned')
export const RANK_READY = taskStateRank('ready')
export const RANK_RUNNING = taskStateRank('running')
export const RANK_COMPLETE = taskStateRank('complete')
export const RANK_SHUTDOWN = taskStateRank('shutdown')

export function rank(s: TaskState): number {
  return taskStateRank(s)
}

/** Observed state past running: the task has finished (complete, shutdown, failed, rejected, …). */
export function isFinished(t: Task): boolean {
  return taskStateRank(t.status.state) > RANK_RUNNING
}

/** Desired to run (or to be prepared to run); a job's task runs until it completes. */
export function isDesiredUp(t: Task): boolean {
  return t.desiredState === 'running' || t.desiredState === 'ready' || t.desiredState === 'complete'
}

/** The task holds its node's resources: assigned and not finished, and still desired up. */
export function holdsNode(t: Task): boolean {
  if (!t.nodeId || !isDesiredUp(t)) return false
  const r = taskStateRank(t.status.state)
  return r >= RANK_ASSIGNED && r <= RANK_RUNNING
}

/** Waiting for the scheduler. */
export function isPending(t: Task): boolean {
  return t.status.state === 'pending' && isDesiredUp(t)
}

export function isFailure(s: TaskState): boolean {
  return s === 'failed' || s === 'rejected'
}

/**
 * The change from `a` to `b` is only a worker's progress towards running (assigned, accepted, preparing,
 * ready, starting): the orchestrator decides nothing on those states (it acts on running, on finished, and on
 * what the managers change), so such a change needs no pass.
 */
export function progressOnly(a: Task, b: Task): boolean {
  const ra = taskStateRank(a.status.state)
  const rb = taskStateRank(b.status.state)
  return (
    ra >= RANK_ASSIGNED &&
    ra < RANK_RUNNING &&
    rb >= RANK_ASSIGNED &&
    rb < RANK_RUNNING &&
    a.desiredState === b.desiredState &&
    a.nodeId === b.nodeId &&
    a.slot === b.slot &&
    a.spec === b.spec &&
    a.status.err === b.status.err
  )
}
