// The `services` table: a service's mode, spec, rolling-update settings and update status.
import type { Labels, Meta, Nanoseconds, Timestamp } from './common.js'
import type { Endpoint, EndpointSpec } from './endpoint.js'
import type { TaskSpec } from './task-spec.js'

/** A service runs N replicas, one task per eligible node, or as a job. Narrow with `'replicated' in mode`. */
export type ServiceMode =
  | { replicated: { replicas: number } }
  | { global: Record<string, never> }
  | { replicatedJob: { maxConcurrent: number; totalCompletions: number } }
  | { globalJob: Record<string, never> }

/** What a rolling update can do when tasks fail. */
export const UPDATE_FAILURE_ACTIONS = ['pause', 'continue', 'rollback'] as const
/** `pause`, `continue` or `rollback` when an update fails. */
export type UpdateFailureAction = (typeof UPDATE_FAILURE_ACTIONS)[number]

/** The orders a rolling update can replace tasks in. */
export const UPDATE_ORDERS = ['stop-first', 'start-first'] as const
/** `stop-first` or `start-first`. */
export type UpdateOrder = (typeof UPDATE_ORDERS)[number]

/** Rolling update (and rollback) settings. */
export interface UpdateConfig {
  /** Tasks updated at once; 0 means all. Swarm's default 1. */
  parallelism: number
  delay?: Nanoseconds
  failureAction?: UpdateFailureAction
  /** How long to watch each updated task for failure; swarm's default 5 s. */
  monitor?: Nanoseconds
  /** Fraction (0..1) of tasks allowed to fail before the failure action. */
  maxFailureRatio?: number
  order?: UpdateOrder
}

/** The states of a service update or rollback. */
export const UPDATE_STATES = [
  'updating',
  'paused',
  'completed',
  'rollback_started',
  'rollback_paused',
  'rollback_completed',
] as const
/** Where a service update or rollback stands (Docker's `UpdateStatus.State`). */
export type UpdateState = (typeof UPDATE_STATES)[number]

/** The progress of a service's update or rollback (Docker's `UpdateStatus`). */
export interface UpdateStatus {
  state: UpdateState
  startedAt?: Timestamp
  completedAt?: Timestamp
  message: string
}

/** What an operator asks a service to be (Docker's `ServiceSpec`). */
export interface ServiceSpec {
  name: string
  labels: Labels
  taskTemplate: TaskSpec
  mode: ServiceMode
  updateConfig?: UpdateConfig
  rollbackConfig?: UpdateConfig
  endpointSpec?: EndpointSpec
}

/** A service (Docker's `Service`): its spec, the previous spec, endpoint and update status. */
export interface Service {
  id: string
  meta: Meta
  spec: ServiceSpec
  /** Bumped (to the store version of the change) whenever the spec changes; tasks record the one they came from. */
  specVersion: { index: number }
  /** The spec before the last change, for rollback. */
  previousSpec?: ServiceSpec
  previousSpecVersion?: { index: number }
  endpoint?: Endpoint
  updateStatus?: UpdateStatus
  /**
   * Job progress (job modes only): the iteration is bumped by every update of the service, and the job runs
   * again (its tasks of earlier iterations are removed); `lastExecution` is when the iteration began.
   */
  jobStatus?: { jobIteration: { index: number }; lastExecution?: Timestamp }
  /** Set while the service's tasks are being shut down before the service itself is removed. */
  pendingDelete?: boolean
}
