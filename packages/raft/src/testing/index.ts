/**
 * @packageDocumentation
 * Test tools for users of `@swarmkit/raft`: a linearizability checker (Wing & Gong / Lowe with
 * P-compositionality, as porcupine does) and a key-value model for it, and the compliance suites of the roles a
 * user plugs in: `logStorageCompliance` (LogStorage), `stateMachineCompliance` (StateMachine) and
 * `proposerCompliance` (the propose-then-apply contract `@swarmkit/store` relies on). They need vitest.
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
export { type LogStorageFactory, logStorageCompliance, testLogStorage } from './log-storage.js'
export {
  type PowerCutReport,
  type PowerLossFileSystem,
  type PowerLossOptions,
  type PowerLossStats,
  powerLossFileSystem,
  type UnsyncedWrites,
} from './power-loss-fs.js'
export {
  type ProposerFixture,
  proposerCompliance,
  type StateMachineFactory,
  stateMachineCompliance,
} from './state-machine.js'
