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

/** Calls `onEvent` for each change of `options.table` until `signal` aborts or the store closes. */
export async function followStore<T extends Table>(
  store: ClusterStore,
  options: Pick<WatchOptions<T>, 'table' | 'action'>,
  onEvent: (event: StoreEvent<T>) => void,
  signal: AbortSignal,
  log?: (line: string) => void,
): Promise<void> {
  while (!signal.aborted && !store.closed) {
    try {
      for await (const e of store.watch<T>({ ...options, signal })) onEvent(e)
      return
    } catch (err) {
      if (!isStoreError(err) || err.code !== 'WATCH_DROPPED') {
        if (!signal.aborted && !store.closed) log?.(`store watch ended: ${(err as Error).message}`)
        return
      }
      log?.('store watch fell behind and was dropped: following again from now')
    }
  }
}
