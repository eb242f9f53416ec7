// One task on a worker, driven through its executor's controller as swarmkit's `exec.Do` drives it:
// assigned -> accepted -> preparing (prepare) -> [ready] -> starting (start) -> running (wait) ->
// complete | failed, or shutdown once the managers want it stopped; a failed prepare rejects the task.
// Every state goes to `report`; the runner never runs two steps of one task at once.

import { type TaskState, taskStateRank } from '@swarmkit/store'
import type { Assignment, TaskStatusUpdate } from './dispatcher.js'
import { type Controller, exitErrorText, isExecutorError, type TaskExit } from './executor.js'

const RANK_SHUTDOWN = taskStateRank('shutdown')
const RANK_RUNNING = taskStateRank('running')
const RANK_STARTING = taskStateRank('starting')
/** Retries of a failed stop (the engine away): from this, doubling, up to the maximum. */
const RETRY_FIRST_MS = 500
const RETRY_MAX_MS = 10_000

export function isFinal(state: TaskState): boolean {
  return taskStateRank(state) > RANK_RUNNING
}

export class TaskRunner {
  readonly controller: Controller
  /** The state last reported (or found in the store). */
  state: TaskState
  #assignment: Assignment
  #driving: Promise<void> | undefined
  #again = false
  /** Aborts a step waiting on the task (wait, start) when the desired state changes. */
  #step = new AbortController()
  #closed = false
  /** A finished task's leftovers were stopped (a task failed while the engine was away may still run). */
  #stopped = false
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #retryMs = RETRY_FIRST_MS
  #endpointKey = ''
  readonly #report: (u: TaskStatusUpdate) => void
  readonly #log: (line: string) => void

  constructor(controller: Controller, report: (u: TaskStatusUpdate) => void, log: (line: string) => void) {
    this.controller = controller
    this.#assignment = controller.task
    this.state = controller.task.state
    this.#report = report
    this.#log = log
  }

  get assignment(): Assignment {
    return this.#assignment
  }

  /** Takes the newest assignment and acts on it. */
  update(a: Assignment): void {
    const before = this.#assignment.desiredState
    this.#assignment = a
    this.controller.update(a)
    if (taskStateRank(a.state) > taskStateRank(this.state)) this.state = a.state
    if (a.desiredState !== before) {
      this.#step.abort(new Error('desired state changed'))
      this.#step = new AbortController()
    }
    this.kick()
  }

  /** Runs the task's next steps (again, if it is running them now). */
  kick(): void {
    if (this.#closed) return
    if (this.#driving) {
      this.#again = true
      return
    }
    this.#driving = this.#drive()
      .catch((err) => this.#log(`task ${this.#assignment.taskId}: ${(err as Error).message}`))
      .finally(() => {
        this.#driving = undefined
        if (this.#again) {
          this.#again = false
          this.kick()
        }
      })
  }

  /** Stops driving (the agent stops); waits for the step under way. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    this.#step.abort(new Error('agent stopping'))
    await this.#driving
    this.controller.close()
  }

  /** Shuts the task down if needed and removes what it left. */
  async remove(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    this.#step.abort(new Error('task removed'))
    await this.#driving
    if (!isFinal(this.state)) await this.controller.shutdown().catch(() => {})
    await this.controller.remove()
    this.controller.close()
  }

  #set(state: TaskState, message: string, extra: Partial<TaskStatusUpdate> = {}): void {
    this.state = state
    this.#report({ taskId: this.#assignment.taskId, state, message, ...extra })
  }

  async #drive(): Promise<void> {
    while (!this.#closed) {
      const a = this.#assignment
      const signal = this.#step.signal
      if (isFinal(this.state)) {
        if (!this.#stopped && taskStateRank(a.desiredState) >= RANK_SHUTDOWN) await this.#stopLeftovers()
        return
      }
      if (taskStateRank(a.desiredState) >= RANK_SHUTDOWN) {
        if (taskStateRank(this.state) >= RANK_STARTING || (await this.#exists())) await this.#stopLeftovers()
        else this.#stopped = true
        if (!this.#closed) this.#set('shutdown', 'shutdown')
        return
      }
      switch (this.state) {
        case 'new':
        case 'pending':
        case 'assigned':
          this.#set('accepted', 'accepted')
          continue
        case 'accepted':
          this.#set('preparing', 'preparing')
          continue
        case 'preparing':
          try {
            await this.controller.prepare({ signal })
          } catch (err) {
            if (signal.aborted) continue
            this.#set('rejected', 'preparing', { err: errorText(err) })
            return
          }
          if (a.desiredState === 'ready' || this.#assignment.desiredState === 'ready') {
            this.#set('ready', 'prepared')
            return
          }
          this.#set('starting', 'starting')
          continue
        case 'ready':
          // (desired `complete`: a job's task, run until it exits)
          if (this.#assignment.desiredState !== 'running' && this.#assignment.desiredState !== 'complete')
            return
          this.#set('starting', 'starting')
          continue
        case 'starting':
          try {
            await this.controller.start({ signal })
          } catch (err) {
            if (signal.aborted) continue
            this.#set('failed', 'starting', { err: errorText(err) })
            return
          }
          await this.#running()
          continue
        case 'running': {
          // Taken over from an earlier agent, or running: follow the task until it ends.
          const seen = await this.controller.inspect().catch(() => undefined)
          if (seen?.state === 'running') this.#reportEndpoint(seen.endpoint)
          let exit: TaskExit
          try {
            if (seen?.state === 'exited')
              exit = { exitCode: seen.exitCode ?? 0, ...(seen.error ? { error: seen.error } : {}) }
            else exit = await this.controller.wait({ signal })
          } catch (err) {
            if (signal.aborted) continue
            this.#set('failed', 'started', { err: errorText(err) })
            return
          }
          if (taskStateRank(this.#assignment.desiredState) >= RANK_SHUTDOWN) continue
          const status = { containerId: '', pid: 0, exitCode: exit.exitCode }
          if (exit.exitCode === 0 && !exit.error)
            this.#set('complete', 'finished', { containerStatus: status })
          else this.#set('failed', 'started', { err: exitErrorText(exit), containerStatus: status })
          return
        }
        default:
          return
      }
    }
  }

  /**
   * Stops what the task runs. If that fails (its engine is away, and the task, reported failed, may still
   * run there), tries again later, with backoff, until it worked or the task is removed.
   */
  async #stopLeftovers(): Promise<void> {
    try {
      await this.controller.shutdown()
      this.#stopped = true
      this.#retryMs = RETRY_FIRST_MS
    } catch (err) {
      if (this.#retryMs === RETRY_FIRST_MS)
        this.#log(`task ${this.#assignment.taskId}: shutdown: ${(err as Error).message}; retrying`)
      if (this.#closed) return
      clearTimeout(this.#retryTimer)
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined
        this.kick()
      }, this.#retryMs)
      this.#retryTimer.unref?.()
      this.#retryMs = Math.min(2 * this.#retryMs, RETRY_MAX_MS)
    }
  }

  /** Reports `running` with the task's endpoint (for the mesh) and host-mode ports. */
  async #running(): Promise<void> {
    const seen = await this.controller.inspect().catch(() => undefined)
    const a = this.#assignment
    this.#endpointKey = seen?.endpoint ? `${seen.endpoint.address}:${seen.endpoint.port}` : ''
    this.#set('running', 'started', {
      ...(a.hostPorts?.length ? { ports: a.hostPorts } : {}),
      ...(seen?.endpoint ? { endpoint: seen.endpoint } : {}),
    })
  }

  /** The same state again with a new endpoint: the dispatcher records where the task answers now. */
  #reportEndpoint(endpoint: { address: string; port: number } | undefined): void {
    const key = endpoint ? `${endpoint.address}:${endpoint.port}` : ''
    if (!endpoint || key === this.#endpointKey) return
    this.#endpointKey = key
    this.#set('running', 'started', { endpoint })
  }

  async #exists(): Promise<boolean> {
    const seen = await this.controller.inspect().catch(() => undefined)
    return seen !== undefined && seen.state !== 'absent'
  }
}

function errorText(err: unknown): string {
  if (isExecutorError(err)) return err.message
  return err instanceof Error ? err.message : String(err)
}
