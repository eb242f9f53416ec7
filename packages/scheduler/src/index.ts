/**
 * @packageDocumentation
 * @swarmkit/scheduler: Docker Swarm's scheduling and orchestration on `@swarmkit/store`.
 *
 * - Placement: constraints in swarm's syntax (`parseConstraints`, `validateConstraints`), the filter pipeline
 *   in swarm's order with swarm's "no suitable node (…)" explanations, spread ranking and placement
 *   preferences; `createPlacer()` places a batch of tasks in O(nodes + tasks · log nodes).
 * - `createScheduler()`: moves pending tasks to nodes, driven by store watches; never assigns a task twice.
 * - `createOrchestrator()`: replicated and global services, replicated and global jobs, the restart
 *   supervisor, rolling updates and rollbacks, node drain and failure, the constraint enforcer and the task
 *   reaper. Every pass is bounded (the rest waits for the next pass).
 * - `createService` / `updateService` / `rollbackService`: service changes as the API makes them.
 * - Tests: `manualClock()` and `createTestExecutor()` (a fake worker) make whole-cluster tests deterministic.
 */

export type { Clock, ManualClock } from './clock.js'
export { manualClock, systemClock } from './clock.js'
export type { Constraint } from './constraints.js'
export {
  CONSTRAINT_KEYS,
  ConstraintSet,
  ENGINE_LABEL_PREFIX,
  NODE_LABEL_PREFIX,
  nodeMatchesConstraints,
  parseConstraints,
  validateConstraints,
  validatePlacement,
} from './constraints.js'
export { DEFAULTS } from './defaults.js'
export type { SchedulerErrorCode } from './errors.js'
export { isSchedulerError, SchedulerError } from './errors.js'
export { isJob, jobIteration, nextJobStatus, serviceStatus } from './jobs.js'
export type { Orchestrator, OrchestratorEvents, OrchestratorOptions } from './orchestrator.js'
export { createOrchestrator } from './orchestrator.js'
export type { Assignment, FilterName, PlacementResult, Placer, PlacerOptions, Unplaced } from './placement.js'
export { createPlacer, explainFailures, explainFilter, FILTERS } from './placement.js'
export type { Scheduler, SchedulerEvents, SchedulerOptions } from './scheduler.js'
export { createScheduler } from './scheduler.js'
export { createService, rollbackService, serviceUpdate, updateService } from './services.js'
export { type StatusTally, statusFromTallies, taskTally, taskTallyKey } from './status-tally.js'
export type { Logger, SchedulerStore } from './store.js'
export type { TaskOutcome, TestExecutor, TestExecutorOptions } from './test-executor.js'
export { createTestExecutor } from './test-executor.js'
