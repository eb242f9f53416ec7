/**
 * @packageDocumentation
 * @swarmkit/scheduler: Docker Swarm's scheduling and orchestration. Placement constraints in swarm's syntax,
 * the filter pipeline in swarm's order with swarm's "no suitable node (…)" explanations, spread placement
 * with placement preferences, and a placement engine that places a batch of tasks in O(tasks · log nodes).
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
export type { Orchestrator, OrchestratorEvents, OrchestratorOptions } from './orchestrator.js'
export { createOrchestrator } from './orchestrator.js'
export type { Assignment, FilterName, PlacementResult, Placer, Unplaced } from './placement.js'
export { createPlacer, explainFailures, explainFilter, FILTERS } from './placement.js'
export type { Scheduler, SchedulerEvents, SchedulerOptions } from './scheduler.js'
export { createScheduler } from './scheduler.js'
export { createService, rollbackService, updateService } from './services.js'
export type { Logger, SchedulerStore } from './store.js'
export type { TaskOutcome, TestExecutor, TestExecutorOptions } from './test-executor.js'
export { createTestExecutor } from './test-executor.js'
