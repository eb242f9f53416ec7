/**
 * @packageDocumentation
 * Test helpers for `@swarmkit/raft`: the `LogStorage` compliance suite that every storage implementation runs.
 * Needs vitest (an optional peer dependency).
 */
export { type LogStorageFactory, testLogStorage } from './log-storage.js'
