// One task per replicated slot: a slot can end up with two live tasks (a leader that lost its leadership
// and acted on a stale view, a start-first update whose new leader lost the update's progress). As swarmkit's
// orchestrator does, keep one and shut the others down.
import type { Task } from '@swarmkit/store'
import { isDesiredUp, isFinished } from './task-state.js'

/**
 * The tasks of one slot to shut down so that one live task remains: the one to keep is of the service's current
 * spec version if any is, then running, then the newest. Empty when the slot holds one live task.
 */
export function slotDuplicates(tasks: readonly Task[], specVersion: number): Task[] {
  const live = tasks.filter((t) => isDesiredUp(t) && !isFinished(t))
  if (live.length < 2) return []
  const rank = (t: Task) => [
    (t.specVersion?.index ?? 0) === specVersion ? 1 : 0,
    t.status.state === 'running' ? 1 : 0,
    t.meta.createdAt,
  ]
  const better = (a: Task, b: Task) => {
    const ra = rank(a)
    const rb = rank(b)
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! > rb[i]!
    return a.id > b.id
  }
  let keep = live[0]!
  for (const t of live) if (better(t, keep)) keep = t
  return live.filter((t) => t !== keep)
}
