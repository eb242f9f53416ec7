// The store's public contract apart from its implementation: how objects are selected, the read and write
// transaction interfaces, batches, the proposer a replicated store commits through, and the store's options.
import type { StoreErrorCode } from './errors.js'
import type { SpecLimits } from './service-spec.js'
import type {
  DesiredTaskState,
  Meta,
  NodeAvailability,
  NodeRole,
  Service,
  Table,
  TableObjects,
  TaskState,
} from './types.js'

/** Which objects `find` returns; one selector at a time (narrow further with the filter argument). */
export type By =
  | { all: true }
  | { id: string }
  | { idPrefix: string }
  /** Case-insensitive exact name (nodes: `spec.name` or `description.hostname`). */
  | { name: string }
  | { namePrefix: string }
  | { serviceId: string }
  | { nodeId: string }
  /** Tasks in a slot: replicated services by slot number, global services by node (`slot: 0, nodeId`). */
  | { slot: { serviceId: string; slot: number; nodeId?: string } }
  | { desiredState: DesiredTaskState }
  | { taskState: TaskState }
  | { role: NodeRole }
  | { availability: NodeAvailability }
  | { referencedNetworkId: string }
  | { referencedSecretId: string }
  | { referencedConfigId: string }
  /** Services, live tasks and nodes holding an address on a network (the address without its prefix length). */
  | { heldAddress: { networkId: string; address: string } }

/** An object to create: `meta` is filled in by the store (and a service's `specVersion` when absent). */
export type NewObject<O> = O extends Service
  ? Omit<O, 'meta' | 'specVersion'> & { meta?: Meta; specVersion?: { index: number } }
  : Omit<O, 'meta'> & { meta?: Meta }

/** A consistent read-only view of the store. Objects are deep-frozen; build changed copies to write. */
export interface ReadTx {
  /** The store version this view reads at. */
  readonly version: number
  get<T extends Table>(table: T, id: string): TableObjects[T] | undefined
  /** Objects selected by `by` (all when absent) and kept by `filter`, in no particular order. */
  find<T extends Table>(table: T, by?: By, filter?: (object: TableObjects[T]) => boolean): TableObjects[T][]
  /**
   * Resolves a user's reference as Docker does: full ID, then exact name (case-insensitive), then unique ID
   * prefix. Throws `StoreError` `NOT_FOUND` ("service web not found") or `INVALID_ARGUMENT` when ambiguous.
   */
  lookup<T extends Table>(table: T, ref: string): TableObjects[T]
}

/** A write transaction: reads see its own writes; each write is checked at once and throws if invalid. */
export interface Tx extends ReadTx {
  /** Creates an object (`EXISTS`, `NAME_CONFLICT`, `INVALID_ARGUMENT`); returns it as it will be stored. */
  create<T extends Table>(table: T, object: NewObject<TableObjects[T]>): TableObjects[T]
  /**
   * Replaces an object wholesale. `object.meta.version` must be the version this transaction sees (the stored
   * one, or, once the transaction wrote the object, the version it set: writes set `meta.version` to the
   * version the transaction commits at, as swarm does), else `StoreError` `SEQUENCE` ("update out of
   * sequence"). A task's `status.state` may only move forward.
   */
  update<T extends Table>(table: T, object: TableObjects[T]): TableObjects[T]
  /** Removes an object (`NOT_FOUND`; `IN_USE` for a network, secret or config still referenced). */
  delete(table: Table, id: string): void
}

/** Groups many small transactions into few commits (each up to `maxChangesPerCommit` changes). */
export interface Batch {
  /**
   * Runs `fn` in the batch's open transaction. If `fn` throws, only its own changes are rolled back and the
   * returned promise rejects; the batch goes on. Resolves once `fn`'s changes are staged (or committed,
   * when they filled the commit).
   */
  update<R>(fn: (tx: Tx) => R): Promise<R>
}

/** What a finished `batch()` committed: the last version, the changes, and the number of commits. */
export interface BatchResult {
  /** Store version after the last commit of the batch. */
  version: number
  /** Object changes committed. */
  changes: number
  /** Commits made. */
  commits: number
  /** Errors of callbacks that threw (their changes were rolled back). */
  errors: unknown[]
}

/**
 * Commits a transaction through consensus: resolves once the command is committed (its result, typically
 * the value the state machine's `apply` returned), rejects if it cannot be. `RaftNode.propose` fits.
 */
export type Proposer = (command: Uint8Array, options?: { signal?: AbortSignal }) => Promise<unknown>

/** The outcome of applying one command; every member computes the same one. */
export type ApplyResult =
  | { ok: true; version: number; changes: number }
  | { ok: false; version: number; code: StoreErrorCode; message: string }

/**
 * How a {@link ClusterStore} is built: local (no options) or replicated through a raft `proposer`, with
 * clock, randomness and limits.
 */
export interface ClusterStoreOptions {
  /**
   * Replicate through this proposer: each transaction becomes one command, applied (through `apply`) on every
   * member in log order. Without it, the store commits locally and numbers versions 1, 2, 3, ….
   */
  proposer?: Proposer
  /** Clock for `meta.createdAt`/`updatedAt` (ms since epoch); the proposer's time travels in the command. */
  clock?: () => number
  /** Random bytes (for command ids); default `node:crypto`. */
  random?: (n: number) => Uint8Array
  /** Recent events kept for watches that resume from a version (default 10,000). */
  historySize?: number
  /** Default queue bound of a watch (default 10,000 events). */
  watchQueueSize?: number
  /** Changes per batch commit (default 200, as swarm). */
  maxChangesPerCommit?: number
  /** Largest command accepted (default 1.5 MiB, swarm's proposal limit). */
  maxCommandBytes?: number
  /**
   * What one service spec may ask for (see {@link SpecLimits}); checked in every transaction that writes a
   * service, so that no spec that would exhaust a manager reaches the log. Default {@link DEFAULT_SPEC_LIMITS}.
   */
  limits?: Partial<SpecLimits>
  /**
   * Called when a replicated transaction has committed: ms from `update()` to its application here (waiting
   * for earlier writes included) and its number of changes. For metrics; it must not throw.
   */
  onCommit?: (info: { ms: number; changes: number }) => void
}
