// The checks of `activate()`, shared by the scheduler and the orchestrator (both can start in standby).
import { SchedulerError } from '../errors.js'
import { typeError } from './check.js'

/**
 * Refuses an activation: a `writer` without `update`, a component that already acts or has not finished
 * going back to standby (its last pass could write through the new writer), or a stopped one.
 */
export function checkActivate(
  component: 'scheduler' | 'orchestrator',
  state: { standby: boolean; stopped: boolean; deactivating: boolean },
  writer: unknown,
): void {
  if (writer !== undefined && typeof (writer as { update?: unknown } | null)?.update !== 'function')
    throw typeError('writer', 'be a store with update')
  if (!state.standby)
    throw new SchedulerError('NOT_STANDBY', `the ${component} already acts: activate() is for standby`)
  if (state.deactivating)
    throw new SchedulerError(
      'NOT_STANDBY',
      `the ${component} is still going back to standby: activate() once deactivate() has resolved`,
    )
  if (state.stopped) throw new SchedulerError('STOPPED', `the ${component} was stopped`)
}

/** Refuses a return to standby: a component already in standby, or a stopped one. */
export function checkDeactivate(
  component: 'scheduler' | 'orchestrator',
  state: { standby: boolean; stopped: boolean },
): void {
  if (state.stopped) throw new SchedulerError('STOPPED', `the ${component} was stopped`)
  if (state.standby) throw new SchedulerError('STANDBY', `the ${component} is in standby already`)
}
