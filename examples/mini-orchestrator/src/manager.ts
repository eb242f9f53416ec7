// One manager of a small orchestrator: a raft member whose state machine is the cluster store, running the
// scheduler and the orchestrators while it leads. This is the core of a swarm manager without the Docker API,
// the CA or a worker protocol: about what you write to build your own control plane on the packages.
import { type LogStorage, MemoryLogStorage, RaftNode, type RaftNode as RaftNodeType } from '@swarmkit/raft'
import { createOrchestrator, createScheduler, type Orchestrator, type Scheduler } from '@swarmkit/scheduler'
import { ClusterStore } from '@swarmkit/store'
import type { Transport } from '@swarmkit/transport'

export interface ManagerOptions {
  readonly id: string
  /** Every manager's id (the same list on each; a transport address per id). */
  readonly peers: readonly string[]
  readonly transport: Transport
  /** Default: in memory. Use `FileLogStorage.open(dir, …)` to survive restarts. */
  readonly storage?: LogStorage
  /** Raft timing (defaults suit a LAN; tests on a loaded machine may want them longer). */
  readonly electionTimeoutMs?: readonly [number, number]
  readonly heartbeatIntervalMs?: number
  /** Where the manager says what it does (default: nowhere). */
  readonly log?: (line: string) => void
}

/** A running manager. Writes go through any manager; raft forwards them to the leader. */
export class Manager {
  readonly id: string
  readonly raft: RaftNodeType
  /** This manager's replica of the cluster state. */
  readonly store: ClusterStore
  #scheduler: Scheduler | undefined
  #orchestrator: Orchestrator | undefined
  #leading = false
  readonly #log: (line: string) => void

  private constructor(options: ManagerOptions) {
    this.id = options.id
    this.#log = options.log ?? (() => {})
    // The store turns each transaction into one raft command and applies commands as they commit, on every
    // manager in the same order. `raft` is assigned right below: the store only proposes after start().
    let raft: RaftNode | undefined
    this.store = new ClusterStore({
      proposer: (command, o) => {
        if (!raft) return Promise.reject(new Error('raft is not running'))
        return raft.propose(command, o).then((r) => r.result)
      },
    })
    raft = new RaftNode({
      id: options.id,
      peers: [...options.peers],
      transport: options.transport,
      storage: options.storage ?? new MemoryLogStorage(),
      stateMachine: this.store,
      ...(options.electionTimeoutMs
        ? { electionTimeoutMs: [...options.electionTimeoutMs] as [number, number] }
        : {}),
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    })
    this.raft = raft
    // Only the leader reconciles: it alone turns specs into tasks and places them. A new leader starts from
    // the replicated state, so nothing is lost when the old one dies.
    raft.on('leader:change', (leader) => this.#onLeaderChange(leader))
  }

  static async start(options: ManagerOptions): Promise<Manager> {
    const manager = new Manager(options)
    await manager.raft.start()
    return manager
  }

  get isLeader(): boolean {
    return this.#leading
  }

  #onLeaderChange(leader: string | null): void {
    const leading = leader === this.id
    if (leading === this.#leading) return
    this.#leading = leading
    if (leading) {
      this.#log(`${this.id}: leading; starting the scheduler and the orchestrators`)
      this.#scheduler = createScheduler({ store: this.store })
      this.#orchestrator = createOrchestrator({ store: this.store })
      // A proposal can fail while leadership moves; the loops retry from the store's state, so only report it.
      this.#scheduler.on('error', (err: unknown) =>
        this.#log(`${this.id}: scheduler: ${(err as Error).message}`),
      )
      this.#orchestrator.on('error', (err: unknown) =>
        this.#log(`${this.id}: orchestrator: ${(err as Error).message}`),
      )
      this.#scheduler.start()
      this.#orchestrator.start()
    } else {
      this.#log(`${this.id}: not leading (leader: ${leader ?? 'none'})`)
      void this.#stopReconciling()
    }
  }

  async #stopReconciling(): Promise<void> {
    const s = this.#scheduler
    const o = this.#orchestrator
    this.#scheduler = undefined
    this.#orchestrator = undefined
    await Promise.all([s?.stop(), o?.stop()])
  }

  /** Stops reconciling and leaves raft running no more; the store keeps its last state for reading. */
  async stop(): Promise<void> {
    this.#leading = false
    await this.#stopReconciling()
    await this.raft.stop()
  }
}
