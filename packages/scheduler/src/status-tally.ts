// `ServiceStatus` (`docker service ls`) from counts kept per job iteration, so that a caller can keep them at
// commit instead of walking every task of a service at each request (150,000 at swarm3k scale). The rule is
// here once: {@link serviceStatus} walks the tasks through the same two functions.

import type { Service, Task } from '@swarmkit/store'
import { isDesiredUp } from './internal/task-state.js'

/** What tasks add to their service's status: one task's part, or a sum of them. */
export interface StatusTally {
  /** Running and meant to be up. */
  running: number
  /** Complete (counted for jobs). */
  completed: number
  /** Desired running (a global service's desired count). */
  desiredRunning: number
  /** Desired complete and not complete yet (a global job's desired count). */
  desiredComplete: number
}

/** The job iteration a task counts under: its own, or -1 (the task of a service that is not a job). */
export function taskTallyKey(t: Task): number {
  return t.jobIteration?.index ?? -1
}

/** One task's part in its service's status (each count 0 or 1). */
export function taskTally(t: Task): StatusTally {
  const state = t.status.state
  return {
    running: state === 'running' && isDesiredUp(t) ? 1 : 0,
    completed: state === 'complete' ? 1 : 0,
    desiredRunning: t.desiredState === 'running' ? 1 : 0,
    desiredComplete: t.desiredState === 'complete' && state !== 'complete' ? 1 : 0,
  }
}

/**
 * `ServiceStatus` from the tallies of a service's tasks per {@link taskTallyKey}: a job counts only its current
 * iteration's tasks, any other service all of them; desired is the replicas (a replicated job's max
 * concurrent), or for global modes the tasks desired up.
 */
export function statusFromTallies(
  svc: Service,
  tallies: ReadonlyMap<number, StatusTally>,
): { running: number; desired: number; completed: number } {
  const mode = svc.spec.mode
  const job = 'replicatedJob' in mode || 'globalJob' in mode
  let running = 0
  let completed = 0
  let desired = 0
  const add = (t: StatusTally) => {
    running += t.running
    completed += t.completed
    if ('global' in mode) desired += t.desiredRunning
    if ('globalJob' in mode) desired += t.desiredComplete
  }
  if (job) {
    const current = tallies.get(svc.jobStatus?.jobIteration.index ?? 0)
    if (current) add(current)
  } else for (const t of tallies.values()) add(t)
  if ('replicated' in mode) desired = mode.replicated.replicas
  else if ('replicatedJob' in mode) desired = mode.replicatedJob.maxConcurrent
  return { running, desired, completed }
}
