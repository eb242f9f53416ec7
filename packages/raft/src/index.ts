/**
 * @packageDocumentation
 * @swarmkit/raft — Raft consensus for swarmkit: the `LogStorage` contract, durable file storage
 * (`FileLogStorage`), and the `RaftError` class. See README.md.
 */
export const PACKAGE_NAME = '@swarmkit/raft'
export { isRaftError, RaftError, type RaftErrorCode } from './errors.js'
export {
  FileLogStorage,
  type FileLogStorageOptions,
  type FileLogStorageStats,
  type SealContext,
  type SealHook,
} from './file-storage.js'
export type {
  ConfState,
  Entry,
  HardState,
  LogStorage,
  PersistedState,
  Snapshot,
  SnapshotMeta,
  StorageUpdate,
} from './storage.js'
export { EntryType } from './storage.js'
