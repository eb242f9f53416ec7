// Which tasks hold their network addresses: those that have not finished. A finished task's addresses are
// free again (its container is gone, and no network view lists it any more). The store keeps held addresses
// unique by the same rule (address-claims.ts), so it has one home there.
import { type Task, taskHoldsAddresses } from '@swarmkit/store'

/** Whether a task still holds its addresses: it has not finished. */
export function holdsAddresses(t: Task): boolean {
  return taskHoldsAddresses(t)
}
