// The worker agent with a simulated executor: there is no container engine here, so a task "runs"
// in-process. Each step of the executor moves every task it holds one state forward
// (assigned -> accepted -> preparing -> starting -> running), and stops tasks whose desired state is
// shutdown or remove; all changes of one step go to the dispatcher in one status report. A running task
// writes synthetic log lines and answers HTTP on its endpoint (an ephemeral port on the node's address),
// which the routing mesh forwards published ports to.

import { createServer, type Server } from 'node:http'
import { type TaskState, taskStateRank } from '@swarmkit/store'
import type { Assignment, DispatcherApi, HeartbeatAnswer, NodeInfo, TaskStatusUpdate } from './dispatcher.js'

const FORWARD: Partial<Record<TaskState, TaskState>> = {
  assigned: 'accepted',
  accepted: 'preparing',
  preparing: 'starting',
  // A task prepared while desired `ready` (a replacement waiting for its restart delay) starts from here.
  ready: 'starting',
  starting: 'running',
}
const MESSAGES: Partial<Record<TaskState, string>> = {
  accepted: 'accepted',
  preparing: 'preparing',
  starting: 'starting',
  running: 'started',
  shutdown: 'shutdown',
}
const RANK_RUNNING = taskStateRank('running')
const MAX_LOG_LINES = 1000

export interface AgentOptions {
  readonly nodeId: string
  readonly dispatcher: DispatcherApi
  readonly info: NodeInfo
  readonly addr: string
  /** The role this node runs as; `onRole` is called when the managers want another. */
  readonly role?: 'manager' | 'worker'
  /** Called after a heartbeat whose answer names a role other than `role` (a promotion or demotion). */
  readonly onRole?: (role: 'manager' | 'worker') => void
  /** Called with every heartbeat answer, or with the error when a heartbeat failed. */
  readonly onHeartbeat?: (answer: HeartbeatAnswer | undefined, error?: Error) => void
  /** Time per executor step (one state forward). Default 50 ms. */
  readonly stepMs?: number
  readonly log?: (line: string) => void
}

interface Held {
  assignment: Assignment
  state: TaskState
  /** The task's responder, once it listens (the task's "container" is up). */
  server?: Server
  endpoint?: { address: string; port: number }
  /** Set while the responder is starting. */
  serving?: Promise<void>
  /** Whether the dispatcher has the current endpoint. */
  endpointReported?: boolean
  /** The responder could not listen: the task runs without an endpoint. */
  unreachable?: boolean
}

/** One line a task wrote. */
export interface LogLine {
  /** RFC 3339 with nanoseconds, as Docker writes log timestamps. */
  readonly timestamp: string
  readonly message: string
}

const MAX_LOGGED_TASKS = 1000

/** A running agent: registered with its dispatcher, executing the tasks assigned to its node. */
export class Agent {
  readonly nodeId: string
  readonly #dispatcher: DispatcherApi
  readonly #tasks = new Map<string, Held>()
  readonly #logs = new Map<string, LogLine[]>()
  readonly #stop = new AbortController()
  readonly #stepMs: number
  readonly #log: (line: string) => void
  readonly #options: AgentOptions
  #stepTimer: ReturnType<typeof setTimeout> | undefined
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined
  #reporting: Promise<void> = Promise.resolve()
  #loop: Promise<void> = Promise.resolve()

  constructor(options: AgentOptions) {
    this.nodeId = options.nodeId
    this.#dispatcher = options.dispatcher
    this.#stepMs = options.stepMs ?? 50
    this.#log = options.log ?? (() => {})
    this.#options = options
  }

  /**
   * Registers the node (it becomes `ready`), then follows its assignments and heartbeats. Resolves after
   * the first registration attempt; if that failed (no manager or no raft leader yet) the agent keeps
   * trying in the background, with backoff, until it is stopped.
   */
  async start(): Promise<void> {
    const first = await this.#register()
    this.#loop = (async () => {
      for (let delay = 250; !first && !this.#stop.signal.aborted; delay = Math.min(2 * delay, 2000)) {
        await sleep(delay, this.#stop.signal)
        if (await this.#register()) break
      }
      if (this.#stop.signal.aborted) return
      this.#heartbeat(1000)
      await this.#follow()
    })()
  }

  async #register(): Promise<boolean> {
    if (this.#stop.signal.aborted) return false
    try {
      await this.#dispatcher.register(this.nodeId, this.#options.info, this.#options.addr)
      return true
    } catch (err) {
      this.#log(`registration failed: ${(err as Error).message}; retrying`)
      return false
    }
  }

  /** Synthetic log lines of a task this agent runs (empty if unknown). */
  logs(taskId: string): readonly LogLine[] {
    return this.#logs.get(taskId) ?? []
  }

  /** Tasks this agent holds, with the state it last reported. */
  tasks(): { taskId: string; state: TaskState }[] {
    return [...this.#tasks.values()].map((h) => ({ taskId: h.assignment.taskId, state: h.state }))
  }

  async stop(): Promise<void> {
    this.#stop.abort()
    clearTimeout(this.#stepTimer)
    clearTimeout(this.#heartbeatTimer)
    await this.#loop.catch(() => {})
    await this.#reporting.catch(() => {})
    await Promise.all([...this.#tasks.values()].map((h) => h.serving?.catch(() => {})))
    for (const h of this.#tasks.values()) this.#unserve(h)
  }

  /** Starts the task's responder: HTTP on an ephemeral port of the node's address, naming the task. */
  #serve(h: Held): void {
    if (h.serving || h.server) return
    const a = h.assignment
    const name = `${a.serviceName}.${a.slot || this.nodeId}.${a.taskId}`
    const server = createServer((req, res) => {
      this.#write(h, `${req.method} ${String(req.url).slice(0, 256)} from ${req.socket.remoteAddress}`)
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
      res.end(`${name} on ${this.#options.info.hostname}, image ${a.image}\n`)
    })
    server.on('error', (err) => this.#log(`task ${a.taskId}: ${err.message}`))
    h.serving = new Promise<void>((resolve) => {
      const failed = (err: Error) => {
        this.#log(`task ${a.taskId} could not listen on ${this.#options.addr}: ${err.message}`)
        h.unreachable = true
        resolve()
      }
      server.once('error', failed)
      server.listen(0, this.#options.addr, () => {
        server.off('error', failed)
        const { port } = server.address() as { port: number }
        // Stopped or shut down while it was starting: do not leave it listening.
        if (this.#stop.signal.aborted || this.#tasks.get(a.taskId) !== h || h.state === 'shutdown') {
          server.close()
        } else {
          h.server = server
          h.endpoint = { address: this.#options.addr, port }
          h.endpointReported = false
        }
        resolve()
      })
    }).finally(() => {
      h.serving = undefined
      this.#schedule()
    })
  }

  #unserve(h: Held): void {
    const server = h.server
    h.server = undefined
    h.endpoint = undefined
    if (server) {
      server.close()
      server.closeAllConnections()
    }
  }

  #heartbeat(delayMs: number): void {
    if (this.#stop.signal.aborted) return
    this.#heartbeatTimer = setTimeout(() => {
      this.#dispatcher.heartbeat(this.nodeId).then(
        (answer) => {
          const { periodMs, role } = answer
          this.#heartbeat(Math.max(100, periodMs * (0.5 + Math.random() * 0.3)))
          if (this.#stop.signal.aborted) return
          const o = this.#options
          o.onHeartbeat?.(answer)
          if (role && o.role && role !== o.role) o.onRole?.(role)
        },
        (err) => {
          this.#log(`heartbeat failed: ${(err as Error).message}`)
          this.#heartbeat(1000)
          if (!this.#stop.signal.aborted) this.#options.onHeartbeat?.(undefined, err as Error)
        },
      )
    }, delayMs)
    this.#heartbeatTimer.unref?.()
  }

  async #follow(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        for await (const list of this.#dispatcher.assignments(this.nodeId, this.#stop.signal)) {
          this.#reconcile(list)
        }
      } catch (err) {
        if (this.#stop.signal.aborted) return
        this.#log(`assignment stream broke: ${(err as Error).message}; resubscribing`)
      }
      await sleep(500, this.#stop.signal)
    }
  }

  #reconcile(list: readonly Assignment[]): void {
    const live = new Set<string>()
    for (const a of list) {
      live.add(a.taskId)
      const held = this.#tasks.get(a.taskId)
      if (held) {
        held.assignment = a
        if (taskStateRank(a.state) > taskStateRank(held.state)) held.state = a.state
      } else {
        this.#tasks.set(a.taskId, { assignment: a, state: a.state })
      }
    }
    // Tasks no longer assigned here (finished or removed) are forgotten.
    for (const [id, h] of this.#tasks) {
      if (live.has(id)) continue
      this.#tasks.delete(id)
      this.#unserve(h)
    }
    this.#schedule()
  }

  #schedule(): void {
    if (this.#stepTimer !== undefined || this.#stop.signal.aborted) return
    this.#stepTimer = setTimeout(() => {
      this.#stepTimer = undefined
      this.#step()
    }, this.#stepMs)
  }

  /** Moves every task one step and reports all changes together. */
  #step(): void {
    const updates: TaskStatusUpdate[] = []
    const before = new Map<string, TaskState>()
    let more = false
    for (const h of this.#tasks.values()) {
      const a = h.assignment
      const rank = taskStateRank(h.state)
      if (a.desiredState === 'shutdown' || a.desiredState === 'remove') {
        if (rank <= RANK_RUNNING) {
          before.set(a.taskId, h.state)
          h.state = 'shutdown'
          this.#unserve(h)
          this.#write(h, 'received SIGTERM, shutting down')
          updates.push({ taskId: a.taskId, state: 'shutdown', message: MESSAGES.shutdown! })
        }
        continue
      }
      if (
        a.desiredState === 'running' &&
        (h.state === 'starting' || h.state === 'running') &&
        !h.endpoint &&
        !h.unreachable
      ) {
        // The task starts listening before it is running (or again, when this agent took over a
        // running task after a restart): wait for its responder.
        this.#serve(h)
        continue
      }
      if (a.desiredState === 'complete' && h.state === 'running') {
        // A job's task (desired `complete`): the simulated work is done at once, exit code 0.
        before.set(a.taskId, h.state)
        h.state = 'complete'
        this.#write(h, 'finished')
        updates.push({ taskId: a.taskId, state: 'complete', message: 'finished' })
        continue
      }
      if (h.state === 'running' && h.endpoint && !h.endpointReported) {
        h.endpointReported = true
        updates.push({ taskId: a.taskId, state: 'running', message: MESSAGES.running!, endpoint: h.endpoint })
        continue
      }
      const next = a.desiredState === 'ready' && h.state === 'preparing' ? 'ready' : FORWARD[h.state]
      if (!next || (a.desiredState === 'ready' && h.state === 'ready')) continue
      before.set(a.taskId, h.state)
      h.state = next
      if (next === 'running') {
        this.#write(h, `starting ${a.image} as ${a.serviceName}.${a.slot || this.nodeId}`)
        this.#write(h, `listening (simulated task ${a.taskId})`)
        if (a.desiredState === 'complete') more = true
      } else more = true
      if (next === 'running' && h.endpoint) h.endpointReported = true
      updates.push({
        taskId: a.taskId,
        state: next,
        message: MESSAGES[next] ?? next,
        ...(next === 'running' && a.hostPorts?.length ? { ports: a.hostPorts } : {}),
        ...(next === 'running' && h.endpoint ? { endpoint: h.endpoint } : {}),
      })
    }
    if (updates.length > 0) {
      this.#reporting = this.#reporting
        .then(() => this.#dispatcher.updateStatus(this.nodeId, updates))
        .catch((err) => {
          // Not recorded: step back so that the next step reports these states again.
          this.#log(`status report failed: ${(err as Error).message}; retrying`)
          for (const u of updates) {
            const h = this.#tasks.get(u.taskId)
            const prev = before.get(u.taskId)
            if (h && prev && h.state === u.state) h.state = prev
            if (h && u.endpoint && h.endpoint === u.endpoint) h.endpointReported = false
          }
          this.#schedule()
        })
    }
    if (more) this.#schedule()
  }

  #write(h: Held, message: string): void {
    const id = h.assignment.taskId
    let lines = this.#logs.get(id)
    if (!lines) {
      this.#logs.set(id, (lines = []))
      if (this.#logs.size > MAX_LOGGED_TASKS) this.#logs.delete(this.#logs.keys().next().value!)
    }
    lines.push({ timestamp: new Date().toISOString().replace('Z', '000000Z'), message })
    if (lines.length > MAX_LOG_LINES) lines.shift()
  }
}

/** Waits `ms`, or less if `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
