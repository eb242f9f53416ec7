// The simulated executor: a task "runs" inside the node process. Preparing and starting each take one
// step; a running task writes log lines and answers HTTP with its name on an ephemeral port of the node's
// address (its endpoint, which the routing mesh forwards to). Tasks can be told to fail, exit or turn
// unhealthy, by the methods of the executor or by container labels (`--container-label`), so that
// orchestration can be tested at scale and on machines without a container engine.

import { createServer, type Server } from 'node:http'
import { cpus, totalmem } from 'node:os'
import { EventEmitter } from 'eventemitter3'
import type { Assignment } from './dispatcher.js'
import {
  type Controller,
  type ControllerCallOptions,
  type ControllerEvents,
  type Executor,
  ExecutorError,
  type LogLine,
  type NodeDescription,
  type ObservedTask,
  type TaskExit,
  UNHEALTHY_TEXT,
} from './executor.js'

/**
 * Container labels that steer a simulated task (`docker service create --container-label …`):
 * `exit-code` makes it exit with that code `exit-after` ms after it runs (default 200); `health`
 * `unhealthy` makes its healthcheck fail `health-after` ms after it starts (default 200);
 * `prepare-error` and `start-error` make that step fail with the label's text.
 */
export const SIMULATE_LABELS = {
  exitCode: 'com.swarmkit.simulate.exit-code',
  exitAfter: 'com.swarmkit.simulate.exit-after',
  health: 'com.swarmkit.simulate.health',
  healthAfter: 'com.swarmkit.simulate.health-after',
  prepareError: 'com.swarmkit.simulate.prepare-error',
  startError: 'com.swarmkit.simulate.start-error',
} as const

/** How a simulated task behaves; absent fields behave normally. */
export interface SimulatedBehaviour {
  readonly prepareError?: string
  readonly startError?: string
  readonly exitCode?: number
  readonly exitAfterMs?: number
  readonly health?: 'healthy' | 'unhealthy'
  readonly healthAfterMs?: number
}

export interface SimulatedExecutorOptions {
  /** The name the node reports. */
  readonly hostname: string
  /** The node's address: running tasks answer HTTP on an ephemeral port there. */
  readonly addr: string
  /** Time preparing and starting each take. Default 50 ms. */
  readonly stepMs?: number
  /** Decides a task's behaviour (over its labels). */
  readonly behaviour?: (task: Assignment) => SimulatedBehaviour | undefined
  /** Generic resources the node offers (`--node-generic-resource`). */
  readonly genericResources?: NodeDescription['resources']['genericResources']
  /**
   * Whether a running task answers HTTP on an ephemeral port (its endpoint). Default true; false for
   * thousands of tasks in one process (benchmarks), where a listening socket per task is the limit.
   */
  readonly serveTasks?: boolean
  readonly log?: (line: string) => void
}

const MAX_LOG_LINES = 1000
const SIMULATE_PREFIX = 'com.swarmkit.simulate.'
/** The behaviour of a task without steering labels. */
const NORMAL: SimulatedBehaviour = Object.freeze({})

function hasSimulateLabel(labels: Record<string, string>): boolean {
  for (const k in labels) if (k.startsWith(SIMULATE_PREFIX)) return true
  return false
}

/** A simulated executor; its methods let tests make running tasks exit or turn unhealthy. */
export interface SimulatedExecutor extends Executor {
  readonly kind: 'simulated'
  /** Makes a running task exit with `exitCode` (0: it completes). */
  exit(taskId: string, exitCode: number, error?: string): void
  /** Sets a task's health (only tasks with a healthcheck report health). */
  setHealth(taskId: string, health: 'healthy' | 'unhealthy'): void
  /** IDs of the tasks the executor holds (in any state). */
  taskIds(): string[]
}

/** One simulated "container". */
interface SimTask {
  task: Assignment
  state: ObservedTask['state']
  exitCode?: number
  error?: string
  health?: 'starting' | 'healthy' | 'unhealthy'
  server?: Server
  endpoint?: { address: string; port: number }
  /** Log lines, their time in epoch ms (formatted when read: most are never read). */
  logs: { at: number; message: string }[]
  timers: ReturnType<typeof setTimeout>[]
  events: EventEmitter<ControllerEvents>
}

/** Creates a simulated executor (see {@link SimulatedExecutor}). */
export function simulatedExecutor(options: SimulatedExecutorOptions): SimulatedExecutor {
  if (typeof options?.hostname !== 'string') throw new TypeError('options.hostname must be a string')
  if (typeof options.addr !== 'string') throw new TypeError('options.addr must be a string')
  const stepMs = options.stepMs ?? 50
  const log = options.log ?? (() => {})
  const tasks = new Map<string, SimTask>()
  let closed = false

  const behaviourOf = (task: Assignment): SimulatedBehaviour => {
    const explicit = options.behaviour?.(task)
    if (explicit) return explicit
    const l = task.spec?.containerSpec?.labels ?? {}
    // Nearly every task has no steering label: no parsing (it was done four times per task at 150,000).
    if (!hasSimulateLabel(l)) return NORMAL
    const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined)
    const health = l[SIMULATE_LABELS.health]
    return {
      ...(l[SIMULATE_LABELS.prepareError] ? { prepareError: l[SIMULATE_LABELS.prepareError] } : {}),
      ...(l[SIMULATE_LABELS.startError] ? { startError: l[SIMULATE_LABELS.startError] } : {}),
      ...(num(l[SIMULATE_LABELS.exitCode]) !== undefined
        ? { exitCode: num(l[SIMULATE_LABELS.exitCode])! }
        : {}),
      ...(num(l[SIMULATE_LABELS.exitAfter]) !== undefined
        ? { exitAfterMs: num(l[SIMULATE_LABELS.exitAfter])! }
        : {}),
      ...(health === 'healthy' || health === 'unhealthy' ? { health } : {}),
      ...(num(l[SIMULATE_LABELS.healthAfter]) !== undefined
        ? { healthAfterMs: num(l[SIMULATE_LABELS.healthAfter])! }
        : {}),
    }
  }

  const hasHealthcheck = (task: Assignment) => {
    const test = task.spec?.containerSpec?.healthcheck?.test
    return (!!test && test.length > 0 && test[0] !== 'NONE') || behaviourOf(task).health === 'unhealthy'
  }

  const write = (t: SimTask, message: string) => {
    t.logs.push({ at: Date.now(), message })
    if (t.logs.length > MAX_LOG_LINES) t.logs.shift()
  }

  const stopServer = (t: SimTask) => {
    const server = t.server
    t.server = undefined
    t.endpoint = undefined
    if (server) {
      server.close()
      server.closeAllConnections()
    }
  }

  const exitTask = (t: SimTask, exitCode: number, error?: string) => {
    if (t.state !== 'running') return
    for (const timer of t.timers) clearTimeout(timer)
    t.timers = []
    stopServer(t)
    t.state = 'exited'
    t.exitCode = exitCode
    if (error) t.error = error
    write(t, `exited with code ${exitCode}`)
    t.events.emit('task:exit', { exitCode, ...(error ? { error } : {}) })
  }

  const setHealth = (t: SimTask, health: 'healthy' | 'unhealthy') => {
    if (t.state !== 'running' || !t.health || t.health === health) return
    t.health = health
    t.events.emit('task:health', health)
  }

  /** Starts the task's responder: HTTP on an ephemeral port of the node's address, naming the task. */
  const serve = (t: SimTask): Promise<void> => {
    const a = t.task
    const name = `${a.serviceName}.${a.slot || a.nodeId}.${a.taskId}`
    const server = createServer((req, res) => {
      write(t, `${req.method} ${String(req.url).slice(0, 256)} from ${req.socket.remoteAddress}`)
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
      res.end(`${name} on ${options.hostname}, image ${a.image}\n`)
    })
    return new Promise<void>((resolve) => {
      const failed = (err: Error) => {
        // The task runs without an endpoint (the mesh cannot reach it).
        log(`task ${a.taskId} could not listen on ${options.addr}: ${err.message}`)
        resolve()
      }
      server.once('error', failed)
      server.listen(0, options.addr, () => {
        server.off('error', failed)
        server.on('error', (err) => log(`task ${a.taskId}: ${err.message}`))
        if (closed || t.state !== 'running' || tasks.get(a.taskId) !== t) server.close()
        else {
          t.server = server
          t.endpoint = { address: options.addr, port: (server.address() as { port: number }).port }
        }
        resolve()
      })
    })
  }

  /** Runs the task: responder up, behaviour timers armed. */
  const run = async (t: SimTask) => {
    t.state = 'running'
    t.exitCode = undefined
    const a = t.task
    write(t, `starting ${a.image} as ${a.serviceName}.${a.slot || a.nodeId}`)
    write(t, `listening (simulated task ${a.taskId})`)
    const b = behaviourOf(a)
    if (hasHealthcheck(a)) {
      t.health = 'starting'
      t.timers.push(
        setTimeout(() => setHealth(t, 'healthy'), stepMs),
        ...(b.health === 'unhealthy'
          ? [setTimeout(() => setHealth(t, 'unhealthy'), b.healthAfterMs ?? 200)]
          : []),
      )
    }
    // A job's task (desired `complete`) finishes its simulated work (exit 0) unless told otherwise.
    const exitCode = b.exitCode ?? (a.desiredState === 'complete' ? 0 : undefined)
    if (exitCode !== undefined) t.timers.push(setTimeout(() => exitTask(t, exitCode), b.exitAfterMs ?? 200))
    if (options.serveTasks !== false) await serve(t)
  }

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', abort)
        resolve()
      }, ms)
      const abort = () => {
        clearTimeout(timer)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', abort, { once: true })
    })

  class SimController extends EventEmitter<ControllerEvents> implements Controller {
    #task: Assignment
    readonly #forward = {
      exit: (e: TaskExit) => this.emit('task:exit', e),
      health: (h: 'starting' | 'healthy' | 'unhealthy') => this.emit('task:health', h),
    }
    #attached: SimTask | undefined

    constructor(task: Assignment) {
      super()
      this.#task = task
    }

    get task(): Assignment {
      return this.#task
    }

    update(task: Assignment): void {
      this.#task = task
      const t = tasks.get(task.taskId)
      if (t) t.task = task
    }

    /** The simulated container, created on first need; a running task's is resumed after a restart. */
    #sim(create: boolean): SimTask | undefined {
      let t = tasks.get(this.#task.taskId)
      if (!t && create) {
        t = { task: this.#task, state: 'created', logs: [], timers: [], events: new EventEmitter() }
        tasks.set(this.#task.taskId, t)
      }
      if (t && this.#attached !== t) {
        this.#attached?.events.off('task:exit', this.#forward.exit)
        this.#attached?.events.off('task:health', this.#forward.health)
        t.events.on('task:exit', this.#forward.exit)
        t.events.on('task:health', this.#forward.health)
        this.#attached = t
      }
      return t
    }

    async inspect(): Promise<ObservedTask> {
      let t = this.#sim(false)
      // An agent that restarted in a new process finds its running tasks "still running", as containers
      // outlive their agent: the simulated one is resumed with a new responder.
      if (
        !t &&
        this.#task.state === 'running' &&
        (this.#task.desiredState === 'running' || this.#task.desiredState === 'complete')
      ) {
        t = this.#sim(true)!
        await run(t)
      }
      if (!t) return { state: 'absent' }
      return {
        state: t.state,
        ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
        ...(t.health ? { health: t.health } : {}),
        ...(t.endpoint ? { endpoint: t.endpoint } : {}),
        ...(t.error ? { error: t.error } : {}),
      }
    }

    async prepare(options?: ControllerCallOptions): Promise<void> {
      const t = this.#sim(true)!
      if (t.state !== 'created') return
      await sleep(stepMs, options?.signal)
      const err = behaviourOf(this.#task).prepareError
      if (err) {
        tasks.delete(this.#task.taskId)
        throw new ExecutorError('REJECTED', err)
      }
    }

    async start(options?: ControllerCallOptions): Promise<void> {
      const t = this.#sim(true)!
      if (t.state === 'created') {
        await sleep(stepMs, options?.signal)
        const err = behaviourOf(this.#task).startError
        if (err) {
          t.state = 'exited'
          t.exitCode = 128
          t.error = err
          throw new ExecutorError('START_FAILED', err)
        }
        await run(t)
      }
      if (t.state === 'exited') return
      await this.#healthy(t, options)
    }

    /** Waits until a task with a healthcheck is healthy (rejects if it turns unhealthy or exits). */
    #healthy(t: SimTask, options?: ControllerCallOptions): Promise<void> {
      if (!t.health || t.health === 'healthy') return Promise.resolve()
      if (t.health === 'unhealthy') return Promise.reject(new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT))
      return new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          t.events.off('task:health', onHealth)
          t.events.off('task:exit', onExit)
          options?.signal?.removeEventListener('abort', onAbort)
          if (err) reject(err)
          else resolve()
        }
        const onHealth = (h: string) => {
          if (h === 'healthy') done()
          else if (h === 'unhealthy') done(new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT))
        }
        const onExit = () => done()
        const onAbort = () => done(options!.signal!.reason as Error)
        t.events.on('task:health', onHealth)
        t.events.on('task:exit', onExit)
        options?.signal?.addEventListener('abort', onAbort, { once: true })
      })
    }

    wait(options?: ControllerCallOptions): Promise<TaskExit> {
      const t = this.#sim(false)
      if (!t)
        return Promise.reject(new ExecutorError('NOT_FOUND', `task ${this.#task.taskId} is not running`))
      if (t.state === 'exited')
        return Promise.resolve({ exitCode: t.exitCode ?? 0, ...(t.error ? { error: t.error } : {}) })
      if (t.health === 'unhealthy') return Promise.reject(new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT))
      return new Promise<TaskExit>((resolve, reject) => {
        const done = (err?: Error, exit?: TaskExit) => {
          t.events.off('task:health', onHealth)
          t.events.off('task:exit', onExit)
          options?.signal?.removeEventListener('abort', onAbort)
          if (err) reject(err)
          else resolve(exit!)
        }
        const onHealth = (h: string) => {
          if (h === 'unhealthy') done(new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT))
        }
        const onExit = (e: TaskExit) => done(undefined, e)
        const onAbort = () => done(options!.signal!.reason as Error)
        t.events.on('task:health', onHealth)
        t.events.on('task:exit', onExit)
        options?.signal?.addEventListener('abort', onAbort, { once: true })
      })
    }

    async shutdown(): Promise<void> {
      const t = this.#sim(false)
      if (t?.state !== 'running') return
      write(t, 'received SIGTERM, shutting down')
      exitTask(t, 0)
    }

    async terminate(): Promise<void> {
      const t = this.#sim(false)
      if (t?.state !== 'running') return
      write(t, 'killed')
      exitTask(t, 137)
    }

    async remove(): Promise<void> {
      const t = this.#sim(false)
      if (!t) return
      for (const timer of t.timers) clearTimeout(timer)
      stopServer(t)
      tasks.delete(this.#task.taskId)
    }

    async logs(options?: { tail?: number }): Promise<LogLine[]> {
      const lines = tasks.get(this.#task.taskId)?.logs ?? []
      return (options?.tail !== undefined ? lines.slice(-options.tail) : lines).map((l) => ({
        timestamp: new Date(l.at).toISOString().replace('Z', '000000Z'),
        message: l.message,
      }))
    }

    close(): void {
      this.#attached?.events.off('task:exit', this.#forward.exit)
      this.#attached?.events.off('task:health', this.#forward.health)
      this.#attached = undefined
      this.removeAllListeners()
    }
  }

  return {
    kind: 'simulated',
    async describe(): Promise<NodeDescription> {
      return {
        hostname: options.hostname,
        platform: { os: 'linux', architecture: 'x86_64' },
        resources: {
          nanoCPUs: cpus().length * 1e9,
          memoryBytes: totalmem(),
          ...(options.genericResources ? { genericResources: options.genericResources } : {}),
        },
        engineVersion: 'simulated',
        plugins: [
          { type: 'Network', name: 'overlay' },
          { type: 'Log', name: 'json-file' },
        ],
      }
    },
    controller: (task) => new SimController(task),
    async adoptable(nodeId) {
      return [...tasks.values()].filter((t) => t.task.nodeId === nodeId).map((t) => t.task.taskId)
    },
    async removeOrphan(taskId) {
      const t = tasks.get(taskId)
      if (!t) return
      for (const timer of t.timers) clearTimeout(timer)
      stopServer(t)
      tasks.delete(taskId)
    },
    async close() {
      closed = true
      for (const t of tasks.values()) {
        for (const timer of t.timers) clearTimeout(timer)
        stopServer(t)
      }
      tasks.clear()
    },
    exit(taskId, exitCode, error) {
      const t = tasks.get(taskId)
      if (t) exitTask(t, exitCode, error)
    },
    setHealth(taskId, health) {
      const t = tasks.get(taskId)
      if (t) setHealth(t, health)
    },
    taskIds: () => [...tasks.keys()],
  }
}
