import type { Clock, Transport } from '@swarmkit/transport'
import { EventEmitter } from 'eventemitter3'
import { RaftError } from './errors.js'
import { RaftCore } from './internal/core.js'
import { coreOf } from './internal/inspect.js'
import { Links } from './internal/links.js'
import { type Entry, EntryType, type LogStorage } from './storage.js'
import type { ForwardResult, Message, ReadState, Ready, Role } from './types.js'

/** The user's replicated state machine. `apply` must be deterministic: every member applies the same commands. */
export interface StateMachine {
  /** Applies one committed command; the result is handed to the proposer on this node. */
  apply(command: Uint8Array, index: number): unknown | Promise<unknown>
  /** Serializes the whole state (used by snapshots). */
  snapshot(): Uint8Array | Promise<Uint8Array>
  /** Replaces the whole state with a snapshot. */
  restore(snapshot: Uint8Array): void | Promise<void>
}

/** A member: its ID, and for real networks its transport address (default: the ID). */
export type PeerSpec = string | { readonly id: string; readonly address?: string }

/** Injected logger; silent by default. */
export interface RaftLogger {
  debug?(message: string, fields?: Record<string, unknown>): void
  warn?(message: string, fields?: Record<string, unknown>): void
  error?(message: string, fields?: Record<string, unknown>): void
}

export interface RaftNodeOptions {
  /** This member's ID. */
  readonly id: string
  /** Bootstrap voters (used when storage holds no configuration). */
  readonly peers: readonly PeerSpec[]
  /** Any `@swarmkit/transport` Transport. Its clock is used unless `clock` is given. */
  readonly transport: Transport
  readonly storage: LogStorage
  readonly stateMachine: StateMachine
  /** Address to listen on (default: this member's address in `peers`, else its ID). */
  readonly address?: string
  /** Election timeout in ms, drawn uniformly from [min, max] per election. Default [150, 300]. */
  readonly electionTimeoutMs?: number | readonly [number, number]
  /** Default 50 ms. */
  readonly heartbeatIntervalMs?: number
  /** Default true. */
  readonly preVote?: boolean
  /** Default true. */
  readonly checkQuorum?: boolean
  /** Serve readIndex from the leader's lease without a heartbeat round (needs checkQuorum). Default false. */
  readonly leaseReads?: boolean
  /** Largest command accepted by `propose`; larger ones reject with TOO_LARGE. Default 1 MiB. */
  readonly maxProposalBytes?: number
  /** Entry bytes per append message. Default 1 MiB. */
  readonly maxAppendBytes?: number
  /** Appends in flight per follower. Default 256. */
  readonly maxInflightAppends?: number
  /** Entry bytes in flight per follower. Default 32 MiB. */
  readonly maxInflightBytes?: number
  /** A leader refuses proposals (PROPOSAL_DROPPED) while this much is appended but uncommitted. Default 64 MiB. */
  readonly maxUncommittedBytes?: number
  /** How long propose/readIndex wait for a leader before NO_LEADER. Default 5 x the maximum election timeout. */
  readonly leaderWaitMs?: number
  /** Time source and timers (default: the transport's clock, else real time). */
  readonly clock?: Clock
  /** Uniform [0, 1) random source for election timeouts (default Math.random). */
  readonly random?: () => number
  readonly logger?: RaftLogger
}

export interface RaftNodeEvents {
  /** The known leader changed (null while there is none). */
  'leader:change': (leaderId: string | null, term: number) => void
  'role:change': (role: Role) => void
  /** A fatal failure (storage); the node stops. The failing operations reject as well. */
  error: (err: Error) => void
}

/** What `propose` resolves with once the command is committed and applied on this node. */
export interface ProposeResult {
  readonly index: number
  readonly term: number
  readonly result: unknown
}

interface Proposal {
  readonly data: Uint8Array
  readonly resolve: (r: ProposeResult) => void
  readonly reject: (e: Error) => void
  /** When waiting for a leader must end (set when the wait starts; 0 before). */
  deadline: number
  term: number
  done: boolean
}

interface ReadWaiter {
  readonly resolve: (index: number) => void
  readonly reject: (e: Error) => void
  readonly deadline: number
  done: boolean
}

interface ReadBatch {
  readonly reads: ReadWaiter[]
  readonly sentAt: number
}

interface TransferWaiter {
  readonly target: string
  /** The caller named the target (otherwise any other new leader will do). */
  readonly explicit: boolean
  readonly resolve: () => void
  readonly reject: (e: Error) => void
  readonly deadline: number
}

const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

function positive(name: string, v: unknown, def: number): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new RangeError(`${name} must be a positive number`)
  return v
}

function resolveRead(r: ReadWaiter, index: number): void {
  if (r.done) return
  r.done = true
  r.resolve(index)
}

function stoppedError(): RaftError {
  return new RaftError('STOPPED', 'the raft node is stopped')
}

/**
 * A Raft member: drives a RaftCore with timers, a Transport, a LogStorage and the user's StateMachine.
 *
 * The loop: inputs (ticks, messages, proposals, reads) go into the core at once; a microtask takes each
 * Ready in turn and sends the leader's appends, persists, sends the rest, applies committed entries, then
 * advances the core. Everything that arrives while a Ready is being persisted is batched into the next one.
 */
export class RaftNode extends EventEmitter<RaftNodeEvents> {
  readonly id: string
  private readonly opts: RaftNodeOptions
  private readonly clock: Clock
  private readonly random: () => number
  private readonly addresses = new Map<string, string>()
  private readonly voterIds: string[]
  private readonly tickMs: number
  private readonly heartbeatTick: number
  private readonly electionTick: number
  private readonly electionTickMax: number
  private readonly electionMaxMs: number
  private readonly leaderWaitMs: number
  private readonly maxProposalBytes: number
  private readonly maxAppendBytes: number
  private readonly storage: LogStorage
  private readonly sm: StateMachine
  private readonly log: RaftLogger

  private core: RaftCore | null = null
  private links: Links | null = null
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new'
  private tickTimer: unknown = undefined
  private lastTickAt = 0
  private kickScheduled = false
  private loop: Promise<void> | null = null
  private applied = 0
  private emittedRole: Role = 'follower'
  private emittedLeader: string | null = null
  private seenTerm = 0
  private seenLeader: string | null = null
  private ctxSeq = 0

  private queued: Proposal[] = []
  private waitingLeader: Proposal[] = []
  private readonly forwarded = new Map<number, { items: Proposal[]; sentAt: number }>()
  private readonly byIndex = new Map<number, Proposal>()
  private readQueue: ReadWaiter[] = []
  private readWaitsLeader: ReadWaiter[] = []
  private readonly readBatches = new Map<number, ReadBatch>()
  private readWaits: { index: number; reads: ReadWaiter[] }[] = []
  private transfers: TransferWaiter[] = []

  constructor(options: RaftNodeOptions) {
    super()
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
    const { id, peers, transport, storage, stateMachine } = options
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
      throw new TypeError('options.id must be a non-empty string')
    }
    if (!Array.isArray(peers) || peers.length === 0)
      throw new TypeError('options.peers must be a non-empty array')
    const voters: string[] = []
    for (const p of peers) {
      const pid = typeof p === 'string' ? p : p?.id
      if (typeof pid !== 'string' || pid.length === 0 || pid.length > 256) {
        throw new TypeError('options.peers must hold IDs or { id, address } objects')
      }
      if (voters.includes(pid)) throw new TypeError(`options.peers lists ${pid} twice`)
      voters.push(pid)
      const addr = typeof p === 'string' ? undefined : p.address
      if (addr !== undefined && typeof addr !== 'string')
        throw new TypeError('options.peers[].address must be a string')
      this.addresses.set(pid, addr ?? pid)
    }
    if (!transport || typeof transport.listen !== 'function' || typeof transport.dial !== 'function') {
      throw new TypeError('options.transport must be a Transport')
    }
    if (!storage || typeof storage.load !== 'function' || typeof storage.save !== 'function') {
      throw new TypeError('options.storage must be a LogStorage')
    }
    if (!stateMachine || typeof stateMachine.apply !== 'function') {
      throw new TypeError('options.stateMachine must have apply, snapshot and restore')
    }
    let eMin = 150
    let eMax = 300
    const et = options.electionTimeoutMs
    if (typeof et === 'number') {
      eMin = positive('options.electionTimeoutMs', et, 150)
      eMax = 2 * eMin
    } else if (et !== undefined) {
      if (!Array.isArray(et) || et.length !== 2)
        throw new TypeError('options.electionTimeoutMs must be a number or [min, max]')
      eMin = positive('options.electionTimeoutMs[0]', et[0], 150)
      eMax = positive('options.electionTimeoutMs[1]', et[1], 300)
      if (eMax < eMin) throw new RangeError('options.electionTimeoutMs: max must be >= min')
    }
    const hb = positive('options.heartbeatIntervalMs', options.heartbeatIntervalMs, 50)
    if (hb >= eMin) throw new RangeError('options.heartbeatIntervalMs must be below the election timeout')
    // Five ticks per heartbeat: fine enough for randomized timeouts, coarse enough to cost nothing idle.
    this.tickMs = Math.max(1, hb / 5)
    this.heartbeatTick = Math.max(1, Math.round(hb / this.tickMs))
    this.electionTick = Math.max(this.heartbeatTick + 1, Math.round(eMin / this.tickMs))
    this.electionTickMax = Math.max(this.electionTick, Math.round(eMax / this.tickMs))
    this.electionMaxMs = eMax
    this.leaderWaitMs = positive('options.leaderWaitMs', options.leaderWaitMs, 5 * eMax)
    this.maxProposalBytes = positive('options.maxProposalBytes', options.maxProposalBytes, 1 << 20)
    this.maxAppendBytes = positive('options.maxAppendBytes', options.maxAppendBytes, 1 << 20)
    positive('options.maxInflightAppends', options.maxInflightAppends, 256)
    positive('options.maxInflightBytes', options.maxInflightBytes, 32 << 20)
    positive('options.maxUncommittedBytes', options.maxUncommittedBytes, 64 << 20)
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw new TypeError('options.random must be a function')
    }
    this.id = id
    this.opts = options
    this.voterIds = voters
    this.storage = storage
    this.sm = stateMachine
    this.clock = options.clock ?? transport.clock ?? realClock
    this.random = options.random ?? Math.random
    this.log = options.logger ?? {}
    coreOf.set(this, () => this.core)
  }

  // ---------------------------------------------------------------- state

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
    return this.applied
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads storage, restores the state machine, replays committed entries, and starts talking to peers. */
  async start(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.state !== 'new') throw new RaftError('STOPPED', 'start() may be called once')
    this.state = 'starting'
    options?.signal?.throwIfAborted()
    const persisted = await this.storage.load(options)
    if (persisted.snapshot) await this.sm.restore(persisted.snapshot.data)
    if (this.state !== 'starting') return
    const o = this.opts
    this.core = new RaftCore({
      id: this.id,
      voters: this.voterIds,
      electionTick: this.electionTick,
      electionTickMax: this.electionTickMax,
      heartbeatTick: this.heartbeatTick,
      preVote: o.preVote ?? true,
      checkQuorum: o.checkQuorum ?? true,
      leaseRead: o.leaseReads ?? false,
      maxMsgBytes: this.maxAppendBytes,
      maxInflightMsgs: o.maxInflightAppends ?? 256,
      maxInflightBytes: o.maxInflightBytes ?? 32 << 20,
      maxUncommittedBytes: o.maxUncommittedBytes ?? 64 << 20,
      random: this.random,
      state: persisted,
    })
    this.applied = this.core.applied
    this.seenTerm = this.core.term
    this.emittedRole = this.core.role
    const address = o.address ?? this.addresses.get(this.id) ?? this.id
    this.links = new Links(
      o.transport,
      this.id,
      address,
      (peer) => this.addresses.get(peer),
      this.clock,
      this.maxProposalBytes,
      (msgs) => this.receive(msgs),
      (msg, err) => this.log.warn?.(msg, { id: this.id, err }),
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
    this.state = 'stopped'
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
    this.tickTimer = undefined
    this.failAll(stoppedError())
    if (this.loop) await this.loop.catch(() => {})
    await this.links?.close()
    await this.storage.close()
  }

  // ---------------------------------------------------------------- operations

  /** Replicates `command`; resolves after it is committed and applied on this node. */
  propose(command: Uint8Array, options?: { signal?: AbortSignal }): Promise<ProposeResult> {
    if (!(command instanceof Uint8Array)) return Promise.reject(new TypeError('command must be a Uint8Array'))
    if (command.length > this.maxProposalBytes) {
      return Promise.reject(
        new RaftError(
          'TOO_LARGE',
          `command of ${command.length} bytes is over maxProposalBytes (${this.maxProposalBytes})`,
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
    return new Promise<ProposeResult>((resolve, reject) => {
      const p: Proposal = {
        data: command,
        resolve,
        reject,
        deadline: 0,
        term: 0,
        done: false,
      }
      if (signal) {
        const onAbort = () => this.settle(p, signal.reason)
        signal.addEventListener('abort', onAbort, { once: true })
      }
      this.queued.push(p)
      this.schedule()
    })
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
    return new Promise<number>((resolve, reject) => {
      const r: ReadWaiter = { resolve, reject, deadline: this.clock.now() + this.leaderWaitMs, done: false }
      if (signal) {
        signal.addEventListener(
          'abort',
          () => {
            if (!r.done) {
              r.done = true
              r.reject(signal.reason)
            }
          },
          { once: true },
        )
      }
      this.readQueue.push(r)
      this.schedule()
    })
  }

  /**
   * Hands leadership to `to` (default: the most up-to-date follower). Resolves once this node sees the new
   * leader; rejects with NOT_LEADER on a non-leader, TRANSFER_FAILED after an election timeout.
   */
  transferLeadership(to?: string, options?: { signal?: AbortSignal }): Promise<void> {
    const voters = this.core?.voters ?? this.voterIds
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
    return new Promise<void>((resolve, reject) => {
      this.transfers.push({
        target,
        explicit: to !== undefined,
        resolve,
        reject,
        deadline: this.clock.now() + 2 * this.electionMaxMs,
      })
    })
  }

  // ---------------------------------------------------------------- loop

  private receive(msgs: Message[]): void {
    const core = this.core
    if (!core || this.state !== 'running') return
    for (let i = 0; i < msgs.length; i++) core.step(msgs[i]!)
    this.schedule()
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimeout(this.onTick, this.tickMs)
  }

  private readonly onTick = (): void => {
    if (this.state !== 'running') return
    // Ticks follow the clock, not the timer count: after a stall (a long GC, a blocked event loop) the missed
    // ticks are replayed, so election timers and lease reads see the real elapsed time.
    const now = this.clock.now()
    let n = Math.floor((now - this.lastTickAt) / this.tickMs)
    if (n < 1) n = 1
    if (n > this.electionTickMax + 1) {
      n = this.electionTickMax + 1
      this.lastTickAt = now
    } else {
      this.lastTickAt += n * this.tickMs
    }
    for (let i = 0; i < n; i++) this.core!.tick()
    this.checkDeadlines()
    this.armTick()
    this.schedule()
  }

  private schedule(): void {
    if (this.kickScheduled) return
    this.kickScheduled = true
    queueMicrotask(this.kick)
  }

  private readonly kick = (): void => {
    this.kickScheduled = false
    if (this.state !== 'running') return
    if (this.queued.length > 0) this.submitProposals()
    if (this.readQueue.length > 0) this.submitReads()
    if (this.loop === null && this.core!.hasReady()) {
      this.loop = this.runLoop().finally(() => {
        this.loop = null
      })
    }
  }

  private async runLoop(): Promise<void> {
    const core = this.core!
    const links = this.links!
    try {
      while (this.state === 'running' && core.hasReady()) {
        const rd: Ready = core.ready()
        if (rd.messagesNow.length > 0) links.send(rd.messagesNow)
        if (rd.hardState !== null || rd.entries.length > 0) {
          const update: { hardState?: typeof rd.hardState & object; entries?: typeof rd.entries } = {}
          if (rd.hardState) update.hardState = rd.hardState
          if (rd.entries.length > 0) update.entries = rd.entries
          await this.storage.save(update)
          if (this.state !== 'running') return
        }
        this.observeSoftState()
        if (rd.messages.length > 0) links.send(rd.messages)
        if (rd.forwards.length > 0) this.onForwards(rd.forwards)
        if (rd.readStates.length > 0) this.onReadStates(rd.readStates)
        if (rd.committed.length > 0) {
          await this.applyEntries(rd.committed)
          if (this.state !== 'running') return
        }
        core.advance(rd)
        if (this.readWaits.length > 0) this.releaseReads()
        if (this.queued.length > 0) this.submitProposals()
        if (this.readQueue.length > 0) this.submitReads()
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      this.log.error?.('raft node failed; stopping', { id: this.id, err: e })
      this.state = 'stopped'
      if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
      this.failAll(new RaftError('STOPPED', `the raft node stopped: ${e.message}`, { cause: e }))
      void this.links?.close()
      this.emit('error', e)
    }
  }

  private async applyEntries(entries: readonly Entry[]): Promise<void> {
    const sm = this.sm
    const byIndex = this.byIndex
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      const p = byIndex.size > 0 ? byIndex.get(e.index) : undefined
      if (p !== undefined) byIndex.delete(e.index)
      const data = e.data
      if (e.type === EntryType.Normal && data.length > 0) {
        let result: unknown
        let failed: unknown
        let threw = false
        try {
          result = sm.apply(data, e.index)
          if (
            result !== null &&
            typeof result === 'object' &&
            typeof (result as Promise<unknown>).then === 'function'
          ) {
            result = await result
          }
        } catch (err) {
          threw = true
          failed = err
        }
        this.applied = e.index
        if (p !== undefined && !p.done) {
          p.done = true
          if (p.term !== e.term)
            p.reject(new RaftError('PROPOSAL_DROPPED', `log index ${e.index} went to another entry`))
          else if (threw) p.reject(failed instanceof Error ? failed : new Error(String(failed)))
          else p.resolve({ index: e.index, term: e.term, result })
        }
        if (this.state !== 'running') return
      } else {
        this.applied = e.index
        if (p !== undefined && !p.done) {
          p.done = true
          p.reject(new RaftError('PROPOSAL_DROPPED', `log index ${e.index} went to another entry`))
        }
      }
    }
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
      if (lost) this.failUncommitted()
      if (leader !== null) {
        if (this.waitingLeader.length > 0) {
          for (const p of this.waitingLeader) this.queued.push(p)
          this.waitingLeader = []
        }
        if (this.readWaitsLeader.length > 0) {
          for (const r of this.readWaitsLeader) this.readQueue.push(r)
          this.readWaitsLeader = []
        }
      }
      // Reads in flight to an old leader are retried against the new one.
      if (this.readBatches.size > 0) {
        for (const b of this.readBatches.values()) for (const r of b.reads) this.readQueue.push(r)
        this.readBatches.clear()
      }
    }
    if (core.role !== this.emittedRole) {
      this.emittedRole = core.role
      this.emit('role:change', core.role)
    }
    if (leader !== this.emittedLeader) {
      this.emittedLeader = leader
      this.emit('leader:change', leader, term)
    }
    if (this.transfers.length > 0 && leader !== null && leader !== this.id) {
      const ts = this.transfers
      this.transfers = []
      for (const t of ts) {
        if (t.target === leader || !t.explicit) t.resolve()
        else t.reject(new RaftError('TRANSFER_FAILED', `${leader} became leader instead of ${t.target}`))
      }
    }
  }

  private failUncommitted(): void {
    const commit = this.core!.committed
    const lost = () => new RaftError('LOST_LEADERSHIP', 'leadership changed before the proposal committed')
    for (const [index, p] of this.byIndex) {
      if (index > commit) {
        this.byIndex.delete(index)
        this.settle(p, lost())
      }
    }
    for (const f of this.forwarded.values()) for (const p of f.items) this.settle(p, lost())
    this.forwarded.clear()
  }

  private submitProposals(): void {
    const core = this.core!
    const items = this.queued
    this.queued = []
    if (core.role === 'leader') {
      const data: Uint8Array[] = new Array(items.length)
      let n = 0
      for (const p of items) if (!p.done) data[n++] = p.data
      data.length = n
      if (n === 0) return
      const r = core.propose(data)
      if (r.reason !== 0) {
        for (const p of items)
          this.settle(p, new RaftError('PROPOSAL_DROPPED', 'the leader refused the proposal'))
        return
      }
      let k = r.index
      for (const p of items) {
        if (p.done) continue
        p.term = r.term
        this.byIndex.set(k++, p)
      }
      return
    }
    if (core.leader === null || core.role === 'learner') {
      for (const p of items) if (!p.done) this.waitForLeader(p)
      return
    }
    // Forward in chunks that fit an append.
    let start = 0
    while (start < items.length) {
      let end = start
      let bytes = 0
      const data: Uint8Array[] = []
      const chunk: Proposal[] = []
      while (
        end < items.length &&
        (chunk.length === 0 || bytes + items[end]!.data.length <= this.maxAppendBytes)
      ) {
        const p = items[end++]!
        if (p.done) continue
        bytes += p.data.length
        data.push(p.data)
        chunk.push(p)
      }
      start = end
      if (chunk.length === 0) continue
      const ctx = ++this.ctxSeq
      core.propose(data, ctx)
      this.forwarded.set(ctx, { items: chunk, sentAt: this.clock.now() })
    }
  }

  private waitForLeader(p: Proposal): void {
    if (p.deadline === 0) p.deadline = this.clock.now() + this.leaderWaitMs
    this.waitingLeader.push(p)
  }

  private onForwards(results: readonly ForwardResult[]): void {
    for (const r of results) {
      const f = this.forwarded.get(r.context)
      if (!f) continue
      this.forwarded.delete(r.context)
      if (r.reason === 0) {
        let k = r.index
        for (const p of f.items) {
          p.term = r.term
          if (!p.done) {
            if (k <= this.applied) {
              // Applied before the answer arrived: its outcome is unknown here.
              this.settle(
                p,
                new RaftError('LOST_LEADERSHIP', 'the proposal was applied before its position was known'),
              )
            } else this.byIndex.set(k, p)
          }
          k++
        }
      } else if (r.reason === 1) {
        for (const p of f.items) if (!p.done) this.waitForLeader(p)
      } else {
        for (const p of f.items)
          this.settle(p, new RaftError('PROPOSAL_DROPPED', 'the leader refused the proposal'))
      }
    }
    // Refused as "not leader": retried on the next tick or leader change, never in a tight loop.
  }

  private submitReads(): void {
    const reads = this.readQueue.filter((r) => !r.done)
    this.readQueue = []
    if (reads.length === 0) return
    const ctx = ++this.ctxSeq
    if (this.core!.readIndex(ctx)) this.readBatches.set(ctx, { reads, sentAt: this.clock.now() })
    else this.readWaitsLeader.push(...reads)
  }

  private onReadStates(states: readonly ReadState[]): void {
    for (const s of states) {
      const b = this.readBatches.get(s.context)
      if (!b) continue
      this.readBatches.delete(s.context)
      if (s.index < 0) {
        for (const r of b.reads) if (!r.done) this.readWaitsLeader.push(r)
        continue
      }
      if (s.index <= this.applied) {
        for (const r of b.reads) resolveRead(r, s.index)
        continue
      }
      const w = { index: s.index, reads: b.reads }
      const ws = this.readWaits
      let i = ws.length
      while (i > 0 && ws[i - 1]!.index > s.index) i--
      ws.splice(i, 0, w)
    }
  }

  private releaseReads(): void {
    const ws = this.readWaits
    let k = 0
    while (k < ws.length && ws[k]!.index <= this.applied) {
      const w = ws[k++]!
      for (const r of w.reads) resolveRead(r, w.index)
    }
    if (k > 0) this.readWaits = ws.slice(k)
  }

  private checkDeadlines(): void {
    const now = this.clock.now()
    const core = this.core!
    if (this.waitingLeader.length > 0) {
      if (core.leader !== null && core.role !== 'learner') {
        for (const p of this.waitingLeader) this.queued.push(p)
        this.waitingLeader = []
      } else {
        this.waitingLeader = this.waitingLeader.filter((p) => {
          if (p.done) return false
          if (now < p.deadline) return true
          this.settle(p, new RaftError('NO_LEADER', 'no leader within the wait'))
          return false
        })
      }
    }
    if (this.forwarded.size > 0) {
      for (const [ctx, f] of this.forwarded) {
        if (now - f.sentAt < 2 * this.electionMaxMs) continue
        this.forwarded.delete(ctx)
        for (const p of f.items) this.settle(p, new RaftError('LOST_LEADERSHIP', 'no answer from the leader'))
      }
    }
    if (this.readWaitsLeader.length > 0) {
      const again: ReadWaiter[] = []
      for (const r of this.readWaitsLeader) {
        if (r.done) continue
        if (now >= r.deadline) {
          r.done = true
          r.reject(new RaftError('NO_LEADER', 'no leader within the wait'))
        } else again.push(r)
      }
      this.readWaitsLeader = []
      if (core.leader !== null) this.readQueue.push(...again)
      else this.readWaitsLeader = again
    }
    if (this.readBatches.size > 0) {
      // A read round can be lost with its messages: ask again after an election timeout.
      for (const [ctx, b] of this.readBatches) {
        if (now - b.sentAt < this.electionMaxMs) continue
        this.readBatches.delete(ctx)
        for (const r of b.reads) {
          if (r.done) continue
          if (now >= r.deadline) {
            r.done = true
            r.reject(new RaftError('NO_LEADER', 'no confirmed leader within the wait'))
          } else this.readQueue.push(r)
        }
      }
    }
    if (this.transfers.length > 0) {
      this.transfers = this.transfers.filter((t) => {
        if (now < t.deadline) return true
        t.reject(new RaftError('TRANSFER_FAILED', `leadership did not move to ${t.target}`))
        return false
      })
    }
  }

  private settle(p: Proposal, err: unknown): void {
    if (p.done) return
    p.done = true
    p.reject(err as Error)
  }

  private failAll(err: RaftError): void {
    for (const p of this.queued) this.settle(p, err)
    for (const p of this.waitingLeader) this.settle(p, err)
    for (const f of this.forwarded.values()) for (const p of f.items) this.settle(p, err)
    for (const p of this.byIndex.values()) this.settle(p, err)
    this.queued = []
    this.waitingLeader = []
    this.forwarded.clear()
    this.byIndex.clear()
    const reads: ReadWaiter[] = [...this.readQueue, ...this.readWaitsLeader]
    for (const b of this.readBatches.values()) reads.push(...b.reads)
    for (const w of this.readWaits) reads.push(...w.reads)
    for (const r of reads) {
      if (!r.done) {
        r.done = true
        r.reject(err)
      }
    }
    this.readQueue = []
    this.readWaitsLeader = []
    this.readBatches.clear()
    this.readWaits = []
    for (const t of this.transfers) t.reject(err)
    this.transfers = []
  }
}
