// A tap on a store's commits: a watch whose filter hands each change on as it commits and keeps none. Nothing
// queues, so a commit of any size cannot overflow it (the store drops a watch past its queue bound), and many
// readers can share one tap instead of each holding a watch of its own.

import type { ClusterStore, StoreEvent, Table } from '@swarmkit/store'

/**
 * Calls `onChange` for every change of `tables` as it commits, until the returned controller aborts. If the
 * store closes or drops the watch first, `onEnd` runs once (never after an abort).
 */
export function tapStore<T extends Table>(
  store: ClusterStore,
  tables: readonly T[],
  onChange: (event: StoreEvent<T>) => void,
  onEnd: () => void,
): AbortController {
  const tap = new AbortController()
  const watch = store.watch({
    table: [...tables],
    signal: tap.signal,
    filter: (e) => {
      onChange(e)
      return false
    },
  })
  void (async () => {
    try {
      for await (const _ of watch);
    } catch {
      // dropped or aborted: told apart below
    }
    if (!tap.signal.aborted) onEnd()
  })()
  return tap
}
