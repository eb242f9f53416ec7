import type { Table, TableObjects } from './types.js'

/** What happened to an object. */
export const STORE_ACTIONS = ['create', 'update', 'delete'] as const
/** What happened to an object: `create`, `update` or `delete`. */
export type StoreAction = (typeof STORE_ACTIONS)[number]

/**
 * A committed change. `version` is the store version (raft index) of the commit; all changes of one
 * transaction share it and arrive together, in the order the transaction made them. An update carries the
 * object before the change as `oldObject`; a delete carries the removed object.
 */
export type StoreEvent<T extends Table = Table> = {
  [K in T]:
    | { action: 'create'; table: K; version: number; object: TableObjects[K] }
    | { action: 'update'; table: K; version: number; object: TableObjects[K]; oldObject: TableObjects[K] }
    | { action: 'delete'; table: K; version: number; object: TableObjects[K] }
}[T]

/** What a watch selects (tables, actions, a filter), where it resumes (`fromVersion`), and its queue bound. */
export interface WatchOptions<T extends Table = Table> {
  /** Only these tables (default: all); the events are typed accordingly. */
  table?: T | readonly T[]
  /** Only these actions (default: all). */
  action?: StoreAction | readonly StoreAction[]
  /** Only events for which this returns true. It runs synchronously at commit; keep it cheap. Throwing drops the watch. */
  filter?: (event: StoreEvent<T>) => boolean
  /**
   * Resume: deliver every change with a version above this one first (from the store's bounded history),
   * then live changes. Throws `StoreError` `VERSION_COMPACTED` if the history no longer reaches back that far.
   */
  fromVersion?: number
  /** Most undelivered events held before the watch is dropped with `WATCH_DROPPED` (default 10,000). */
  queueSize?: number
  /** Closes the watch when aborted. */
  signal?: AbortSignal
}

/**
 * A subscription to committed changes: an async iterator of events. It never slows writers: events are queued
 * at commit, and a watch whose queue overflows is dropped; its next read then rejects with `StoreError`
 * `WATCH_DROPPED` (which names `lastVersion`, the version to resume from with a new watch).
 */
export interface Watch<T extends Table = Table> extends AsyncIterableIterator<StoreEvent<T>> {
  /** Stops the watch; pending and later reads end (`done: true`). */
  close(): void
  readonly closed: boolean
  /** Version of the last event handed out (or the version the watch started from). */
  readonly lastVersion: number
  /** Number of events queued and not yet read. */
  readonly pending: number
  /**
   * Takes the next queued event without waiting: `undefined` when none is queued. A consumer that handles
   * events synchronously can drain a burst (a commit of many changes) this way, without a promise per event.
   * An error or the end of the watch is reported by `next()`.
   */
  poll(): StoreEvent<T> | undefined
}
