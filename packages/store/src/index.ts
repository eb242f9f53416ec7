/**
 * @packageDocumentation
 * @swarmkit/store: Docker Swarm's cluster state.
 *
 * - The object model (nodes, services, tasks, networks, the cluster, secrets, configs) following Docker's
 *   swarm API field by field.
 * - `MemoryStore`: consistent views, atomic transactions with optimistic concurrency (`meta.version`,
 *   "update out of sequence"), unique names, referential checks, indexes, batches and watches.
 * - The store is a raft state machine (`apply`, `snapshot`, `restore`); with a `proposer` every transaction
 *   becomes one raft command applied in the same order on every manager.
 */
export type { StoreErrorCode } from './errors.js'
export { isStoreError, LOCKED_MESSAGE, SEQUENCE_MESSAGE, StoreError } from './errors.js'
export { generateId, isId } from './ids.js'
export type {
  ApplyResult,
  Batch,
  BatchResult,
  By,
  MemoryStoreOptions,
  NewObject,
  Proposer,
  ReadTx,
  Tx,
} from './memory-store.js'
export { MemoryStore, memoryStore } from './memory-store.js'
export type { RedactedSecret } from './redact.js'
export { redactSecret } from './redact.js'
export * from './types.js'
export type { StoreAction, StoreEvent, Watch, WatchOptions } from './watch.js'
export { STORE_ACTIONS } from './watch.js'
