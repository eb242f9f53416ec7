/**
 * The persistence contract between the raft driver and a log store. Fixed early so that memory and file
 * storage (and the store package's encrypted storage) can be built in parallel; additions must stay
 * backward compatible.
 */

/** Entry kinds. Storage treats them as opaque numbers; only the core interprets them. */
export const EntryType = {
  /** A user command, or the leader's empty no-op at the start of its term (data.length === 0). */
  Normal: 0,
  /** A membership change; the encoding of `data` belongs to the raft core. */
  Config: 1,
} as const
export type EntryType = (typeof EntryType)[keyof typeof EntryType]

/** One raft log entry: its place (`index`, `term`), kind, and the command or configuration change it carries. */
export interface Entry {
  readonly index: number
  readonly term: number
  readonly type: EntryType
  readonly data: Uint8Array
}

/** What a node must never forget: the current term, its vote in that term, and how far it knows commits go. */
export interface HardState {
  readonly term: number
  readonly vote: string | null
  readonly commit: number
}

/** Cluster membership as of some log index. */
export interface ConfState {
  readonly voters: readonly string[]
  readonly learners: readonly string[]
  /** Network addresses of members where known (id -> address), for real transports. */
  readonly addresses?: Readonly<Record<string, string>>
  /** IDs removed from the cluster; they never return. */
  readonly removed?: readonly string[]
}

/** Where a snapshot stands in the log (last included index and term) and the membership as of then. */
export interface SnapshotMeta {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number
  readonly term: number
  readonly conf: ConfState
}

/** A state machine snapshot and its place in the log. */
export interface Snapshot {
  readonly meta: SnapshotMeta
  readonly data: Uint8Array
}

/** Everything a node restarts from. `entries` are contiguous and follow `snapshot.meta.index` (or 0). */
export interface PersistedState {
  readonly hardState: HardState
  readonly snapshot: Snapshot | null
  readonly entries: readonly Entry[]
}

/**
 * One batch to make durable, in this order: snapshot, then entries, then hard state. `entries` may begin at
 * or below the last stored index: the stored suffix from `entries[0].index` on is replaced (a follower
 * truncating a conflicting tail). A snapshot newer than every stored entry discards the stored log.
 * Storage may read the update's buffers until its save resolves: they must not change meanwhile.
 */
export interface StorageUpdate {
  readonly hardState?: HardState
  readonly entries?: readonly Entry[]
  readonly snapshot?: Snapshot
}

/** Options of {@link LogStorage.save}. */
export interface SaveOptions {
  readonly signal?: AbortSignal
  /** The caller waits for nothing but this save: it may be written on the calling thread. Default false. */
  readonly inline?: boolean
}

/** The durable state a raft member keeps (hard state, log, latest snapshot); `MemoryLogStorage` and `FileLogStorage` implement it, and `logStorageCompliance` tests any implementation. */
export interface LogStorage {
  /** Reads back what was persisted (empty state for new storage). Called once per RaftNode.start(). */
  load(options?: { signal?: AbortSignal }): Promise<PersistedState>
  /**
   * Makes `update` durable; resolves only once it is (one sync may cover many queued updates). May reject with
   * a `RaftError` `NO_SPACE` when the disk is full and nothing of the update (nor of updates queued after it)
   * was kept: the storage must then take the same update again later. Any other rejection stops the node.
   * With `inline`, the caller has nothing else to do until the update is durable (a follower's write, which it
   * must finish before it answers): the storage may then write on the calling thread, blocking it for the
   * length of the write, instead of handing the write to a background thread and waking the caller after.
   */
  save(update: StorageUpdate, options?: SaveOptions): Promise<void>
  /** The latest snapshot, with its data, to send to a lagging follower. */
  snapshot(options?: { signal?: AbortSignal }): Promise<Snapshot | null>
  /** Drops entries with index <= `index`; only ever called at or below the latest snapshot's index. */
  compact(index: number, options?: { signal?: AbortSignal }): Promise<void>
  /** Flushes and releases the storage; a new LogStorage (or the same memory one) can be loaded again. */
  close(): Promise<void>
}
