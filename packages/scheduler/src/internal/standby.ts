// The checks of `activate()`, shared by the scheduler and the orchestrator (both can start in standby).
import { SchedulerError } from '../errors.js'
import { typeError } from './check.js'

/** Refuses an activation: a `writer` without `update`, a component that already acts, or a stopped one. */
export function checkActivate(
  component: 'scheduler' | 'orchestrator',
  state: { standby: boolean; stopped: boolean },
  writer: unknown,
): void {
  if (writer !== undefined && typeof (writer as { update?: unknown } | null)?.update !== 'function')
    throw typeError('writer', 'be a store with update')
  if (!state.standby)
    throw new SchedulerError('NOT_STANDBY', `the ${component} already acts: activate() is for standby`)
  if (state.stopped) throw new SchedulerError('STOPPED', `the ${component} was stopped`)
}
