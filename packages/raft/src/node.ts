import { EventEmitter } from 'eventemitter3'
import { RaftCore } from './core.js'
import { isRaftError, RaftError } from './errors.js'
import { AddressBook } from './internal/address-book.js'
import { Applier } from './internal/applier.js'
import { CommitNotices } from './internal/commit-notices.js'
import { ConfChanges } from './internal/conf-changes.js'
import { forceNewCluster } from './internal/force-new-cluster.js'
import { FullDisk } from './internal/full-disk.js'
import { HardStateWrites } from './internal/hard-state-writes.js'
import { InlineWrites } from './internal/inline-writes.js'
import { coreOf } from './internal/inspect.js'
import { LeaderTransfers } from './internal/leader-transfers.js'
import { Links } from './internal/links.js'
import { type NodeSettings, nodeSettings } from './internal/node-settings.js'
import { Proposals } from './internal/proposals.js'
import { ReadWaiters } from './internal/read-waiters.js'
import { SnapshotTransfers } from './internal/snapshot-transfer.js'
import { stepDownInfo } from './internal/step-down.js'
import type {
  ProposeResult,
  RaftLogger,
  RaftNodeEvents,
  RaftNodeOptions,
  StateMachine,
} from './node-options.js'
import type { LogStorage, StorageUpdate } from './storage.js'
import { type Message, MessageType, type Ready, type Role } from './types.js'

export type {
  PeerSpec,
  ProposeResult,
  RaftLogger,
  RaftNodeEvents,
  RaftNodeOptions,
  StateMachine,
  StepDownInfo,
  UnheardMember,
} from './node-options.js'

function stoppedError(): RaftError {
  return new RaftError('STOPPED', 'the raft node is stopped')
}

/**
 * A Raft member: drives a RaftCore with timers, a Transport, a LogStorage and the user's StateMachine.
 *
 * The loop: inputs (ticks, messages, proposals, reads) go into the core at once; a microtask takes each
 * Ready in turn and sends the leader's appends, persists, sends the rest, hands committed entries to the apply
 * pipeline, then advances the core (a bare commit notice to a follower waits for a later append to carry it, or
 * for the next tick: commit-notices). Everything that arrives while a Ready is being persisted is batched into the next one. The pipeline applies in log order on its own, so a slow state machine holds back no
 * acknowledgement or vote; only while its backlog is full does the loop take no more committed entries.
 *
 * Parts in internal/: node-settings, proposals, read-waiters, conf-changes, applier and apply-queue (applying,
 * local snapshots), snapshot-transfer (streaming), links (connections).
 */
export class RaftNode extends EventEmitter<RaftNodeEvents> {
  readonly id: string
  private readonly opts: RaftNodeOptions
  private readonly settings: NodeSettings
  private readonly clock: NodeSettings['clock']
  private readonly addresses: AddressBook
  private readonly storage: LogStorage
  private readonly sm: StateMachine
  private readonly log: RaftLogger

  private core: RaftCore | null = null
  private links: Links | null = null
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new'
  private tickTimer: unknown = undefined
  private lastTickAt = 0
  private nextFullDiskHandOff = 0
  private kickScheduled = false
  private loop: Promise<void> | null = null
  /** Bare commit notices wait a moment for a later append to carry their commit index. */
  private readonly notices: CommitNotices
  private readonly hardWrites = new HardStateWrites()
  private readonly inlineWrites = new InlineWrites()
  private emittedRole: Role = 'follower'
  private emittedLeader: string | null = null
  private seenTerm = 0
  private seenLeader: string | null = null
  /** Contexts of read requests and forwarded proposals, unique on this node. */
  private ctxSeq = 0
  private readonly transfers = new LeaderTransfers()

  private readonly proposals: Proposals
  private readonly reads: ReadWaiters
  private readonly confChanges: ConfChanges
  private readonly applier: Applier
  private readonly snapshots: SnapshotTransfers
  private readonly disk: FullDisk

  constructor(options: RaftNodeOptions) {
    super()
    const settings = nodeSettings(options)
    this.settings = settings
    this.id = options.id
    this.opts = options
    this.addresses = new AddressBook(options.id, settings.addresses)
    this.storage = options.storage
    this.sm = options.stateMachine
    this.clock = settings.clock
    this.log = options.logger ?? {}
    const running = () => this.state === 'running'
    const now = () => this.clock.now()
    const nextContext = () => ++this.ctxSeq
    const schedule = () => this.schedule()
    const core = () => this.core
    this.proposals = new Proposals({
      leaderWaitMs: settings.leaderWaitMs,
      electionMaxMs: settings.electionMaxMs,
      maxAppendBytes: settings.maxAppendBytes,
      now,
      nextContext,
    })
    this.reads = new ReadWaiters({ electionMaxMs: settings.electionMaxMs, now, nextContext })
    const policy = {
      snapshotThreshold: settings.snapshotThreshold,
      trailingEntries: settings.trailingEntries,
    }
    this.confChanges = new ConfChanges({
      leaderWaitMs: settings.leaderWaitMs,
      addresses: this.addresses.byId,
      now,
      core,
      running,
      trailingEntries: () => policy.trailingEntries,
      learnAddresses: (conf) => this.addresses.learn(conf),
      track: (index, p) => this.proposals.byIndex.set(index, p),
      schedule,
      stoppedError,
    })
    this.applier = new Applier(
      {
        id: this.id,
        sm: this.sm,
        storage: this.storage,
        log: this.log,
        proposals: this.proposals,
        core,
        running,
        learnAddresses: (conf) => this.addresses.learn(conf),
        confAt: (index) => this.addresses.confAt(this.core!, index),
        afterApply: () => {
          if (this.reads.applying) this.reads.release(this.applier.applied)
          if (this.confChanges.pending) this.confChanges.submit()
        },
        releaseReads: () => {
          if (this.reads.applying) this.reads.release(this.applier.applied)
        },
        fail: (err) => this.fail(err),
        schedule,
        now,
      },
      policy,
      settings.maxApplyBacklogBytes,
    )
    this.snapshots = new SnapshotTransfers({
      id: this.id,
      clock: this.clock,
      storage: this.storage,
      chunkBytes: settings.chunkBytes,
      maxSnapshotBytes: settings.maxSnapshotBytes,
      electionMaxMs: settings.electionMaxMs,
      core,
      links: () => this.links,
      running,
      schedule,
    })
    this.disk = new FullDisk({
      storage: this.storage,
      clock: this.clock,
      running,
      onFull: (err) => {
        this.log.warn?.('the disk is full: proposals are refused until a write goes through', {
          id: this.id,
          err,
        })
        this.proposals.refuseUncommitted(this.core?.committed ?? 0, (never) => this.disk.refusal(never)!)
        // Reads would wait for the write that waits for space.
        this.reads.failAll(this.disk.refusal()!)
        this.emit('storage:full', err)
        this.handOffWhileFull()
      },
      onSpace: () => {
        this.log.warn?.('the disk takes writes again', { id: this.id })
        this.emit('storage:writable')
      },
    })
    this.notices = new CommitNotices((msgs) => {
      if (this.state === 'running') this.links!.send(msgs)
    })
    coreOf.set(this, () => this.core)
  }

  get role(): Role {
    return this.core?.role ?? 'follower'
  }

  get leaderId(): string | null {
    return this.core?.leader ?? null
  }

  get term(): number {
    return this.core?.term ?? 0
  }

  get commitIndex(): number {
    return this.core?.committed ?? 0
  }

  get appliedIndex(): number {
    return this.applier.applied
  }

  /**
   * Changes `snapshotThreshold` and `trailingEntries` while running (e.g. from replicated cluster settings);
   * the next applied entry goes by them.
   */
  setSnapshotPolicy(policy: { snapshotThreshold?: number; trailingEntries?: number }): void {
    const { snapshotThreshold: st, trailingEntries: te } = policy ?? {}
    if (st !== undefined && (!Number.isSafeInteger(st) || st < 0))
      throw new RangeError('policy.snapshotThreshold must be an integer >= 0')
    if (te !== undefined && (!Number.isSafeInteger(te) || te < 0))
      throw new RangeError('policy.trailingEntries must be an integer >= 0')
    if (st !== undefined) this.applier.policy.snapshotThreshold = st
    if (te !== undefined) this.applier.policy.trailingEntries = te
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads storage, restores the state machine, replays committed entries, and starts talking to peers. */
  async start(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.state !== 'new') throw new RaftError('STOPPED', 'start() may be called once')
    this.state = 'starting'
    // Contexts of this run start past those of an earlier one (by the clock, 1,024 a millisecond): a leader
    // answers a forward it already appended by its context (see ForwardAnswers).
    this.ctxSeq = Math.max(0, Math.floor(this.clock.now())) * 1024
    options?.signal?.throwIfAborted()
    let persisted = await this.storage.load(options)
    let voters = this.settings.voters
    if (this.opts.forceNewCluster) {
      persisted = await forceNewCluster(
        this.storage,
        persisted,
        this.id,
        this.settings.voters,
        this.addresses.get(this.id),
      )
      voters = [this.id]
    }
    if (persisted.snapshot) {
      await this.sm.restore(persisted.snapshot.data)
      this.applier.snapIndex = persisted.snapshot.meta.index
      this.addresses.learn(persisted.snapshot.meta.conf)
    }
    this.addresses.learnEntries(persisted.entries)
    if (this.state !== 'starting') return
    const o = this.opts
    const s = this.settings
    this.core = new RaftCore({
      id: this.id,
      voters,
      electionTick: s.electionTick,
      electionTickMax: s.electionTickMax,
      heartbeatTick: s.heartbeatTick,
      preVote: o.preVote ?? true,
      checkQuorum: o.checkQuorum ?? true,
      checkQuorumTick: s.checkQuorumTick,
      leaseRead: o.leaseReads ?? false,
      maxMsgBytes: s.maxAppendBytes,
      maxInflightMsgs: o.maxInflightAppends ?? 256,
      maxInflightBytes: o.maxInflightBytes ?? 32 << 20,
      maxUncommittedBytes: o.maxUncommittedBytes ?? 64 << 20,
      random: s.random,
      state: persisted,
    })
    this.applier.applied = this.core.applied
    this.hardWrites.reset(persisted.hardState)
    this.seenTerm = this.core.term
    this.emittedRole = this.core.role
    const address = o.address ?? this.addresses.get(this.id) ?? this.id
    this.links = new Links(
      o.transport,
      this.id,
      address,
      (peer) => this.addresses.get(peer) ?? peer,
      this.clock,
      s.maxProposalBytes,
      (msgs) => this.receive(msgs),
      (msg, err) => this.log.warn?.(msg, { id: this.id, err }),
      (peer, frame) => this.snapshots.receive(peer, frame),
      {
        writable: (peer) => this.snapshots.resume(peer),
        disconnected: (peer) => this.snapshots.restart(peer),
      },
    )
    await this.links.start()
    if (this.state !== 'starting') {
      await this.links.close()
      return
    }
    this.state = 'running'
    this.lastTickAt = this.clock.now()
    this.armTick()
    this.schedule()
  }

  /** Stops timers and networking; pending operations reject with STOPPED. Storage is closed. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return
    this.notices.flush()
    this.state = 'stopped'
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
    this.tickTimer = undefined
    this.failAll(stoppedError())
    this.disk.stop()
    if (this.loop) await this.loop.catch(() => {})
    await this.applier.stop()
    await this.links?.close()
    // The commit index not yet written goes out with the last write, so a clean restart resumes from it.
    const hard = this.hardWrites.takePending()
    if (hard !== null) await this.storage.save({ hardState: hard }).catch(() => {})
    await this.storage.close()
  }

  // ---------------------------------------------------------------- operations

  /** Replicates `command`; resolves after it is committed and applied on this node. */
  propose(command: Uint8Array, options?: { signal?: AbortSignal }): Promise<ProposeResult> {
    if (!(command instanceof Uint8Array)) return Promise.reject(new TypeError('command must be a Uint8Array'))
    if (command.length > this.settings.maxProposalBytes) {
      return Promise.reject(
        new RaftError(
          'TOO_LARGE',
          `command of ${command.length} bytes is over maxProposalBytes (${this.settings.maxProposalBytes})`,
        ),
      )
    }
    if (this.state !== 'running') {
      return Promise.reject(
        this.state === 'stopped' ? stoppedError() : new RaftError('STOPPED', 'not started'),
      )
    }
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(signal.reason)
    const full = this.disk.refusal(true)
    if (full) return Promise.reject(full)
    const result = this.proposals.add(command, signal)
    this.schedule()
    return result
  }

  /**
   * A linearizable read point: resolves with an index once this node has applied every write that completed
   * before the call. Read the state machine after it resolves.
   */
  readIndex(options?: { signal?: AbortSignal }): Promise<number> {
    if (this.state !== 'running') {
      return Promise.reject(
        this.state === 'stopped' ? stoppedError() : new RaftError('STOPPED', 'not started'),
      )
    }
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(signal.reason)
    const full = this.disk.refusal()
    if (full) return Promise.reject(full)
    const index = this.reads.add(this.clock.now() + this.settings.leaderWaitMs, signal)
    this.schedule()
    return index
  }

  /** The current configuration: voters and learners (of the last membership change in this node's log). */
  members(): { voters: string[]; learners: string[] } {
    const core = this.core
    if (!core) return { voters: [...this.settings.voters], learners: [] }
    return { voters: [...core.voters], learners: [...core.learners] }
  }

  /**
   * Raft's own view of which members answer (leader only): the voters and learners this leader heard from
   * within the last two election timeouts, itself included. Undefined on a follower and during the first
   * election timeout of a leadership, before every live member had the time to answer.
   */
  reachableMembers(): string[] | undefined {
    return this.core?.recentlyHeard() ?? undefined
  }

  /**
   * Adds a member (leader only). It joins as a learner: it receives the log but does not vote. With
   * `learner: false` the leader promotes it to voter once it has caught up; otherwise call `promote`.
   * Resolves once the change is applied on this node. IDs that were removed never return.
   */
  addMember(
    id: string,
    options: { address?: string; learner?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (typeof id !== 'string' || id.length === 0 || id.length > 256)
      return Promise.reject(new TypeError('id must be a non-empty string'))
    if (
      options.address !== undefined &&
      (typeof options.address !== 'string' || options.address.length === 0)
    )
      return Promise.reject(new TypeError('options.address must be a non-empty string'))
    const p = this.confChanges.add(id, options.address, options.signal)
    if (options.learner === false) {
      return p.then(() => {
        this.confChanges.autoPromote.add(id)
        return this.promote(id, options.signal ? { signal: options.signal } : undefined)
      })
    }
    return p
  }

  /** Makes learner `id` a voter once it has caught up with the leader's log (leader only). */
  promote(id: string, options?: { signal?: AbortSignal }): Promise<void> {
    if (typeof id !== 'string' || id.length === 0)
      return Promise.reject(new TypeError('id must be a non-empty string'))
    return this.confChanges.promote(id, options?.signal)
  }

  /**
   * Removes member `id` (leader only); refused with UNSAFE_CHANGE when the voters left that this leader can
   * reach would not be a majority. A leader that removes itself steps down once the change is applied.
   */
  removeMember(id: string, options?: { signal?: AbortSignal }): Promise<void> {
    if (typeof id !== 'string' || id.length === 0)
      return Promise.reject(new TypeError('id must be a non-empty string'))
    return this.confChanges.remove(id, options?.signal)
  }

  /**
   * Hands leadership to `to` (default: the most up-to-date follower). Resolves once this node sees the new
   * leader; rejects with NOT_LEADER on a non-leader, TRANSFER_FAILED after an election timeout.
   */
  transferLeadership(to?: string, options?: { signal?: AbortSignal }): Promise<void> {
    const voters = this.core?.voters ?? this.settings.voters
    if (to !== undefined && (typeof to !== 'string' || !voters.includes(to) || to === this.id)) {
      return Promise.reject(new RangeError('to must be the ID of another voter'))
    }
    if (this.state !== 'running') return Promise.reject(stoppedError())
    options?.signal?.throwIfAborted()
    const core = this.core!
    if (core.role !== 'leader')
      return Promise.reject(new RaftError('NOT_LEADER', 'this node is not the leader'))
    const target = core.transferLeadership(to)
    if (target === null) return Promise.reject(new RaftError('TRANSFER_FAILED', 'no voter to transfer to'))
    this.schedule()
    return this.transfers.wait(target, to !== undefined, this.clock.now() + 2 * this.settings.electionMaxMs)
  }

  // ---------------------------------------------------------------- loop

  private receive(msgs: Message[]): void {
    const core = this.core
    if (!core || this.state !== 'running') return
    for (let i = 0; i < msgs.length; i++) core.step(msgs[i]!)
    this.schedule()
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimeout(this.onTick, this.settings.tickMs)
  }

  private readonly onTick = (): void => {
    if (this.state !== 'running') return
    // After a stall (a long GC, a blocked event loop) the core is told how much time really passed, so a
    // leader's lease expires on real time; its timers still take one step.
    const { tickMs, electionTickMax } = this.settings
    const now = this.clock.now()
    let n = Math.floor((now - this.lastTickAt) / tickMs)
    if (n < 1) n = 1
    if (n > electionTickMax + 1) {
      n = electionTickMax + 1
      this.lastTickAt = now
    } else {
      this.lastTickAt += n * tickMs
    }
    this.core!.tick(n)
    this.notices.flush()
    this.checkDeadlines()
    this.armTick()
    this.schedule()
    if (this.hardWrites.hasPending) this.flushCommit(now)
  }

  private schedule(): void {
    if (this.kickScheduled) return
    this.kickScheduled = true
    queueMicrotask(this.kick)
  }

  private readonly kick = (): void => {
    this.kickScheduled = false
    if (this.state !== 'running') return
    if (this.proposals.queued.length > 0) {
      if (this.loop !== null) this.inlineWrites.proposedDuringWrite()
      this.proposals.submit(this.core!)
    }
    if (this.reads.queue.length > 0) this.reads.submit(this.core!)
    if (this.loop === null) {
      if (this.core!.hasReady(this.applier.room())) {
        this.loop = this.runLoop().finally(() => {
          this.loop = null
        })
      }
    } else {
      // A Ready is being persisted: what needs no persistence goes out now.
      const now = this.core!.takeMessagesNow()
      if (now.length > 0) this.send(now)
    }
  }

  private async runLoop(): Promise<void> {
    const core = this.core!
    const applier = this.applier
    try {
      while (this.state === 'running' && core.hasReady(applier.room())) {
        const rd: Ready = core.ready(applier.room())
        if (rd.entries.length > 0) this.addresses.learnEntries(rd.entries)
        if (rd.messagesNow.length > 0) {
          this.send(rd.messagesNow)
          // The connections write what was just sent in a microtask each: let those run before this Ready's
          // own work (encoding its log records, applying its committed entries), which would otherwise hold
          // the leader's appends back from the followers for as long as that work takes.
          await undefined
          if (this.state !== 'running') return
        }
        const hard = this.hardWrites.toSave(rd, this.clock.now())
        let saving: Promise<void> | null = null
        if (rd.snapshot !== null || hard !== null || rd.entries.length > 0) {
          const update: { -readonly [K in keyof StorageUpdate]: StorageUpdate[K] } = {}
          if (rd.snapshot) update.snapshot = rd.snapshot
          if (hard) update.hardState = hard
          if (rd.entries.length > 0) update.entries = rd.entries
          // A full disk is waited out (the same update again); anything else fails the node. With one
          // proposer at a time the write goes inline, on this thread without a hop through the thread pool;
          // under load to the pool, so that the loop goes on meanwhile (InlineWrites).
          const inline = rd.snapshot === null && this.inlineWrites.inline(core.role, rd.entries.length)
          saving = this.disk.save(update, inline)
          // Awaited below; this only keeps a failure from being reported as unhandled meanwhile.
          saving.catch(() => {})
          // A write in the background starts in a microtask (FileLogStorage batches the saves of a turn): let it
          // start before this Ready's committed entries are applied below, which runs the state machine on this
          // thread and would hold the write back for as long as that takes (on a follower, the apply of the
          // previous batch delayed the write of the next, and so its acknowledgement, by 0.1-0.4 ms).
          if (!inline && rd.committed.length > 0) {
            await Promise.resolve()
            if (this.state !== 'running') return
          }
        }
        // A snapshot from the leader is restored once durable, in order with the applies around it.
        if (rd.snapshot) applier.pushSnapshot(rd.snapshot, saving!)
        // Committed entries are durable on a quorum already (a leader counts itself only once its own write
        // completed), so they go to the apply pipeline while this Ready's writes are in flight: a reply never
        // waits for the write of later entries, nor for the state machine. Forward results come first so that
        // their proposals are known when applied.
        if (rd.forwards.length > 0) this.proposals.onForwards(rd.forwards)
        if (rd.committed.length > 0) applier.pushEntries(rd.committed)
        if (saving !== null) {
          await saving
          if (this.state !== 'running') return
        }
        this.observeSoftState()
        // Votes and acknowledgements: only now that what they promise is durable.
        if (rd.messages.length > 0) this.send(rd.messages)
        if (rd.readStates.length > 0) this.reads.onReadStates(rd.readStates, applier.applied)
        core.advance(rd)
        if (this.reads.applying) this.reads.release(applier.applied)
        if (this.confChanges.pending) this.confChanges.submit()
        if (this.proposals.queued.length > 0) this.proposals.submit(core)
        if (this.reads.queue.length > 0) this.reads.submit(core)
      }
    } catch (err) {
      this.fail(err)
    }
  }

  /** Writes a commit index that found no write of entries to ride along with within a tick. */
  private flushCommit(now: number): void {
    if (this.loop !== null) return
    const hard = this.hardWrites.takePending(now, this.settings.tickMs)
    if (hard === null) return
    this.loop = this.storage
      .save({ hardState: hard })
      // A commit index that found the disk full is learned again; the next write of entries finds out more.
      .catch((err) => (isRaftError(err, 'NO_SPACE') ? undefined : this.fail(err)))
      .finally(() => {
        this.loop = null
        this.schedule()
      })
  }

  /** A fatal failure (storage, state machine): stop, fail everything pending, report it. */
  private fail(err: unknown): void {
    if (this.state === 'stopped') return
    const e = err instanceof Error ? err : new Error(String(err))
    this.log.error?.('raft node failed; stopping', { id: this.id, err: e })
    this.state = 'stopped'
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
    this.disk.stop()
    this.notices.clear()
    this.failAll(new RaftError('STOPPED', `the raft node stopped: ${e.message}`, { cause: e }))
    void this.applier.stop()
    void this.links?.close()
    this.emit('error', e)
  }

  /**
   * Sends messages, streaming snapshots in chunks instead of sending Snapshot messages as they are; bare
   * commit notices wait for a later append to carry them, or for the next tick (CommitNotices).
   */
  private send(all: readonly Message[]): void {
    const msgs = this.notices.filter(all)
    if (msgs.length === 0) return
    let plain = true
    for (let i = 0; i < msgs.length; i++) if (msgs[i]!.type === MessageType.Snapshot) plain = false
    if (plain) {
      this.links!.send(msgs)
      return
    }
    const rest: Message[] = []
    for (const m of msgs) {
      if (m.type === MessageType.Snapshot) void this.snapshots.start(m)
      else rest.push(m)
    }
    if (rest.length > 0) this.links!.send(rest)
  }

  /** Leader/term changes: emit events, fail what lost its leader, resubmit what waited for one. */
  private observeSoftState(): void {
    const core = this.core!
    const leader = core.leader
    const term = core.term
    if (leader !== this.seenLeader || term !== this.seenTerm) {
      const lost = (this.seenLeader !== null && leader !== this.seenLeader) || term !== this.seenTerm
      this.seenLeader = leader
      this.seenTerm = term
      if (lost) this.proposals.failUncommitted(core.committed)
      if (leader !== null) this.proposals.leaderKnown()
      // Reads in flight to an old leader are retried against the new one.
      this.reads.leaderChanged(leader !== null)
    }
    // A removed member is left out of replication once its removal commits: what it has not seen committed
    // may never be, so its proposals (pending, or forwarded from now on) settle as unknown, not never.
    if (core.role !== 'leader' && core.removed.has(this.id)) this.proposals.failUncommitted(core.committed)
    if (core.role !== this.emittedRole) {
      this.emittedRole = core.role
      this.emit('role:change', core.role)
    }
    const stepDown = core.takeStepDown()
    if (leader !== this.emittedLeader) {
      this.emittedLeader = leader
      if (stepDown !== null) {
        const info = stepDownInfo(stepDown, this.settings.tickMs)
        this.log.warn?.(`stepped down as leader: ${info.text}`, { id: this.id, term: info.term })
        this.emit('leader:change', leader, term, info)
      } else this.emit('leader:change', leader, term)
    }
    if (leader !== null && leader !== this.id) this.transfers.leaderElected(leader)
  }

  private checkDeadlines(): void {
    const now = this.clock.now()
    const core = this.core!
    if (this.snapshots.active) this.snapshots.check(now)
    this.confChanges.checkDeadlines(now)
    this.proposals.checkDeadlines(now, core)
    this.reads.checkDeadlines(now, core.leader !== null, core.committed)
    this.transfers.checkDeadlines(now)
    if (this.disk.full) this.handOffWhileFull()
  }

  /**
   * A leader whose disk is full refuses every proposal; a follower with room can take them. So it hands
   * leadership over (hashicorp/raft steps down on a failed log write), trying again every two election
   * timeouts while its disk stays full and it still leads.
   */
  private handOffWhileFull(): void {
    const core = this.core
    const now = this.clock.now()
    if (core?.role !== 'leader' || core.voters.length < 2 || now < this.nextFullDiskHandOff) return
    this.nextFullDiskHandOff = now + 2 * this.settings.electionMaxMs
    this.log.warn?.('the disk is full: handing leadership to a follower', { id: this.id })
    this.transferLeadership().catch((err: Error) =>
      this.log.warn?.('leadership not handed over', { id: this.id, err }),
    )
  }

  private failAll(err: RaftError): void {
    this.proposals.failAll(err)
    this.reads.failAll(err)
    this.transfers.failAll(err)
    this.confChanges.failAll(err)
  }
}
