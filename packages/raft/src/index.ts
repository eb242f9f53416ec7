/**
 * @packageDocumentation
 * Raft consensus for swarmkit: a pure, deterministic core (`RaftCore`: tick / step / propose / ready /
 * advance), the `RaftNode` driver that owns timers, a Transport, a LogStorage and the user's StateMachine, and
 * `MemoryLogStorage` and the durable `FileLogStorage`. Linearizability checking and other test tools live in `@swarmkit/raft/testing`.
 */

export {
  type CoreOptions,
  RaftCore,
  type ReadyOptions,
  type StepDown,
  type UnheardVoter,
} from './core.js'
export { isRaftError, RaftError, type RaftErrorCode } from './errors.js'
export {
  type AsyncSealHook,
  FileLogStorage,
  type FileLogStorageOptions,
  type FileLogStorageStats,
  type SealContext,
  type SealHook,
} from './file-storage.js'
export { type FileSystem, nodeFileSystem } from './file-system.js'
export {
  decodeScoped,
  encodeScoped,
  proposeScoped,
  type ScopedProposerNode,
  ScopeRefused,
  scopedStateMachine,
} from './leadership-scope.js'
export { MemoryLogStorage } from './memory-storage.js'
export {
  type PeerSpec,
  type ProposeResult,
  type RaftLogger,
  RaftNode,
  type RaftNodeEvents,
  type RaftNodeOptions,
  type StateMachine,
  type StepDownInfo,
  type UnheardMember,
} from './node.js'
export type {
  ConfState,
  Entry,
  HardState,
  LogStorage,
  PersistedState,
  SaveOptions,
  Snapshot,
  SnapshotMeta,
  StorageUpdate,
} from './storage.js'
export { EntryType } from './storage.js'
export {
  type ForwardResult,
  type Message,
  MessageType,
  type ReadState,
  type Ready,
  type Role,
} from './types.js'
