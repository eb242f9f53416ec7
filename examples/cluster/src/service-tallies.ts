// `ServiceStatus` counts per service, kept at commit: `docker service ls` asks `?status=true`, and counting
// walked every task of each service at each request, through the store's per-service index, which the store
// drops after a burst of writes nobody read it by (the scheduler assigning 150,000 tasks), so under a create
// or an update each `service ls` first rebuilt that index over every task of the swarm on the manager's event
// loop. The counts are the scheduler's rule (status-tally.ts), summed from each commit's events through a
// synchronous tap (store-tap.ts); a restored snapshot arrives as events too.

import { type StatusTally, taskTally, taskTallyKey } from '@swarmkit/scheduler'
import type { ClusterStore, Task } from '@swarmkit/store'
import { tapStore } from './store-tap.js'

export interface ServiceTallies {
  /** The tallies of `serviceId`'s tasks per job iteration (empty when it has none). */
  of(serviceId: string): ReadonlyMap<number, StatusTally>
}

const NONE: ReadonlyMap<number, StatusTally> = new Map()

function tallyStore() {
  const byService = new Map<string, Map<number, StatusTally>>()
  /** Tasks per service: a service whose last task went is forgotten. */
  const tasks = new Map<string, number>()
  const add = (t: Task, sign: 1 | -1) => {
    const n = (tasks.get(t.serviceId) ?? 0) + sign
    if (n === 0) {
      tasks.delete(t.serviceId)
      byService.delete(t.serviceId)
      return
    }
    tasks.set(t.serviceId, n)
    const part = taskTally(t)
    const key = taskTallyKey(t)
    let perIteration = byService.get(t.serviceId)
    if (!perIteration) byService.set(t.serviceId, (perIteration = new Map()))
    let sum = perIteration.get(key)
    if (!sum)
      perIteration.set(key, (sum = { running: 0, completed: 0, desiredRunning: 0, desiredComplete: 0 }))
    sum.running += sign * part.running
    sum.completed += sign * part.completed
    sum.desiredRunning += sign * part.desiredRunning
    sum.desiredComplete += sign * part.desiredComplete
  }
  return { byService, add }
}

/** Tallies of `store`'s tasks, kept until the store closes (then `onEnd`). */
export function serviceTallies(store: ClusterStore, onEnd: () => void = () => {}): ServiceTallies {
  const { byService, add } = tallyStore()
  // The tap first, then the count, in one synchronous run: no commit falls between them.
  tapStore(
    store,
    ['tasks'],
    (e) => {
      if (e.action === 'create') add(e.object, 1)
      else if (e.action === 'delete') add(e.object, -1)
      else {
        add(e.oldObject, -1)
        add(e.object, 1)
      }
    },
    onEnd,
  )
  store.view((tx) => {
    for (const t of tx.find('tasks')) add(t, 1)
  })
  return { of: (serviceId) => byService.get(serviceId) ?? NONE }
}
