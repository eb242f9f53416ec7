// The leader's scheduler and orchestrator, kept warm on every manager. A manager that is not the leader runs
// them in standby: they follow every commit (nodes, services, tasks) but place and write nothing. Taking
// over activates them with writes scoped to the new term, so a new leader reconciles at once instead of
// first loading every task twice (2.3 s of CPU at 300,000 tasks, issue #18). Stepping down puts the acting
// pair back in standby (a deposed leader's passes can commit nothing: their writes carry the old term), so
// that a leader deposed by a stall and elected again at once does not load every task again (a fresh pair
// at 300,000 tasks made its first passes 10-17 s after that election on a loaded machine).
import { createOrchestrator, createScheduler, type Orchestrator, type Scheduler } from '@swarmkit/scheduler'
import type { ClusterStore } from '@swarmkit/store'
import { dutyStore, scopedStore } from '../leader-scope.js'

/**
 * A large create goes out in waves that give each node several tasks at once: the orchestrator creates up
 * to 20,000 tasks per pass (in transactions of 1,000), the scheduler waits while it commits them (at most
 * 3 s) and places up to 4 per node in a pass, a node's together in one transaction. Each node's
 * dispatcher then sends them in one message, and its agent reports them in one call: at 5,000 nodes, 1,000
 * tasks per pass put one task on a node per commit, and every task cost a message and a report of its own.
 */
const SCHEDULER_PASSES = { passPerNode: 4, passWaitMaxMs: 3000 } as const
const SCALE_UP = { createsPerPass: 20_000, createCommitSize: 1000 } as const

export interface Duties {
  readonly scheduler: Scheduler
  readonly orchestrator: Orchestrator
}

export class WarmDuties {
  #pair: Duties | undefined
  #closed = false
  /** A step-down whose passes have not ended yet. */
  #steppingDown: Promise<void> | undefined

  constructor(
    private readonly store: ClusterStore,
    private readonly log: (line: string) => void,
    /** The scheduler's nodes to place on last (the leader's nodes not heard since its election). */
    private readonly placeLast?: (nodeId: string) => boolean,
  ) {}

  /** The pair acting for the leader now, if any. */
  get acting(): Duties | undefined {
    const p = this.#pair
    return p && !p.scheduler.standby ? p : undefined
  }

  /** Starts a standby pair (if none runs). */
  standby(): void {
    if (this.#closed || this.#pair) return
    // Reads as the store's; a write from standby is a bug, and fails loudly instead of committing.
    const follower = dutyStore(this.store, () =>
      Promise.reject(new Error('a standby scheduler or orchestrator tried to write')),
    )
    const orchestrator = createOrchestrator({ store: follower, standby: true, ...SCALE_UP })
    const scheduler = createScheduler({
      store: follower,
      standby: true,
      ...(this.placeLast ? { placeLast: this.placeLast } : {}),
      ...SCHEDULER_PASSES,
      passWaitWhile: () => orchestrator.creating,
    })
    scheduler.on('error', (err: unknown) => this.log(`scheduler: ${(err as Error).message}`))
    orchestrator.on('error', (err: unknown) => this.log(`orchestrator: ${(err as Error).message}`))
    scheduler.start()
    orchestrator.start()
    this.#pair = { scheduler, orchestrator }
  }

  /** Resolves once a step-down in progress has ended (its pair can then be activated again). */
  async steppedDown(): Promise<void> {
    await this.#steppingDown
  }

  /** Activates the standby pair (started now if there is none) for the leadership of `term`. */
  activate(term: number): Duties {
    // A pair still acting for an earlier term (its step-down not seen), or still stepping down (its last pass
    // could write through the new term's writer), is never reused across terms: a fresh one takes over.
    if (this.acting || this.#steppingDown) void this.#stop()
    this.standby()
    const pair = this.#pair!
    const writer = scopedStore(this.store, term)
    pair.orchestrator.activate(writer)
    pair.scheduler.activate(writer)
    return pair
  }

  /** Puts the acting pair back in standby, once its passes in progress have ended. */
  async stepDown(): Promise<void> {
    const pair = this.acting
    if (!pair) return
    const done = Promise.all([pair.scheduler.deactivate(), pair.orchestrator.deactivate()]).then(() => {})
    this.#steppingDown = done
    try {
      await done
    } finally {
      if (this.#steppingDown === done) this.#steppingDown = undefined
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.#stop()
  }

  /** Stops the pair there is (at once no longer this object's), and waits for its passes to end. */
  async #stop(): Promise<void> {
    const pair = this.#pair
    this.#pair = undefined
    if (pair) await Promise.all([pair.scheduler.stop(), pair.orchestrator.stop()])
  }
}
