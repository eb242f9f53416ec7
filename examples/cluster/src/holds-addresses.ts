// Which tasks hold their network addresses: those that have not finished. A finished task's addresses are
// free again (its container is gone, and no network view lists it any more).
import { type Task, taskStateRank } from '@swarmkit/store'

const RANK_RUNNING = taskStateRank('running')

/** Whether a task still holds its addresses: it has not finished. */
export function holdsAddresses(t: Task): boolean {
  return taskStateRank(t.status.state) <= RANK_RUNNING
}
