import type { Node, Service, Task } from '@swarmkit/store'
import type { NewTask, Plan } from './internal/plan.js'
import { isDesiredUp, isFinished } from './internal/task-state.js'
import { type StatusTally, statusFromTallies, taskTally, taskTallyKey } from './status-tally.js'

/** What the job orchestrators borrow from the orchestrator: its view, task factory and restart supervisor. */
export interface JobHost {
  nodes(): Iterable<Node>
  node(id: string): Node | undefined
  /** Whether `node` may run tasks of `spec` (constraints, platforms). */
  fits(spec: Task['spec'], node: Node): boolean
  newTask(svc: Service, slot: number, nodeId: string, now: number, desired: Task['desiredState']): NewTask
  /** The restart supervisor for a task that should be up: the replacement, `null` if stopped for good. */
  supervise(svc: Service, t: Task, plan: Plan, now: number): NewTask | null | undefined
  /** Starts a replacement (desired `ready`) once its restart delay passed. */
  promote(svc: Service, t: Task, plan: Plan, now: number): void
  /** Whether the restart policy restarts this finished task. */
  shouldRestart(t: Task, now: number): boolean
}

/** The iteration of the job that runs now (0 until the service was first updated). */
export function jobIteration(svc: Service): number {
  return svc.jobStatus?.jobIteration.index ?? 0
}

/** Whether a service runs to completion (`replicated-job` or `global-job` mode) rather than forever. */
export function isJob(svc: Pick<Service, 'spec'>): boolean {
  return 'replicatedJob' in svc.spec.mode || 'globalJob' in svc.spec.mode
}

/**
 * The job status a service gets when it is created (`cur` undefined) or updated with `spec`: as in swarm,
 * every update of a job starts a new iteration (the job runs again); services that are not jobs have none.
 */
export function nextJobStatus(
  cur: Service | undefined,
  spec: Service['spec'],
  now: number,
): Service['jobStatus'] | undefined {
  if (!isJob({ spec })) return undefined
  const index = cur?.jobStatus ? cur.jobStatus.jobIteration.index + 1 : 0
  return { jobIteration: { index }, lastExecution: now }
}

/**
 * A task of an earlier run of the job: removed if it still runs; if it ended, it becomes history (desired
 * `shutdown`), which the reaper trims as it trims any slot's history.
 */
function retire(t: Task, iteration: number, plan: Plan): boolean {
  if ((t.jobIteration?.index ?? -1) === iteration) return false
  if (plan.full) return true
  if (!isFinished(t)) plan.setDesired(t, 'remove')
  else if (t.desiredState === 'complete') plan.setDesired(t, 'shutdown')
  return true
}

function newest(tasks: Task[]): Task | undefined {
  let best: Task | undefined
  for (const t of tasks) if (!best || t.meta.createdAt > best.meta.createdAt) best = t
  return best
}

/**
 * A replicated job: runs tasks until `totalCompletions` of them completed, at most `maxConcurrent` at once.
 * Completed tasks are never restarted; failed ones are, by the restart policy (in the same slot). A slot
 * whose task failed and is not to be restarted (condition `none`, max attempts reached) stays taken: the job
 * does not reach its completions, as it could not without going past the policy.
 */
export function reconcileReplicatedJob(
  host: JobHost,
  svc: Service,
  job: { maxConcurrent: number; totalCompletions: number },
  tasks: Task[],
  plan: Plan,
  now: number,
): void {
  const iteration = jobIteration(svc)
  const taken = new Set<number>()
  const bySlot = new Map<number, Task[]>()
  let running = 0
  let completed = 0
  for (const t of tasks) {
    if (t.desiredState === 'remove' || retire(t, iteration, plan)) continue
    if (t.status.state === 'complete') {
      completed++
      taken.add(t.slot)
      continue
    }
    let list = bySlot.get(t.slot)
    if (!list) bySlot.set(t.slot, (list = []))
    list.push(t)
    if (!isDesiredUp(t)) continue
    taken.add(t.slot)
    const r = plan.full ? undefined : host.supervise(svc, t, plan, now)
    if (r === null) continue // stopped for good: the slot stays taken
    if (r === undefined && t.desiredState === 'ready' && !plan.full) host.promote(svc, t, plan, now)
    running++
  }
  // Slots whose last task ended and is not to be restarted (an earlier pass stopped it for good).
  for (const [slot, list] of bySlot) {
    if (taken.has(slot)) continue
    const last = newest(list)
    if (last && isFinished(last) && !host.shouldRestart(last, now)) taken.add(slot)
  }
  const stuck = [...taken].length - completed - running
  const room = Math.min(job.maxConcurrent - running, job.totalCompletions - completed - running - stuck)
  let slot = 0
  for (let n = 0; n < room; n++) {
    if (plan.bulkFull) break
    while (taken.has(++slot));
    taken.add(slot)
    plan.bulk.push(host.newTask(svc, slot, '', now, 'complete'))
  }
}

/**
 * A global job: one task to completion on every node that is ready, active and eligible now; a node that
 * joins later gets one too. A task on a node that goes down or is drained is stopped, without replacement.
 */
export function reconcileGlobalJob(
  host: JobHost,
  svc: Service,
  tasks: Task[],
  plan: Plan,
  now: number,
): void {
  const iteration = jobIteration(svc)
  const template = svc.spec.taskTemplate
  const done = new Set<string>()
  const byNode = new Map<string, Task[]>()
  for (const t of tasks) {
    if (t.desiredState === 'remove' || retire(t, iteration, plan)) continue
    let list = byNode.get(t.nodeId)
    if (!list) byNode.set(t.nodeId, (list = []))
    list.push(t)
    if (t.status.state === 'complete') {
      done.add(t.nodeId)
      continue
    }
    if (!isDesiredUp(t)) continue
    done.add(t.nodeId)
    const node = host.node(t.nodeId)
    if (!node || node.status.state === 'down' || node.spec.availability === 'drain') {
      if (!plan.full) plan.setDesired(t, 'shutdown')
      continue
    }
    const r = plan.full ? undefined : host.supervise(svc, t, plan, now)
    if (r === undefined && t.desiredState === 'ready' && !plan.full) host.promote(svc, t, plan, now)
  }
  const nodes = [...host.nodes()].sort((a, b) => (a.id < b.id ? -1 : 1))
  for (const node of nodes) {
    if (done.has(node.id)) continue
    if (node.status.state !== 'ready' || node.spec.availability !== 'active' || !host.fits(template, node))
      continue
    // A task that ended here and is not to be restarted (or was stopped when the node went away): done.
    const last = newest(byNode.get(node.id) ?? [])
    if (last && isFinished(last) && !host.shouldRestart(last, now)) continue
    if (plan.full) break
    plan.ops.push({ kind: 'create', task: host.newTask(svc, 0, node.id, now, 'complete') })
  }
}

/**
 * `ServiceStatus` as swarm's control API computes it for `docker service ls`: running tasks, desired tasks
 * (replicas; a replicated job's max concurrent; for global modes the tasks desired up), and for jobs the tasks
 * of the current iteration that completed. Tasks of earlier job iterations do not count.
 */
export function serviceStatus(
  svc: Service,
  tasks: readonly Task[],
): { running: number; desired: number; completed: number } {
  // The rule is status-tally.ts's (callers may keep the tallies at commit instead).
  const tallies = new Map<number, StatusTally>()
  for (const t of tasks) {
    const key = taskTallyKey(t)
    const part = taskTally(t)
    const sum = tallies.get(key)
    if (!sum) tallies.set(key, part)
    else {
      sum.running += part.running
      sum.completed += part.completed
      sum.desiredRunning += part.desiredRunning
      sum.desiredComplete += part.desiredComplete
    }
  }
  return statusFromTallies(svc, tallies)
}
