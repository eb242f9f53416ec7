/**
 * Test tools for users of `@swarmkit/raft`: a linearizability checker (Wing & Gong / Lowe with
 * P-compositionality, as porcupine does) and a key-value model for it.
 */
export {
  type CheckOptions,
  type CheckOutcome,
  type CheckResult,
  checkLinearizability,
  type KvInput,
  type KvOutput,
  kvModel,
  type Model,
  type Operation,
} from './linearizability.js'
export { type LogStorageFactory, testLogStorage } from './log-storage.js'
export {
  type PowerCutReport,
  type PowerLossFileSystem,
  type PowerLossOptions,
  type PowerLossStats,
  powerLossFileSystem,
  type UnsyncedWrites,
} from './power-loss-fs.js'
