// The boundary between a worker's agent and whatever runs its tasks (swarmkit's agent/exec): the agent
// drives one controller per task through prepare, start, wait and shutdown, and reports each step to the
// dispatcher; the executor does the work (in-process for the simulated executor, containers on a Docker
// Engine for the engine executor). Everything here is plain data or small interfaces, so that people
// building their own node can plug in another executor.

import type { EventEmitter } from 'eventemitter3'
import type { Assignment } from './dispatcher.js'
import type { NetworkViewUpdate } from './network-view.js'

/** One line a task wrote. */
export interface LogLine {
  /** RFC 3339 with nanoseconds, as Docker writes log timestamps. */
  readonly timestamp: string
  readonly message: string
  /** The stream the line came from. Default `stdout`. */
  readonly stream?: 'stdout' | 'stderr'
}

/** A plugin the executor offers (`docker info` and `docker node inspect` list them). */
export interface PluginDescription {
  readonly type: string
  readonly name: string
}

/** What an executor says about the node it runs tasks on (swarmkit's `NodeDescription`). */
export interface NodeDescription {
  readonly hostname: string
  readonly platform: { readonly os: string; readonly architecture: string }
  readonly resources: {
    readonly nanoCPUs: number
    readonly memoryBytes: number
    /** `--node-generic-resource` style resources, e.g. GPUs: named (`gpu=UUID1`) or discrete (`ssd=2`). */
    readonly genericResources?: readonly (
      | { readonly namedResourceSpec: { readonly kind: string; readonly value: string } }
      | { readonly discreteResourceSpec: { readonly kind: string; readonly value: number } }
    )[]
  }
  readonly engineVersion: string
  readonly plugins: readonly PluginDescription[]
}

/** What the executor observes of a task, whatever the agent last reported. */
export interface ObservedTask {
  /** `absent`: nothing exists for it; `created`: prepared, not started; `exited`: ran and stopped. */
  readonly state: 'absent' | 'created' | 'running' | 'exited'
  readonly exitCode?: number
  /** Whether the task passes its healthcheck (absent when it has none). */
  readonly health?: 'starting' | 'healthy' | 'unhealthy'
  /** Where the running task answers for the routing mesh (an address of this node). */
  readonly endpoint?: { readonly address: string; readonly port: number }
  /** The task's error, when it exited with one (e.g. an engine's OOM or start error). */
  readonly error?: string
}

/** How a task ended: its exit code, and an error when it did not run to a clean end. */
export interface TaskExit {
  readonly exitCode: number
  readonly error?: string
}

/** The events a controller emits while its task runs. */
export interface ControllerEvents {
  /** The task's process ended. */
  'task:exit': (exit: TaskExit) => void
  /** The task's health changed (only for tasks with a healthcheck). */
  'task:health': (health: 'starting' | 'healthy' | 'unhealthy') => void
}

/** Options every controller call takes. */
export interface ControllerCallOptions {
  readonly signal?: AbortSignal
}

/**
 * Drives one task (swarmkit's `exec.Controller`). Every method is idempotent: the agent may call it
 * again after a failure or an agent restart. Failures reject with an {@link ExecutorError} whose message
 * is what `docker service ps` shows in its ERROR column.
 */
export interface Controller extends EventEmitter<ControllerEvents> {
  /** The task as last assigned (its desired state changes while it runs). */
  readonly task: Assignment
  /** Hands the controller the task's newest assignment. */
  update(task: Assignment): void
  /** What the executor sees of the task now (used to adopt a task after an agent restart). */
  inspect(options?: ControllerCallOptions): Promise<ObservedTask>
  /** Gets everything ready to start: pulls the image, creates the container, its secrets and network. */
  prepare(options?: ControllerCallOptions): Promise<void>
  /**
   * Starts the task. With a healthcheck, resolves once the task is healthy and rejects with code
   * `UNHEALTHY` if it turns unhealthy first (the task is only `running` once healthy, as in swarm).
   */
  start(options?: ControllerCallOptions): Promise<void>
  /**
   * Resolves when the task exits (with its exit code) and rejects with code `UNHEALTHY` when its health
   * check fails. Rejects with `ENGINE_UNAVAILABLE` if the engine goes away.
   */
  wait(options?: ControllerCallOptions): Promise<TaskExit>
  /** Stops the task gracefully: its stop signal, then a kill after its stop grace period. */
  shutdown(options?: ControllerCallOptions): Promise<void>
  /** Stops the task at once. */
  terminate(options?: ControllerCallOptions): Promise<void>
  /** Removes all the task left behind (container, secrets, sandbox). */
  remove(options?: ControllerCallOptions): Promise<void>
  /** The lines the task wrote, oldest first, at most `tail` of the last ones. */
  logs(options?: ControllerCallOptions & { tail?: number }): Promise<LogLine[]>
  /** Releases the controller's resources (not the task's: see `remove`). */
  close(): void
}

/**
 * Runs a node's tasks (swarmkit's `exec.Executor`). The agent asks it for one {@link Controller} per
 * task; {@link Executor.adoptable} names the tasks it still runs from before an agent restart.
 */
export interface Executor {
  /** `simulated`, `docker`, or another implementation's name (`docker info` shows it). */
  readonly kind: string
  /** What this node offers: CPUs, memory, engine version, plugins, generic resources. */
  describe(options?: ControllerCallOptions): Promise<NodeDescription>
  /** Tells the executor which node it runs for (its ID and address), before the agent starts tasks. */
  configure?(
    node: { readonly id: string; readonly addr: string },
    options?: ControllerCallOptions,
  ): Promise<void>
  /**
   * The changes to this node's network view the managers sent (overlay networks, the tasks and services on
   * them): an executor that gives tasks their overlay networks keeps its data plane in step with it.
   */
  networkView?(update: NetworkViewUpdate): void
  /** A controller for `task` (the same task ID always reaches the same task). */
  controller(task: Assignment): Controller
  /** IDs of the tasks of `nodeId` the executor holds (e.g. containers left by an earlier agent). */
  adoptable(nodeId: string, options?: ControllerCallOptions): Promise<string[]>
  /** Removes what a task left behind when no controller exists for it any more (an orphan). */
  removeOrphan(taskId: string, options?: ControllerCallOptions): Promise<void>
  /** Stops following tasks and frees the executor's own resources (tasks keep running, as containers do). */
  close(): Promise<void>
}

export type ExecutorErrorCode =
  /** The image does not exist here and could not be pulled. */
  | 'IMAGE_NOT_FOUND'
  /** The engine does not answer (down, or gone while the task ran). */
  | 'ENGINE_UNAVAILABLE'
  /** The engine refused to create the task (bad mount source, bad option). */
  | 'CREATE_FAILED'
  /** The engine refused to start the task. */
  | 'START_FAILED'
  /** The task's healthcheck failed. */
  | 'UNHEALTHY'
  /** The task is gone (its container was removed behind the agent's back). */
  | 'NOT_FOUND'
  /** The task was rejected before it ran (e.g. a secret it needs did not arrive). */
  | 'REJECTED'

/** A failure of an executor; `message` is what `docker service ps` shows as the task's error. */
export class ExecutorError extends Error {
  override readonly name = 'ExecutorError'
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export function isExecutorError(err: unknown): err is ExecutorError {
  return (
    err instanceof Error && err.name === 'ExecutorError' && typeof (err as ExecutorError).code === 'string'
  )
}

/** Swarm's text for a task that exited with a non-zero code (`task: non-zero exit (1)`). */
export function exitErrorText(exit: TaskExit): string {
  return `task: non-zero exit (${exit.exitCode})${exit.error ? `: ${exit.error}` : ''}`
}

/** Swarm's text for a task whose healthcheck failed. */
export const UNHEALTHY_TEXT = 'unhealthy container'
