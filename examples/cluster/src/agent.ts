// The worker agent (swarmkit's agent): registers its node with what its executor describes, follows the
// assignments the dispatcher streams (a complete set, then changes: assignments-message.ts), drives one task
// runner per assigned task through the executor's controller, and reports every task state to the
// dispatcher, batched. Tasks that leave the assignments (reaped by the managers) are removed from the
// executor; tasks the executor still holds from an earlier agent are adopted, or removed if the managers no
// longer know them.

import { type TaskState, taskStateRank } from '@swarmkit/store'
import { checkAssignmentsMessage } from './assignments-message.js'
import { COARSE_GRAIN_MS, type CoarseTimer, coarseTimeout } from './coarse-timer.js'
import type { Assignment, DispatcherApi, HeartbeatAnswer, NodeInfo, TaskStatusUpdate } from './dispatcher.js'
import type { Executor, LogLine } from './executor.js'
import { simulatedExecutor } from './simulated-executor.js'
import { TaskRunner } from './task-runner.js'
import { PASSING_STATES } from './task-status.js'

export type { LogLine } from './executor.js'

export interface AgentOptions {
  readonly nodeId: string
  readonly dispatcher: DispatcherApi
  readonly info: NodeInfo
  readonly addr: string
  /** What runs the tasks. Default: a simulated executor on `addr` (stepping every `stepMs`). */
  readonly executor?: Executor
  /** The role this node runs as; `onRole` is called when the managers want another. */
  readonly role?: 'manager' | 'worker'
  /** Called after a heartbeat whose answer names a role other than `role` (a promotion or demotion). */
  readonly onRole?: (role: 'manager' | 'worker') => void
  /** Called with every heartbeat answer, or with the error when a heartbeat failed. */
  readonly onHeartbeat?: (answer: HeartbeatAnswer | undefined, error?: Error) => void
  /** Time per step of the default simulated executor. Default 50 ms. */
  readonly stepMs?: number
  /**
   * The grain of the heartbeat timer (coarse-timer.ts): heartbeats of the agents of one process due in the
   * same grain leave together. Default 50 ms; 1 gives each heartbeat its own time, as separate machines have.
   */
  readonly heartbeatGrainMs?: number
  /**
   * How long the report of a state a task only passes through on its way to running (`accepted`,
   * `preparing`, `starting`) may wait for the task's next state, so that one call carries them together.
   * Reports of every other state leave at once, with all that waits. Default 250 ms; 0 sends each at once.
   */
  readonly reportHoldMs?: number
  readonly log?: (line: string) => void
}

const MAX_BATCH = 1000
/**
 * A report of a state a task passes through on its way to running (PASSING_STATES) may wait this long for
 * the next. A task that starts in 100 ms was reported in two or three calls (accepted and preparing,
 * starting, running), each a message and its answer on both sides and a store write on every manager; now
 * in one, and the dispatcher writes only the task's last state. Running, and every end, still leave at once.
 */
const REPORT_HOLD_MS = 250
/** Sweeps for leftovers after a failed removal (the engine away): from this, doubling, up to the maximum. */
const SWEEP_FIRST_MS = 500
const SWEEP_MAX_MS = 10_000

/** A running agent: registered with its dispatcher, executing the tasks assigned to its node. */
export class Agent {
  readonly nodeId: string
  readonly executor: Executor
  readonly #ownsExecutor: boolean
  readonly #dispatcher: DispatcherApi
  readonly #runners = new Map<string, TaskRunner>()
  readonly #stop = new AbortController()
  readonly #log: (line: string) => void
  readonly #options: AgentOptions
  /** On the coarse grid: the heartbeats of many agents in one process leave in one turn of the loop. */
  #heartbeatTimer: CoarseTimer | undefined
  readonly #heartbeatGrainMs: number
  #loop: Promise<void> = Promise.resolve()
  /** Reports not yet sent, in order (every state of every task is reported). */
  #pending: TaskStatusUpdate[] = []
  /** Whether a pending report must leave at once (a state other than those a task passes through). */
  #urgent = false
  /** When the oldest pending report that may wait was queued (Date.now()). */
  #heldSince: number | undefined
  readonly #reportHoldMs: number
  #flushTimer: { cancel(): void } | undefined
  /** When the flush timer runs (Date.now()). */
  #flushAt = 0
  #reporting: Promise<void> | undefined
  #orphansChecked = false
  #sweepTimer: ReturnType<typeof setTimeout> | undefined
  #sweepMs = SWEEP_FIRST_MS
  readonly #removals = new Set<Promise<void>>()

  constructor(options: AgentOptions) {
    this.nodeId = options.nodeId
    this.#dispatcher = options.dispatcher
    this.#log = options.log ?? (() => {})
    this.#options = options
    const grain = options.heartbeatGrainMs ?? COARSE_GRAIN_MS
    // Checked here, not at the first heartbeat: a bad grain would otherwise throw inside a timer.
    if (!Number.isFinite(grain) || grain < 1)
      throw new RangeError('options.heartbeatGrainMs must be at least 1')
    this.#heartbeatGrainMs = grain
    const hold = options.reportHoldMs ?? REPORT_HOLD_MS
    if (!Number.isFinite(hold) || hold < 0) throw new RangeError('options.reportHoldMs must be at least 0')
    this.#reportHoldMs = hold
    this.#ownsExecutor = !options.executor
    this.executor =
      options.executor ??
      simulatedExecutor({
        hostname: options.info.hostname,
        addr: options.addr,
        ...(options.stepMs ? { stepMs: options.stepMs } : {}),
        log: this.#log,
      })
  }

  /**
   * Registers the node (it becomes `ready`), then follows its assignments and heartbeats. Resolves after
   * the first registration attempt; if that failed (no manager or no raft leader yet) the agent keeps
   * trying in the background, with backoff, until it is stopped.
   */
  async start(): Promise<void> {
    await this.executor
      .configure?.({ id: this.nodeId, addr: this.#options.addr })
      .catch((err) => this.#log(`configuring the executor failed: ${(err as Error).message}`))
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

  /** Log lines of a task this agent runs (empty if unknown). */
  async logs(taskId: string, options?: { tail?: number }): Promise<readonly LogLine[]> {
    const runner = this.#runners.get(taskId)
    if (!runner) return []
    return runner.controller.logs(options).catch((err) => {
      this.#log(`logs of task ${taskId}: ${(err as Error).message}`)
      return []
    })
  }

  /** Tasks this agent holds, with the state it last reported. */
  tasks(): { taskId: string; state: TaskState }[] {
    return [...this.#runners.values()].map((r) => ({ taskId: r.assignment.taskId, state: r.state }))
  }

  /** Stops following assignments; tasks keep running in the executor (a new agent adopts them). */
  async stop(): Promise<void> {
    this.#stop.abort()
    this.#heartbeatTimer?.cancel()
    clearTimeout(this.#sweepTimer)
    await this.#loop.catch(() => {})
    await Promise.all([...this.#runners.values()].map((r) => r.close()))
    this.#runners.clear()
    await Promise.all([...this.#removals])
    this.#flushTimer?.cancel()
    await this.#reporting?.catch(() => {})
    if (this.#ownsExecutor) await this.executor.close()
  }

  #heartbeat(delayMs: number): void {
    if (this.#stop.signal.aborted) return
    this.#heartbeatTimer = coarseTimeout(
      () => {
        this.#dispatcher.heartbeat(this.nodeId).then(
          (answer) => {
            const { periodMs, role } = answer
            // Once per period, a little later at random so that nodes joined together drift apart (as swarm's
            // agent: its manager answers the period plus up to 10%). At 0.5-0.8 of the period, 5,000 nodes made
            // 1,550 heartbeats a second instead of ~950, a third of the managers' CPU during a join storm.
            this.#heartbeat(Math.max(100, periodMs * (1 + Math.random() * 0.1)))
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
      },
      delayMs,
      this.#heartbeatGrainMs,
    )
  }

  async #follow(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        // A complete set may come in parts; changes apply only after a whole complete set.
        let parts: Assignment[] | undefined
        let whole = false
        for await (const item of this.#dispatcher.assignments(this.nodeId, this.#stop.signal)) {
          if (this.#stop.signal.aborted) return
          // A message that is not one breaks the stream: the next one starts from a complete set again.
          const m = checkAssignmentsMessage(item)
          if (m.type === 'incremental' && (!whole || parts))
            throw new TypeError('assignments message: changes before a complete set')
          if (m.view) {
            try {
              this.executor.networkView?.(m.view)
            } catch (err) {
              this.#log(`network view update refused: ${(err as Error).message}`)
            }
          }
          if (m.type === 'complete') {
            ;(parts ??= []).push(...m.update)
            if (m.more) continue
            this.#reconcile(parts)
            parts = undefined
            whole = true
          } else this.#apply(m.update, m.remove)
        }
      } catch (err) {
        if (this.#stop.signal.aborted) return
        this.#log(`assignment stream broke: ${(err as Error).message}; resubscribing`)
      }
      await sleep(500, this.#stop.signal)
    }
  }

  /** A complete set: exactly these tasks are the node's now. */
  #reconcile(list: readonly Assignment[]): void {
    const live = new Set<string>()
    for (const a of list) {
      live.add(a.taskId)
      this.#assign(a)
    }
    // Tasks no longer assigned here (reaped or removed): remove what they left behind.
    for (const id of this.#runners.keys()) if (!live.has(id)) this.#unassign(id)
    if (!this.#orphansChecked) {
      this.#orphansChecked = true
      this.#track(
        this.#removeOrphans(live).then((done) => {
          if (!done) this.#sweepLater()
        }),
      )
    }
  }

  /** Changes to the set: tasks new or changed, and tasks that left the node. */
  #apply(update: readonly Assignment[], remove: readonly string[]): void {
    for (const a of update) this.#assign(a)
    for (const id of remove) this.#unassign(id)
  }

  #assign(a: Assignment): void {
    const runner = this.#runners.get(a.taskId)
    if (runner) {
      // A complete set after a reconnection holds tasks the runners have: only a new desired state, a state
      // the runner has not reached, or new attachments are news.
      if (assignmentNews(runner, a)) runner.update(a)
      return
    }
    const r = new TaskRunner(
      this.executor.controller(a),
      (u) => this.#queue(u),
      (l) => this.#log(l),
    )
    this.#runners.set(a.taskId, r)
    r.kick()
  }

  /** Removes what a task no longer assigned here left behind. */
  #unassign(id: string): void {
    const r = this.#runners.get(id)
    if (!r) return
    this.#runners.delete(id)
    this.#track(
      r.remove().catch((err) => {
        this.#log(`removing task ${id}: ${(err as Error).message}; retrying`)
        this.#sweepLater()
      }),
    )
  }

  /**
   * Looks for leftovers again later (with backoff, until a sweep removed them all): a removal that failed
   * while the engine was away is done once it answers, or the container of a reaped task would run forever.
   */
  #sweepLater(): void {
    if (this.#sweepTimer !== undefined || this.#stop.signal.aborted) return
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined
      this.#track(
        this.#removeOrphans(new Set(this.#runners.keys())).then((done) => {
          if (done) this.#sweepMs = SWEEP_FIRST_MS
          else {
            this.#sweepMs = Math.min(2 * this.#sweepMs, SWEEP_MAX_MS)
            this.#sweepLater()
          }
        }),
      )
    }, this.#sweepMs)
    this.#sweepTimer.unref?.()
  }

  #track(p: Promise<void>): void {
    this.#removals.add(p)
    void p.finally(() => this.#removals.delete(p))
  }

  /**
   * What the executor holds for this node that the managers no longer assign (from an earlier agent, or
   * whose removal failed) goes. Resolves whether all of it went.
   */
  async #removeOrphans(live: ReadonlySet<string>): Promise<boolean> {
    try {
      for (const id of await this.executor.adoptable(this.nodeId)) {
        // (A stopping agent leaves its tasks to the next one.)
        if (this.#stop.signal.aborted) return true
        if (live.has(id) || this.#runners.has(id)) continue
        this.#log(`removing orphaned task ${id}`)
        await this.executor.removeOrphan(id)
      }
      return true
    } catch (err) {
      this.#log(`looking for orphaned tasks failed: ${(err as Error).message}`)
      return false
    }
  }

  #queue(u: TaskStatusUpdate): void {
    this.#pending.push(u)
    if (this.#reportHoldMs === 0 || !PASSING_STATES.has(u.state)) this.#urgent = true
    else this.#heldSince ??= Date.now()
    this.#scheduleFlush(0)
  }

  /**
   * Sends what is pending once no call is in flight: at once if a report must leave now, else when the
   * oldest report has waited `reportHoldMs` (on the coarse grid: the held reports of a process's agents
   * leave in one turn of the loop), never sooner than `minDelayMs`.
   */
  #scheduleFlush(minDelayMs: number): void {
    if (this.#reporting || this.#pending.length === 0 || this.#stop.signal.aborted) return
    const now = Date.now()
    const held = this.#urgent ? 0 : (this.#heldSince ?? now) + this.#reportHoldMs - now
    const delay = Math.max(minDelayMs, held, 0)
    if (this.#flushTimer) {
      if (this.#flushAt <= now + delay) return
      this.#flushTimer.cancel()
    }
    this.#flushAt = now + delay
    const run = () => {
      this.#flushTimer = undefined
      this.#flush()
    }
    if (delay === 0) {
      const t = setTimeout(run, 0)
      this.#flushTimer = { cancel: () => clearTimeout(t) }
    } else this.#flushTimer = coarseTimeout(run, delay)
  }

  /** Sends the pending reports in one call; on failure they are sent again, before newer ones. */
  #flush(): void {
    if (this.#pending.length === 0 || this.#reporting) return
    const batch = this.#pending.splice(0, MAX_BATCH)
    this.#urgent = false
    this.#heldSince = undefined
    this.#reporting = this.#dispatcher
      .updateStatus(this.nodeId, batch)
      .then(
        () => 0,
        (err) => {
          this.#log(`status report failed: ${(err as Error).message}; retrying`)
          // Only tasks still held are reported again (a removed task's states no longer matter).
          this.#pending.unshift(...batch.filter((u) => this.#runners.has(u.taskId)))
          return 500
        },
      )
      .then((delay) => {
        this.#reporting = undefined
        if (this.#pending.length === 0) return
        // What waits now: reports queued while the call was out (already marked), or a failed batch.
        if (!this.#urgent) this.#urgent = this.#pending.some((u) => !PASSING_STATES.has(u.state))
        this.#heldSince ??= Date.now()
        this.#scheduleFlush(delay)
      })
  }
}

/** Whether `a` tells the runner anything its current assignment did not. */
function assignmentNews(runner: TaskRunner, a: Assignment): boolean {
  const cur = runner.assignment
  return (
    cur.desiredState !== a.desiredState ||
    taskStateRank(a.state) > taskStateRank(runner.state) ||
    cur.networks?.length !== a.networks?.length ||
    cur.genericResources?.length !== a.genericResources?.length
  )
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
