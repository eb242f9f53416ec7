// Following a store's changes for as long as a manager runs. A watch that falls too far behind (a manager
// replaying a long raft log at start) is dropped by the store; an observer (events, metrics) then starts a new
// one from the current state rather than stop for good.

import {
  type ClusterStore,
  isStoreError,
  type StoreEvent,
  type Table,
  type WatchOptions,
} from '@swarmkit/store'

/**
 * Calls `onEvent` for each change of `options.table` until `signal` aborts or the store closes; an async
 * `onEvent` is awaited before the next change. After a dropped watch, `options.onResync` (if given) is
 * called once the new watch is in place, so that an observer that keeps state can read the changes it
 * missed from the store; with `resyncAtStart` also once the first watch is in place.
 */
export async function followStore<T extends Table>(
  store: ClusterStore,
  options: Pick<WatchOptions<T>, 'table' | 'action'> & {
    readonly onResync?: () => void | Promise<void>
    readonly resyncAtStart?: boolean
  },
  onEvent: (event: StoreEvent<T>) => unknown,
  signal: AbortSignal,
  log?: (line: string) => void,
): Promise<void> {
  const { onResync, resyncAtStart, ...watchOptions } = options
  let dropped = false
  while (!signal.aborted && !store.closed) {
    try {
      const watch = store.watch<T>({ ...watchOptions, signal })
      if (dropped || resyncAtStart) await onResync?.()
      for await (const e of watch) await onEvent(e)
      return
    } catch (err) {
      if (!isStoreError(err) || err.code !== 'WATCH_DROPPED') {
        if (!signal.aborted && !store.closed) log?.(`store watch ended: ${(err as Error).message}`)
        return
      }
      dropped = true
      log?.('store watch fell behind and was dropped: following again from now')
    }
  }
}
