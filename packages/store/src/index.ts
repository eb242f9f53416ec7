/**
 * @packageDocumentation
 * @swarmkit/store: Docker Swarm's cluster state.
 *
 * - The object model (nodes, services, tasks, networks, the cluster, secrets, configs) following Docker's
 *   swarm API field by field.
 * - `ClusterStore` (formerly `MemoryStore`, still exported as a deprecated alias): consistent views, atomic
 *   transactions with optimistic concurrency (`meta.version`, "update out of sequence"), unique names,
 *   referential checks, indexes, batches and watches.
 * - The store is a raft state machine (`apply`, `snapshot`, `restore`); with a `proposer` every transaction
 *   becomes one raft command applied in the same order on every manager.
 * - Encryption at rest: `KeyManager` keeps a manager's data keys in a key file (plain, or wrapped under the
 *   unlock key with autolock) and gives the `seal`/`open` hooks of raft's FileLogStorage (XChaCha20-Poly1305).
 */
export { backupStateDir } from './backup.js'
export { ClusterStore, clusterStore, DEFAULT_MAX_COMMAND_BYTES } from './cluster-store.js'
export type { StoreErrorCode } from './errors.js'
export { isStoreError, LOCKED_MESSAGE, SEQUENCE_MESSAGE, StoreError } from './errors.js'
export { generateId, isId } from './ids.js'
export { addressKey, taskHoldsAddresses } from './internal/claims.js'
export type { SealContext, SealHook } from './internal/seal.js'
export { SEAL_OVERHEAD } from './internal/seal.js'
export { KeyManager, type KeyManagerOptions, type SealHooks } from './keys.js'
export { MemoryStore, type MemoryStoreOptions, memoryStore } from './memory-store.js'
export type { RedactedSecret } from './redact.js'
export { redactSecret } from './redact.js'
export type { SpecLimits } from './service-spec.js'
export { checkServiceSpec, DEFAULT_SPEC_LIMITS, specLimits } from './service-spec.js'
export type {
  ApplyResult,
  Batch,
  BatchResult,
  By,
  ClusterStoreOptions,
  NewObject,
  Proposer,
  ReadTx,
  Tx,
} from './store-types.js'
export * from './types.js'
export { formatUnlockKey, generateUnlockKey, parseUnlockKey } from './unlock-key.js'
export type { StoreAction, StoreEvent, Watch, WatchOptions } from './watch.js'
export { STORE_ACTIONS } from './watch.js'
