/**
 * @packageDocumentation
 * @swarmkit/raft — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/raft'
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
