import type { ReadTx, StoreEvent, Task, TaskState } from '@swarmkit/store'
import { taskStateRank } from '@swarmkit/store'
import { type Clock, systemClock } from './clock.js'
import { typeError } from './internal/check.js'
import { WatchLoop } from './internal/loop.js'
import { RANK_ASSIGNED, RANK_RUNNING } from './internal/task-state.js'
import { checkStore, type SchedulerStore, silentLogger } from './store.js'

/** What a task does when its worker starts it. */
export type TaskOutcome = 'run' | 'fail' | 'complete' | 'reject'

/** What `createTestExecutor` takes: the store, a clock, and how each started task behaves. */
export interface TestExecutorOptions {
  store: SchedulerStore
  clock?: Clock
  /** Decides each task's fate when started (default: it runs). */
  behavior?: (task: Task) => TaskOutcome
}

/**
 * A fake worker for every ready node: moves assigned tasks to `ready` (desired `ready`) or `running`,
 * `failed`, `complete` or `rejected` (desired `running`, by `behavior`), and stops tasks desired `shutdown`
 * or `remove`. Tasks on nodes that are not ready are left alone, as a dead agent would.
 */
export interface TestExecutor {
  start(): void
  stop(): Promise<void>
  /** Makes a running task exit: `complete` (exit 0) or `failed` (non-zero exit). */
  exit(taskId: string, outcome: 'complete' | 'failed'): Promise<void>
  /** Tasks started so far. */
  readonly started: number
}

/** Creates a {@link TestExecutor}. */
export function createTestExecutor(options: TestExecutorOptions): TestExecutor {
  if (typeof options !== 'object' || options === null) throw typeError('options', 'be an object')
  checkStore(options.store, 'options.store')
  if (options.behavior !== undefined && typeof options.behavior !== 'function')
    throw typeError('options.behavior', 'be a function')
  return new TestExecutorImpl(options.store, options.clock ?? systemClock, options.behavior ?? (() => 'run'))
}

class TestExecutorImpl implements TestExecutor {
  readonly #loop: WatchLoop
  #ready = new Set<string>()
  #byNode = new Map<string, Set<string>>()
  #todo = new Map<string, Task>()
  #tasks = new Map<string, Task>()
  started = 0

  constructor(
    private readonly store: SchedulerStore,
    private readonly clock: Clock,
    private readonly behavior: (task: Task) => TaskOutcome,
  ) {
    this.#loop = new WatchLoop(
      store,
      ['nodes', 'tasks'],
      {
        reset: (tx) => {
          this.#reset(tx)
          return undefined
        },
        event: (e) => this.#event(e),
        idle: () => this.#pass(),
      },
      1_000_000,
      silentLogger,
      () => {},
    )
  }

  start(): void {
    this.#loop.start()
  }

  stop(): Promise<void> {
    return this.#loop.stop()
  }

  async exit(taskId: string, outcome: 'complete' | 'failed'): Promise<void> {
    await this.store.update((tx) => {
      const t = tx.get('tasks', taskId)
      if (t?.status.state !== 'running') return
      tx.update('tasks', {
        ...t,
        status: {
          timestamp: this.clock.now(),
          state: outcome,
          message: outcome === 'complete' ? 'finished' : 'started',
          ...(outcome === 'failed' ? { err: 'task: non-zero exit (1)' } : {}),
        },
      })
    })
  }

  #reset(tx: ReadTx): void {
    this.#ready.clear()
    this.#byNode.clear()
    this.#todo.clear()
    this.#tasks.clear()
    for (const n of tx.find('nodes')) if (n.status.state === 'ready') this.#ready.add(n.id)
    for (const t of tx.find('tasks')) this.#track(t)
  }

  #track(t: Task): void {
    this.#tasks.set(t.id, t)
    if (!t.nodeId) return
    let s = this.#byNode.get(t.nodeId)
    if (!s) this.#byNode.set(t.nodeId, (s = new Set()))
    s.add(t.id)
    this.#todo.set(t.id, t)
  }

  #event(e: StoreEvent): void {
    if (e.table === 'nodes') {
      if (e.action !== 'delete' && e.object.status.state === 'ready') {
        this.#ready.add(e.object.id)
        for (const id of this.#byNode.get(e.object.id) ?? []) {
          const t = this.#tasks.get(id)
          if (t) this.#todo.set(id, t)
        }
      } else this.#ready.delete(e.object.id)
      return
    }
    if (e.table !== 'tasks') return
    if (e.action === 'delete') {
      this.#tasks.delete(e.object.id)
      this.#todo.delete(e.object.id)
      this.#byNode.get(e.object.nodeId)?.delete(e.object.id)
      return
    }
    this.#track(e.object)
  }

  #next(t: Task): { state: TaskState; err?: string } | undefined {
    const rank = taskStateRank(t.status.state)
    if (rank < RANK_ASSIGNED || rank > RANK_RUNNING) return undefined
    if (t.desiredState === 'shutdown' || t.desiredState === 'remove') return { state: 'shutdown' }
    if (t.desiredState === 'ready') return t.status.state === 'ready' ? undefined : { state: 'ready' }
    if (t.status.state === 'running') return undefined
    const outcome = this.behavior(t)
    if (outcome === 'fail') return { state: 'failed', err: 'task: non-zero exit (1)' }
    if (outcome === 'reject') return { state: 'rejected', err: 'executor rejected the task' }
    if (outcome === 'complete') return { state: 'complete' }
    return { state: 'running' }
  }

  async #pass(): Promise<void> {
    const work: { t: Task; state: TaskState; err?: string }[] = []
    for (const t of this.#todo.values()) {
      if (!this.#ready.has(t.nodeId)) continue
      const n = this.#next(t)
      if (n) work.push({ t, ...n })
    }
    this.#todo.clear()
    if (work.length === 0) return
    const now = this.clock.now()
    // Counted after the commit: a replicated update may run its function more than once.
    this.started += await this.store.update((tx) => {
      let started = 0
      for (const w of work) {
        const cur = tx.get('tasks', w.t.id)
        if (!cur || cur.meta.version !== w.t.meta.version) continue
        if (w.state === 'running' || w.state === 'failed' || w.state === 'complete') started++
        tx.update('tasks', {
          ...cur,
          status: { timestamp: now, state: w.state, message: w.state, ...(w.err ? { err: w.err } : {}) },
        })
      }
      return started
    })
  }
}
