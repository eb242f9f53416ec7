// The `tasks` table: task states in swarm's order, a task's status, and its network attachments.
import { typeError } from '../internal/check.js'
import type { Driver, GenericResource, Labels, Meta, Timestamp } from './common.js'
import type { Endpoint, PortConfig } from './endpoint.js'
import type { TaskSpec } from './task-spec.js'

/** Task states in swarm's order; a task's observed state only ever moves forward in this list. */
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const
/** A task's state, one of {@link TASK_STATES} in order. */
export type TaskState = (typeof TASK_STATES)[number]

const taskStateRanks: Record<TaskState, number> = Object.fromEntries(
  TASK_STATES.map((s, i) => [s, i]),
) as Record<TaskState, number>

/** The position of `state` in {@link TASK_STATES}; compare ranks to order states. */
export function taskStateRank(state: TaskState): number {
  const rank = taskStateRanks[state]
  if (rank === undefined) throw typeError('state', `be a task state (not ${String(state)})`)
  return rank
}

/**
 * States a task may be asked to reach: `ready` (prepare but do not start), `running`, `complete` (a job's
 * task: run it until it exits, and do not restart it once it completed), `shutdown`, `remove`.
 */
export const DESIRED_TASK_STATES = ['ready', 'running', 'complete', 'shutdown', 'remove'] as const
/** One of {@link DESIRED_TASK_STATES}. */
export type DesiredTaskState = (typeof DESIRED_TASK_STATES)[number]

/** The container behind a task: its ID, PID and exit code (Docker's `ContainerStatus`). */
export interface ContainerStatus {
  containerId: string
  pid: number
  exitCode: number
}

/** A task's observed state, when it was reached, and why (Docker's `TaskStatus`). */
export interface TaskStatus {
  /** When the state last changed. */
  timestamp: Timestamp
  state: TaskState
  /** Human-readable progress, e.g. `scheduler assigned task to node`. */
  message: string
  /** Why the task failed or cannot be scheduled, e.g. `no suitable node (…)`. */
  err?: string
  containerStatus?: ContainerStatus
  /** Host-mode ports actually published by this task. */
  portStatus?: { ports: PortConfig[] }
}

/** A network attachment with the addresses allocated to it (CIDR form, e.g. `10.0.1.5/24`). */
export interface NetworkAttachment {
  networkId: string
  addresses: string[]
  aliases?: string[]
  driverAttachmentOpts?: Record<string, string>
}

/** One slot's (or, for global services, one node's) instance of a service (Docker's `Task`). */
export interface Task {
  id: string
  meta: Meta
  /** A copy of the service's task template at creation. */
  spec: TaskSpec
  /** The service spec version the task was created from (`_up-to-date` compares it). */
  specVersion?: { index: number }
  serviceId: string
  /** 1..N for replicated services; 0 for global services (which key tasks by node). */
  slot: number
  /** Empty until the scheduler assigns the task. */
  nodeId: string
  labels?: Labels
  /** The service's name and labels at creation, for naming (`web.3.<taskId>`). */
  serviceAnnotations: { name: string; labels: Labels }
  status: TaskStatus
  desiredState: DesiredTaskState
  /** The networks the task is attached to, with its addresses (Docker's `NetworksAttachments`). */
  networks: NetworkAttachment[]
  endpoint?: Endpoint
  logDriver?: Driver
  assignedGenericResources?: GenericResource[]
  /** The job iteration (`Service.jobStatus.jobIteration`) a job's task belongs to; absent for services. */
  jobIteration?: { index: number }
}
