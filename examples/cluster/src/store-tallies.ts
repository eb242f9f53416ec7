// Counts of a store's contents that no index gives: objects per table and tasks per state, for the metrics
// (`swarm_store_objects`, `swarm_tasks`, `swarm_scheduler_pending_tasks`). Counting them at each scrape walked
// every task of the swarm (about 100 ms at 150,000 tasks, on the manager's event loop, at every scrape of
// every manager); they are counted once and then kept at commit instead, from each commit's events (a
// synchronous tap: a watch whose filter counts and keeps nothing, so it can never fall behind and be dropped).
// A restored snapshot arrives as events too.

import type { ClusterStore, StoreEvent, Table, TaskState } from '@swarmkit/store'

export interface StoreTallies {
  /** Objects in `table` now. */
  objects(table: Table): number
  /** Tasks per current state (`status.state`), states with none left out. */
  tasksByState(): ReadonlyMap<TaskState, number>
  /** Stops counting (the store's close stops it too). */
  close(): void
}

const TABLES: readonly Table[] = ['nodes', 'services', 'tasks', 'networks', 'clusters', 'secrets', 'configs']

export function storeTallies(store: ClusterStore): StoreTallies {
  const objects = new Map<Table, number>()
  const states = new Map<TaskState, number>()
  const add = <K>(m: Map<K, number>, k: K, n: number) => {
    const v = (m.get(k) ?? 0) + n
    if (v === 0) m.delete(k)
    else m.set(k, v)
  }
  const count = (e: StoreEvent): false => {
    if (e.action === 'create') {
      add(objects, e.table, 1)
      if (e.table === 'tasks') add(states, e.object.status.state, 1)
    } else if (e.action === 'delete') {
      add(objects, e.table, -1)
      if (e.table === 'tasks') add(states, e.object.status.state, -1)
    } else if (e.table === 'tasks' && e.object.status.state !== e.oldObject.status.state) {
      add(states, e.oldObject.status.state, -1)
      add(states, e.object.status.state, 1)
    }
    return false
  }
  // The tap first, then the count, in one synchronous run: no commit falls between them.
  const watch = store.watch({ filter: count })
  store.view((tx) => {
    for (const t of TABLES) objects.set(t, tx.find(t).length)
    for (const t of tx.find('tasks')) add(states, t.status.state, 1)
  })
  return {
    objects: (table) => objects.get(table) ?? 0,
    tasksByState: () => states,
    close: () => watch.close(),
  }
}
