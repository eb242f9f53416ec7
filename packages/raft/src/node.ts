import type { Clock, Transport } from '@swarmkit/transport'
import { EventEmitter } from 'eventemitter3'
import { RaftError } from './errors.js'
import { ApplyQueue, type ApplyTask } from './internal/apply-queue.js'
import { decodeConf, encodeConf } from './internal/conf.js'
import { RaftCore } from './internal/core.js'
import { coreOf } from './internal/inspect.js'
import { Links } from './internal/links.js'
import {
  ACK,
  ACK_ABORT,
  ACK_GAP,
  ACK_OK,
  CHUNK,
  decodeAck,
  decodeChunk,
  encodeAck,
  encodeChunk,
} from './internal/snapshot-wire.js'
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type LogStorage,
  type PersistedState,
  type Snapshot,
  type SnapshotMeta,
  type StorageUpdate,
} from './storage.js'
import {
  type ForwardResult,
  type Message,
  MessageType,
  type ReadState,
  type Ready,
  type Role,
} from './types.js'

/** The user's replicated state machine. `apply` must be deterministic: every member applies the same commands. */
export interface StateMachine {
  /** Applies one committed command (of log `index`, appended in `term`); the result goes to its proposer here. */
  apply(command: Uint8Array, index: number, term?: number): unknown | Promise<unknown>
  /**
   * Serializes the whole state (for snapshots). Called between two applies, so it must capture the state as of
   * that call; if it returns a promise, applying goes on while it resolves (copy or freeze what it needs first).
   */
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

/** What a {@link RaftNode} is built from: identity, peers, transport, storage, state machine, and tuning. */
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
  /**
   * Committed command bytes waiting for a slow state machine. Applying runs beside the node's raft duties
   * (acknowledgements, votes, heartbeats go on); past this backlog the node takes no more committed entries
   * until the state machine catches up. Default 64 MiB.
   */
  readonly maxApplyBacklogBytes?: number
  /** How long propose/readIndex wait for a leader before NO_LEADER. Default 5 x the maximum election timeout. */
  readonly leaderWaitMs?: number
  /**
   * Take a snapshot of the state machine after this many entries were applied since the last one, and compact
   * the log behind it. Default 10,000; 0 turns automatic snapshots off.
   */
  readonly snapshotThreshold?: number
  /** Entries kept in the log behind a snapshot, so that slightly lagging followers need no snapshot. Default 500. */
  readonly trailingEntries?: number
  /** Snapshot data per transfer chunk. Default and maximum 1 MiB. */
  readonly snapshotChunkBytes?: number
  /** Largest snapshot accepted from a leader. Default 1 GiB. */
  readonly maxSnapshotBytes?: number
  /**
   * Start from this member's storage as a one-member cluster: drop uncommitted entries, remove every other
   * member, and keep all applied state (disaster recovery after losing a majority). Default false.
   */
  readonly forceNewCluster?: boolean
  /** Time source and timers (default: the transport's clock, else real time). */
  readonly clock?: Clock
  /** Uniform [0, 1) random source for election timeouts (default Math.random). */
  readonly random?: () => number
  readonly logger?: RaftLogger
}

/** The events a {@link RaftNode} emits (eventemitter3, typed). */
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

interface Outgoing {
  readonly to: string
  readonly term: number
  readonly meta: SnapshotMeta
  data: Uint8Array | null
  sent: number
  acked: number
  lastProgress: number
  /** Waiting for the connection to drain below its high-water mark (or to open) before sending more. */
  blocked: boolean
}

interface Incoming {
  readonly term: number
  readonly index: number
  readonly logTerm: number
  readonly conf: ConfState
  readonly data: Uint8Array
  received: number
  lastProgress: number
}

/** Committed entries waiting for the state machine, at most (besides `maxApplyBacklogBytes`). */
const MAX_APPLY_BACKLOG_ENTRIES = 1 << 16

/** Snapshot bytes in flight per transfer (flow control window). */
const SNAPSHOT_WINDOW_CHUNKS = 4

interface ConfWaiter {
  readonly describe: string
  /** Builds the new configuration from the current one, or throws when the change no longer makes sense. */
  readonly build: () => ConfState
  readonly resolve: () => void
  readonly reject: (e: Error) => void
  readonly deadline: number
  /** Only propose once this returns true (a learner caught up, for promotion). */
  readonly ready?: () => boolean
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
 * Ready in turn and sends the leader's appends, persists, sends the rest, hands committed entries to the apply
 * pipeline, then advances the core. Everything that arrives while a Ready is being persisted is batched into
 * the next one. The pipeline applies in log order on its own, so a slow state machine holds back no
 * acknowledgement or vote; only while its backlog is full does the loop take no more committed entries.
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
  /** Committed entries and leader snapshots on their way into the state machine, in log order. */
  private readonly applyQueue: ApplyQueue
  private applied = 0
  /** The hard state last handed to storage. */
  private savedHard: HardState = { term: 0, vote: null, commit: 0 }
  /**
   * A hard state that differs from `savedHard` only in its commit index, not yet written: it rides along with
   * the next write of entries, or is written on its own after a tick without one (see `flushCommit`).
   */
  private pendingHard: HardState | null = null
  private pendingHardAt = 0
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
  private confWaiters: ConfWaiter[] = []
  /** Learners to promote once caught up (added with `learner: false`). */
  private readonly autoPromote = new Set<string>()

  private snapshotThreshold: number
  private trailingEntries: number
  private readonly chunkBytes: number
  private readonly maxSnapshotBytes: number
  /** Index of the latest snapshot taken or installed. */
  private snapIndex = 0
  private snapshotting = false
  /** Outgoing snapshot transfers, by follower. */
  private readonly sending = new Map<string, Outgoing>()
  /** Incoming snapshot transfers, by leader. */
  private readonly receiving = new Map<string, Incoming>()

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
    const st = options.snapshotThreshold
    if (st !== undefined && (!Number.isSafeInteger(st) || st < 0)) {
      throw new RangeError('options.snapshotThreshold must be an integer >= 0')
    }
    this.snapshotThreshold = st ?? 10_000
    const te = options.trailingEntries
    if (te !== undefined && (!Number.isSafeInteger(te) || te < 0)) {
      throw new RangeError('options.trailingEntries must be an integer >= 0')
    }
    this.trailingEntries = te ?? 500
    this.chunkBytes = Math.floor(positive('options.snapshotChunkBytes', options.snapshotChunkBytes, 1 << 20))
    if (this.chunkBytes > 1 << 20) throw new RangeError('options.snapshotChunkBytes must be at most 1 MiB')
    this.maxSnapshotBytes = positive('options.maxSnapshotBytes', options.maxSnapshotBytes, 1 << 30)
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
    this.applyQueue = new ApplyQueue(
      this.runApplyTask,
      positive('options.maxApplyBacklogBytes', options.maxApplyBacklogBytes, 64 << 20),
      MAX_APPLY_BACKLOG_ENTRIES,
      () => this.schedule(),
    )
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
    if (st !== undefined) this.snapshotThreshold = st
    if (te !== undefined) this.trailingEntries = te
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads storage, restores the state machine, replays committed entries, and starts talking to peers. */
  async start(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.state !== 'new') throw new RaftError('STOPPED', 'start() may be called once')
    this.state = 'starting'
    options?.signal?.throwIfAborted()
    let persisted = await this.storage.load(options)
    let voters = this.voterIds
    if (this.opts.forceNewCluster) {
      persisted = await this.forceNewCluster(persisted)
      voters = [this.id]
    }
    if (persisted.snapshot) {
      await this.sm.restore(persisted.snapshot.data)
      this.snapIndex = persisted.snapshot.meta.index
      this.learnAddresses(persisted.snapshot.meta.conf)
    }
    this.learnConfEntries(persisted.entries)
    if (this.state !== 'starting') return
    const o = this.opts
    this.core = new RaftCore({
      id: this.id,
      voters,
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
    this.savedHard = persisted.hardState
    this.seenTerm = this.core.term
    this.emittedRole = this.core.role
    const address = o.address ?? this.addresses.get(this.id) ?? this.id
    this.links = new Links(
      o.transport,
      this.id,
      address,
      (peer) => this.addresses.get(peer) ?? peer,
      this.clock,
      this.maxProposalBytes,
      (msgs) => this.receive(msgs),
      (msg, err) => this.log.warn?.(msg, { id: this.id, err }),
      (peer, frame) => this.receiveRaw(peer, frame),
      {
        writable: (peer) => this.resumeSnapshotSend(peer),
        disconnected: (peer) => this.restartSnapshotSend(peer),
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
    this.state = 'stopped'
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
    this.tickTimer = undefined
    this.failAll(stoppedError())
    if (this.loop) await this.loop.catch(() => {})
    await this.applyQueue.stop()
    await this.links?.close()
    // The commit index not yet written goes out with the last write, so a clean restart resumes from it.
    const hard = this.pendingHard
    this.pendingHard = null
    if (hard !== null) await this.storage.save({ hardState: hard }).catch(() => {})
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

  /** The current configuration: voters and learners (of the last membership change in this node's log). */
  members(): { voters: string[]; learners: string[] } {
    const core = this.core
    if (!core) return { voters: [...this.voterIds], learners: [] }
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
    const p = this.changeConf(`add ${id}`, options.signal, () => {
      const cur = this.core!.confState()
      if (this.core!.removed.has(id))
        throw new RangeError(`${id} was removed from the cluster; IDs never return`)
      if (cur.voters.includes(id) || cur.learners.includes(id))
        throw new RangeError(`${id} is already a member`)
      const addresses = this.addressRecord()
      if (options.address !== undefined) addresses[id] = options.address
      return { voters: cur.voters, learners: [...cur.learners, id], addresses, removed: cur.removed ?? [] }
    })
    if (options.learner === false) {
      return p.then(() => {
        this.autoPromote.add(id)
        return this.promote(id, options.signal ? { signal: options.signal } : undefined)
      })
    }
    return p
  }

  /** Makes learner `id` a voter once it has caught up with the leader's log (leader only). */
  promote(id: string, options?: { signal?: AbortSignal }): Promise<void> {
    if (typeof id !== 'string' || id.length === 0)
      return Promise.reject(new TypeError('id must be a non-empty string'))
    return this.changeConf(
      `promote ${id}`,
      options?.signal,
      () => {
        const cur = this.core!.confState()
        if (!cur.learners.includes(id)) throw new RangeError(`${id} is not a learner`)
        return {
          voters: [...cur.voters, id],
          learners: cur.learners.filter((l) => l !== id),
          addresses: this.addressRecord(),
          removed: cur.removed ?? [],
        }
      },
      () => {
        // Caught up, and heard from: a learner promoted before its first answer is a voter this leader has
        // not heard from, and the next CheckQuorum of a small cluster would depose the leader.
        const core = this.core!
        const match = core.matchOf(id)
        return match > 0 && match + Math.max(this.trailingEntries, 100) >= core.lastIndex
      },
    ).finally(() => this.autoPromote.delete(id))
  }

  /**
   * Removes member `id` (leader only); refused with UNSAFE_CHANGE when the voters left that this leader can
   * reach would not be a majority. A leader that removes itself steps down once the change is applied.
   */
  removeMember(id: string, options?: { signal?: AbortSignal }): Promise<void> {
    if (typeof id !== 'string' || id.length === 0)
      return Promise.reject(new TypeError('id must be a non-empty string'))
    return this.changeConf(`remove ${id}`, options?.signal, () => {
      const core = this.core!
      const cur = core.confState()
      const isVoter = cur.voters.includes(id)
      if (!isVoter && !cur.learners.includes(id)) throw new RangeError(`${id} is not a member`)
      const voters = cur.voters.filter((v) => v !== id)
      if (isVoter) {
        if (voters.length === 0) throw new RangeError(`${id} is the last voter`)
        const reachable = core.reachableVoters().filter((v) => v !== id).length
        if (reachable < (voters.length >> 1) + 1) {
          throw new RaftError(
            'UNSAFE_CHANGE',
            `removing ${id} would leave ${reachable} reachable of ${voters.length} voters, not a majority`,
          )
        }
      }
      const addresses = this.addressRecord()
      delete addresses[id]
      return {
        voters,
        learners: cur.learners.filter((l) => l !== id),
        addresses,
        removed: [...(cur.removed ?? []), id],
      }
    })
  }

  private addressRecord(): Record<string, string> {
    const core = this.core!
    const out: Record<string, string> = {}
    for (const id of [...core.voters, ...core.learners]) {
      const a = this.addresses.get(id)
      if (a !== undefined) out[id] = a
    }
    return out
  }

  private changeConf(
    describe: string,
    signal: AbortSignal | undefined,
    build: () => ConfState,
    ready?: () => boolean,
  ): Promise<void> {
    if (this.state !== 'running') return Promise.reject(stoppedError())
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.core!.role !== 'leader') {
      return Promise.reject(new RaftError('NOT_LEADER', 'membership changes go through the leader'))
    }
    try {
      build()
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<void>((resolve, reject) => {
      const w: ConfWaiter = {
        describe,
        build,
        resolve,
        reject,
        deadline: this.clock.now() + this.leaderWaitMs,
        ...(ready ? { ready } : {}),
      }
      this.confWaiters.push(w)
      signal?.addEventListener(
        'abort',
        () => {
          if (this.confWaiters.includes(w)) {
            this.confWaiters = this.confWaiters.filter((x) => x !== w)
            reject(signal.reason)
          }
        },
        { once: true },
      )
      this.submitConfChanges()
    })
  }

  /** Proposes the first waiting membership change once the core allows one. */
  private submitConfChanges(): void {
    const core = this.core
    if (!core || this.state !== 'running' || this.confWaiters.length === 0) return
    const w = this.confWaiters[0]!
    if (core.role !== 'leader') {
      this.confWaiters.shift()
      w.reject(new RaftError('NOT_LEADER', `lost leadership before proposing: ${w.describe}`))
      this.submitConfChanges()
      return
    }
    if (w.ready && !w.ready()) return
    let conf: ConfState
    try {
      conf = w.build()
    } catch (err) {
      this.confWaiters.shift()
      w.reject(err as Error)
      this.submitConfChanges()
      return
    }
    const r = core.proposeConfChange(conf)
    if (r.index < 0) return
    this.learnAddresses(conf)
    this.confWaiters.shift()
    const p: Proposal = {
      data: encodeConf(conf),
      resolve: () => w.resolve(),
      reject: w.reject,
      deadline: 0,
      term: r.term,
      done: false,
    }
    this.byIndex.set(r.index, p)
    this.schedule()
  }

  /** Rewrites the persisted state as a one-member cluster (see `forceNewCluster`). */
  private async forceNewCluster(st: PersistedState): Promise<PersistedState> {
    const commit = st.hardState.commit
    const kept = st.entries.filter((e) => e.index <= commit)
    let conf: ConfState = st.snapshot?.meta.conf ?? { voters: this.voterIds, learners: [] }
    for (const e of kept) if (e.type === EntryType.Config) conf = decodeConf(e.data)
    const others = [...conf.voters, ...conf.learners, ...this.voterIds].filter((id) => id !== this.id)
    const self = this.addresses.get(this.id)
    const next: ConfState = {
      voters: [this.id],
      learners: [],
      ...(self !== undefined ? { addresses: { [this.id]: self } } : {}),
      removed: [...new Set([...(conf.removed ?? []), ...others])],
    }
    const last = kept.length > 0 ? kept[kept.length - 1]! : null
    const lastIndex = last ? last.index : (st.snapshot?.meta.index ?? 0)
    const lastTerm = last ? last.term : (st.snapshot?.meta.term ?? 0)
    const entry: Entry = {
      index: lastIndex + 1,
      term: Math.max(st.hardState.term, lastTerm),
      type: EntryType.Config,
      data: encodeConf(next),
    }
    // Durably replaces any uncommitted suffix with the new configuration, committed at once: this member is
    // the whole cluster now, and a configuration left uncommitted would let the committed older ones (with the
    // lost members as voters) decide the quorum on start.
    const hardState = { ...st.hardState, term: entry.term, commit: entry.index }
    await this.storage.save({ entries: [entry], hardState })
    const snapshot = st.snapshot ? { ...st.snapshot, meta: { ...st.snapshot.meta, conf: next } } : null
    return { hardState, snapshot, entries: [...kept, entry] }
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
    // After a stall (a long GC, a blocked event loop) the core is told how much time really passed, so a
    // leader's lease expires on real time; its timers still take one step.
    const now = this.clock.now()
    let n = Math.floor((now - this.lastTickAt) / this.tickMs)
    if (n < 1) n = 1
    if (n > this.electionTickMax + 1) {
      n = this.electionTickMax + 1
      this.lastTickAt = now
    } else {
      this.lastTickAt += n * this.tickMs
    }
    this.core!.tick(n)
    this.checkDeadlines()
    this.armTick()
    this.schedule()
    if (this.pendingHard !== null) this.flushCommit(now)
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
    if (this.loop === null) {
      if (this.core!.hasReady(this.applyQueue.room())) {
        this.loop = this.runLoop().finally(() => {
          this.loop = null
        })
      }
    } else {
      // A Ready is being persisted or applied: what needs no persistence goes out now.
      const now = this.core!.takeMessagesNow()
      if (now.length > 0) this.send(now)
    }
  }

  private async runLoop(): Promise<void> {
    const core = this.core!
    try {
      while (this.state === 'running' && core.hasReady(this.applyQueue.room())) {
        const rd: Ready = core.ready(this.applyQueue.room())
        if (rd.entries.length > 0) this.learnConfEntries(rd.entries)
        if (rd.messagesNow.length > 0) this.send(rd.messagesNow)
        const hard = this.hardToSave(rd)
        let saving: Promise<void> | null = null
        if (rd.snapshot !== null || hard !== null || rd.entries.length > 0) {
          const update: { -readonly [K in keyof StorageUpdate]: StorageUpdate[K] } = {}
          if (rd.snapshot) update.snapshot = rd.snapshot
          if (hard) update.hardState = hard
          if (rd.entries.length > 0) update.entries = rd.entries
          saving = this.storage.save(update)
          // Awaited below; this only keeps a failure from being reported as unhandled meanwhile.
          saving.catch(() => {})
        }
        // A snapshot from the leader is restored once durable, in order with the applies around it.
        if (rd.snapshot) this.applyQueue.push({ kind: 'snapshot', snapshot: rd.snapshot, saved: saving! })
        // Committed entries are durable on a quorum already (a leader counts itself only once its own write
        // completed), so they go to the apply pipeline while this Ready's writes are in flight: a reply never
        // waits for the write of later entries, nor for the state machine. Forward results come first so that
        // their proposals are known when applied.
        if (rd.forwards.length > 0) this.onForwards(rd.forwards)
        if (rd.committed.length > 0) this.applyQueue.push({ kind: 'entries', entries: rd.committed })
        if (saving !== null) {
          await saving
          if (this.state !== 'running') return
        }
        this.observeSoftState()
        // Votes and acknowledgements: only now that what they promise is durable.
        if (rd.messages.length > 0) this.send(rd.messages)
        if (rd.readStates.length > 0) this.onReadStates(rd.readStates)
        core.advance(rd)
        if (this.readWaits.length > 0) this.releaseReads()
        if (this.confWaiters.length > 0) this.submitConfChanges()
        if (this.queued.length > 0) this.submitProposals()
        if (this.readQueue.length > 0) this.submitReads()
      }
    } catch (err) {
      this.fail(err)
    }
  }

  /** The apply pipeline's step: restore a leader's snapshot or apply entries, then what waited for them. */
  private readonly runApplyTask = async (task: ApplyTask): Promise<void> => {
    if (this.state !== 'running') return
    try {
      if (task.kind === 'snapshot') {
        await task.saved
        if (this.state !== 'running') return
        await this.installSnapshot(task.snapshot)
      } else await this.applyEntries(task.entries)
    } catch (err) {
      this.fail(err)
      return
    }
    if (this.state !== 'running') return
    // Between two applies: a snapshot taken now holds exactly the state at the applied index.
    if (
      this.snapshotThreshold > 0 &&
      !this.snapshotting &&
      this.applied - this.snapIndex >= this.snapshotThreshold
    ) {
      this.takeSnapshot()
    }
    if (this.readWaits.length > 0) this.releaseReads()
    if (this.confWaiters.length > 0) this.submitConfChanges()
  }

  /**
   * The hard state to write with `rd`, or null. A change of the commit index alone is not written on its own
   * (the commit index may be learned again after a restart, and a lower one is always safe): it waits for the
   * next write of entries, so an idle-to-busy write costs one sync instead of two. Term and vote changes are
   * always written at once.
   */
  private hardToSave(rd: Ready): HardState | null {
    const h = rd.hardState
    if (h !== null) {
      const s = this.savedHard
      if (h.term === s.term && h.vote === s.vote && rd.entries.length === 0 && rd.snapshot === null) {
        if (this.pendingHard === null) this.pendingHardAt = this.clock.now()
        this.pendingHard = h
        return null
      }
      this.pendingHard = null
      this.savedHard = h
      return h
    }
    const p = this.pendingHard
    if (p === null || (rd.entries.length === 0 && rd.snapshot === null)) return null
    this.pendingHard = null
    this.savedHard = p
    return p
  }

  /** Writes a commit index that found no write of entries to ride along with within a tick. */
  private flushCommit(now: number): void {
    const hard = this.pendingHard
    if (hard === null || this.loop !== null || now - this.pendingHardAt < this.tickMs) return
    this.pendingHard = null
    this.savedHard = hard
    this.loop = this.storage
      .save({ hardState: hard })
      .catch((err) => this.fail(err))
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
    this.failAll(new RaftError('STOPPED', `the raft node stopped: ${e.message}`, { cause: e }))
    void this.applyQueue.stop()
    void this.links?.close()
    this.emit('error', e)
  }

  /** Sends messages, streaming snapshots in chunks instead of sending Snapshot messages as they are. */
  private send(msgs: readonly Message[]): void {
    let plain = true
    for (let i = 0; i < msgs.length; i++) if (msgs[i]!.type === MessageType.Snapshot) plain = false
    if (plain) {
      this.links!.send(msgs)
      return
    }
    const rest: Message[] = []
    for (const m of msgs) {
      if (m.type === MessageType.Snapshot) void this.startSnapshotSend(m)
      else rest.push(m)
    }
    if (rest.length > 0) this.links!.send(rest)
  }

  private learnAddresses(conf: ConfState): void {
    if (!conf.addresses) return
    for (const [id, address] of Object.entries(conf.addresses)) {
      if (id !== this.id || !this.addresses.has(id)) this.addresses.set(id, address)
    }
  }

  /** The configuration as of log index `index`, with the addresses known for its members. */
  private confAt(index: number): ConfState {
    const conf = this.core!.confAt(index)
    const addresses: Record<string, string> = {}
    for (const id of [...conf.voters, ...conf.learners]) {
      const a = this.addresses.get(id)
      if (a !== undefined) addresses[id] = a
    }
    return { ...conf, addresses }
  }

  /** A configuration takes effect when appended: learn its members' addresses then, not when applied. */
  private learnConfEntries(entries: readonly Entry[]): void {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (e.type === EntryType.Config) this.learnAddresses(decodeConf(e.data))
    }
  }

  /**
   * Snapshots the state machine at the applied index. Only applying waits for `stateMachine.snapshot()`;
   * the snapshot is made durable in the background (proposals, replication and commits go on), then the log
   * is compacted behind it, keeping `trailingEntries`.
   */
  private takeSnapshot(): void {
    const core = this.core!
    const index = this.applied
    const term = core.log.term(index)
    if (term < 0) return
    const meta: SnapshotMeta = { index, term, conf: this.confAt(index) }
    this.snapshotting = true
    // Called between two applies, so it sees exactly the state at `index`; a promise it returns may resolve
    // later while applying goes on (the state machine captured its state when called).
    let pending: Uint8Array | Promise<Uint8Array>
    try {
      pending = this.sm.snapshot()
    } catch (err) {
      this.snapshotting = false
      this.log.error?.('state machine snapshot failed', { id: this.id, err })
      return
    }
    Promise.resolve(pending)
      .then(
        (data) => {
          if (data instanceof Uint8Array) return data
          this.log.error?.('stateMachine.snapshot() must return a Uint8Array; no snapshot taken', {
            id: this.id,
          })
          return null
        },
        (err) => {
          this.log.error?.('state machine snapshot failed', { id: this.id, err })
          return null
        },
      )
      .then(async (data) => {
        if (data === null || this.state !== 'running') {
          this.snapshotting = false
          return
        }
        await this.storage.save({ snapshot: { meta, data } })
        this.snapshotting = false
        if (this.state !== 'running') return
        if (index > this.snapIndex) this.snapIndex = index
        core.snapshotTaken(meta)
        const to = index - this.trailingEntries
        if (to > core.log.snapIndex) {
          core.compact(to)
          await this.storage.compact(Math.min(to, core.log.snapIndex))
        }
        this.schedule()
      })
      .catch((err) => {
        this.snapshotting = false
        if (this.state === 'running') this.fail(err)
      })
  }

  /** A snapshot from the leader is durable: load it into the state machine. */
  private async installSnapshot(s: Snapshot): Promise<void> {
    await this.sm.restore(s.data)
    const index = s.meta.index
    this.applied = index
    if (index > this.snapIndex) this.snapIndex = index
    this.learnAddresses(s.meta.conf)
    for (const [i, p] of this.byIndex) {
      if (i > index) continue
      this.byIndex.delete(i)
      this.settle(
        p,
        new RaftError('LOST_LEADERSHIP', 'the entry was applied from a snapshot; its result is unknown'),
      )
    }
    if (this.readWaits.length > 0) this.releaseReads()
  }

  private async startSnapshotSend(m: Message): Promise<void> {
    const core = this.core!
    const cur = this.sending.get(m.to)
    if (cur && cur.data !== null && cur.meta.index === m.index && cur.term === m.term) return
    const snap = await this.storage.snapshot().catch(() => null)
    if (this.state !== 'running') return
    if (!snap || snap.meta.index !== m.index || snap.meta.term !== m.logTerm) {
      core.reportSnapshot(m.to, false)
      return
    }
    const out: Outgoing = {
      to: m.to,
      term: m.term,
      meta: snap.meta,
      data: snap.data,
      sent: 0,
      acked: 0,
      lastProgress: this.clock.now(),
      blocked: false,
    }
    this.sending.set(m.to, out)
    this.pumpSnapshot(out)
  }

  /**
   * Sends chunks while fewer than the window are unacknowledged and the connection takes them: a chunk the
   * transport queued over its high-water mark counts as sent, and the pump waits for the drain.
   */
  private pumpSnapshot(out: Outgoing): void {
    if (out.blocked) return
    const data = out.data!
    const total = data.length
    const window = SNAPSHOT_WINDOW_CHUNKS * this.chunkBytes
    while (
      out.sent - out.acked < window &&
      (out.sent < total || (total === 0 && out.sent === 0 && out.acked === 0))
    ) {
      const end = Math.min(total, out.sent + this.chunkBytes)
      const frame = encodeChunk({
        term: out.term,
        index: out.meta.index,
        logTerm: out.meta.term,
        offset: out.sent,
        total,
        conf: out.sent === 0 ? out.meta.conf : null,
        data: data.subarray(out.sent, end),
      })
      const sent = this.links!.sendFrame(out.to, frame)
      if (sent === 'unsent') {
        out.blocked = true
        return
      }
      out.sent = end
      if (sent === 'full') {
        out.blocked = true
        return
      }
      if (total === 0) return
    }
  }

  /** The connection to `peer` opened or drained: go on with a snapshot waiting for it. */
  private resumeSnapshotSend(peer: string): void {
    const out = this.sending.get(peer)
    if (!out || out.data === null || !out.blocked || this.state !== 'running') return
    out.blocked = false
    this.pumpSnapshot(out)
  }

  /** The connection to `peer` dropped: chunks in flight on it are lost, so go on from the last acknowledged. */
  private restartSnapshotSend(peer: string): void {
    const out = this.sending.get(peer)
    if (!out || out.data === null || this.state !== 'running') return
    out.sent = out.acked
    out.blocked = false
    this.pumpSnapshot(out)
  }

  private abortSnapshotSend(out: Outgoing): void {
    if (this.sending.get(out.to) !== out) return
    this.sending.delete(out.to)
    out.data = null
    this.core?.reportSnapshot(out.to, false)
    this.schedule()
  }

  private receiveRaw(peer: string, frame: Uint8Array): void {
    const core = this.core
    if (!core || this.state !== 'running') return
    const now = this.clock.now()
    if (frame[0] === ACK) {
      const ack = decodeAck(frame)
      const out = this.sending.get(peer)
      if (!out || out.meta.index !== ack.index) return
      if (ack.status === ACK_ABORT || core.role !== 'leader' || core.term !== out.term) {
        this.abortSnapshotSend(out)
        return
      }
      if (out.data === null) return
      const total = out.data.length
      if (ack.received > out.acked) {
        out.acked = Math.min(ack.received, total)
        out.lastProgress = now
      }
      // A gap: chunks after `received` were lost; go back and resend from there.
      if (ack.status === ACK_GAP && ack.received >= out.acked && ack.received < out.sent)
        out.sent = ack.received
      // The follower has more than was sent on this connection (a resend after a reconnect): skip ahead.
      if (out.sent < out.acked) out.sent = out.acked
      if (out.acked >= total) {
        // All delivered; the follower answers with an AppendResp once it has installed it. The record stays
        // until the leader sees that answer (or gives up after the timeout and sends the snapshot again).
        out.data = null
        return
      }
      this.pumpSnapshot(out)
      return
    }
    if (frame[0] !== CHUNK) throw new Error(`unknown frame kind ${frame[0]}`)
    const c = decodeChunk(frame, this.chunkBytes + 1024, this.maxSnapshotBytes)
    if (c.term < core.term) {
      this.links!.sendFrame(peer, encodeAck(c.index, 0, ACK_ABORT))
      return
    }
    let inc = this.receiving.get(peer)
    // A new transfer starts at offset 0 (a duplicate of the first chunk of the current one does not restart it).
    if (c.offset === 0 && (!inc || inc.index !== c.index || inc.term !== c.term)) {
      inc = {
        term: c.term,
        index: c.index,
        logTerm: c.logTerm,
        conf: c.conf!,
        data: new Uint8Array(c.total),
        received: 0,
        lastProgress: now,
      }
      this.receiving.set(peer, inc)
    }
    if (!inc || inc.index !== c.index || inc.term !== c.term || inc.data.length !== c.total) {
      this.links!.sendFrame(peer, encodeAck(c.index, 0, ACK_ABORT))
      return
    }
    // A duplicate is answered with how far this transfer got (the leader went back after losing its connection
    // and skips ahead); a chunk past a gap asks for the resend of what is missing.
    if (c.offset < inc.received || (c.offset === inc.received && c.data.length === 0 && inc.received > 0)) {
      this.links!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_OK))
      return
    }
    if (c.offset > inc.received) {
      this.links!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_GAP))
      return
    }
    inc.data.set(c.data, c.offset)
    inc.received += c.data.length
    inc.lastProgress = now
    this.links!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_OK))
    if (inc.received < inc.data.length) return
    this.receiving.delete(peer)
    core.step({
      type: MessageType.Snapshot,
      from: peer,
      to: this.id,
      term: inc.term,
      index: inc.index,
      logTerm: inc.logTerm,
      entries: [],
      commit: 0,
      reject: false,
      hint: 0,
      context: 0,
      snapshot: { meta: { index: inc.index, term: inc.logTerm, conf: inc.conf }, data: inc.data },
    })
    this.schedule()
  }

  private checkSnapshotTransfers(now: number): void {
    const limit = 2 * this.electionMaxMs
    const core = this.core!
    for (const out of [...this.sending.values()]) {
      if (out.data === null && !core.sendingSnapshot(out.to)) this.sending.delete(out.to)
      else if (now - out.lastProgress > limit || core.role !== 'leader' || core.term !== out.term) {
        this.abortSnapshotSend(out)
      }
    }
    for (const [peer, inc] of [...this.receiving])
      if (now - inc.lastProgress > limit) this.receiving.delete(peer)
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
          result = sm.apply(data, e.index, e.term)
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
      } else if (e.type === EntryType.Config) {
        this.learnAddresses(decodeConf(e.data))
        this.core!.confApplied(e.index)
        this.applied = e.index
        if (p !== undefined && !p.done) {
          p.done = true
          if (p.term !== e.term)
            p.reject(new RaftError('PROPOSAL_DROPPED', `log index ${e.index} went to another entry`))
          else p.resolve({ index: e.index, term: e.term, result: undefined })
        }
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
    if (this.sending.size > 0 || this.receiving.size > 0) this.checkSnapshotTransfers(now)
    if (this.confWaiters.length > 0) {
      this.confWaiters = this.confWaiters.filter((w) => {
        if (now < w.deadline) return true
        w.reject(new RaftError('PROPOSAL_DROPPED', `membership change not proposed in time: ${w.describe}`))
        return false
      })
      this.submitConfChanges()
    }
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
    for (const w of this.confWaiters) w.reject(err)
    this.confWaiters = []
  }
}
