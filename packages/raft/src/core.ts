// The public, pure Raft core (`RaftCore`, exported by the package for custom drivers and tests). Over 600
// lines on purpose: the algorithm's transitions (election, replication, membership, read index, snapshots)
// share the core's fields and read best side by side, as in etcd's raft.go; its helpers (log, progress,
// configuration) are already separate modules under internal/.

import { encodeConf } from './internal/conf.js'
import { ConfLog } from './internal/conf-log.js'
import { ForwardAnswers } from './internal/forward-answers.js'
import { RaftLog } from './internal/log.js'
import { Progress, ProgressState } from './internal/progress.js'
import { dataBytes } from './internal/wire-entry.js'
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type PersistedState,
  type Snapshot,
  type SnapshotMeta,
} from './storage.js'
import {
  type ForwardResult,
  type Message,
  MessageType,
  type ReadState,
  type Ready,
  type Role,
} from './types.js'

/** Configuration of the pure core. Times are in ticks; the driver decides how long a tick is. */
export interface CoreOptions {
  readonly id: string
  /** Voters when neither the log nor the snapshot carries a configuration (bootstrap). */
  readonly voters: readonly string[]
  readonly learners?: readonly string[]
  /** Minimum election timeout in ticks; each timeout is drawn uniformly from [electionTick, electionTickMax]. */
  readonly electionTick: number
  /** Default `2 * electionTick - 1`. */
  readonly electionTickMax?: number
  readonly heartbeatTick: number
  /** Default true. */
  readonly preVote?: boolean
  /** Default true. */
  readonly checkQuorum?: boolean
  /**
   * CheckQuorum's window: a leader steps down when a quorum of voters did not answer within one such window
   * (so after between one and two windows of silence). At least `electionTick`; default `electionTick`.
   */
  readonly checkQuorumTick?: number
  /** Serve reads from the leader's lease without a heartbeat round; needs checkQuorum. Default false. */
  readonly leaseRead?: boolean
  /** Upper bound of entry bytes in one append (one larger entry still goes alone). Default 1 MiB. */
  readonly maxMsgBytes?: number
  /** Upper bound of entries in one append. Default 4096. */
  readonly maxMsgEntries?: number
  /** Appends in flight per follower in Replicate state. Default 256. */
  readonly maxInflightMsgs?: number
  /** Entry bytes in flight per follower. Default 32 MiB; 0 for no limit. */
  readonly maxInflightBytes?: number
  /** A leader refuses proposals while this many bytes are appended but not committed. Default 64 MiB. */
  readonly maxUncommittedBytes?: number
  /** Uniform [0, 1) source for randomized election timeouts. */
  readonly random: () => number
  /** What the node restarts from. */
  readonly state?: PersistedState
  /** Index the state machine already reflects (entries after it are handed out to apply). Default: snapshot index. */
  readonly applied?: number
}

/** Bounds on the committed entries one Ready hands out (backpressure from the state machine). */
export interface ReadyOptions {
  /** At most this many bytes of entry data (but at least one entry when above 0); 0: no committed entries. */
  readonly maxCommittedBytes?: number
  /** At most this many entries; 0: no committed entries. */
  readonly maxCommittedEntries?: number
}

function takesCommitted(o: ReadyOptions | undefined): boolean {
  return o === undefined || ((o.maxCommittedBytes ?? 1) > 0 && (o.maxCommittedEntries ?? 1) > 0)
}

function checkReadyOptions(o: ReadyOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object')
  for (const k of ['maxCommittedBytes', 'maxCommittedEntries'] as const) {
    const v = o[k]
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0))
      throw new RangeError(`options.${k} must be an integer >= 0`)
  }
}

const NONE = 0
const EMPTY: readonly Entry[] = []
const EMPTY_DATA = new Uint8Array(0)

interface ReadRequest {
  readonly from: string
  readonly context: number
}

interface ReadRound {
  readonly round: number
  readonly index: number
  readonly acks: Set<string>
  readonly requests: ReadRequest[]
}

/** A voter a leader had not heard from within its CheckQuorum window. */
export interface UnheardVoter {
  readonly id: string
  /** Ticks since it last answered this leader (null: not once in this leadership). */
  readonly sinceTicks: number | null
}

/**
 * Why a leader stopped leading (`RaftCore.takeStepDown()`): it lost touch with a quorum (CheckQuorum, with
 * the voters it had not heard from), saw a higher term (from whom, in which message), handed its leadership
 * over (a transfer: the target's vote request at the next term), or was removed from the configuration.
 */
export type StepDown =
  | {
      readonly reason: 'check-quorum'
      readonly term: number
      readonly windowTicks: number
      readonly unheard: readonly UnheardVoter[]
    }
  | {
      readonly reason: 'higher-term' | 'transfer'
      readonly term: number
      readonly from: string
      readonly newTerm: number
      readonly message: MessageType
    }
  | { readonly reason: 'removed'; readonly term: number }

/** Reasons carried in a rejected ProposeResp / ReadIndexResp `hint`. */
export const Reject = { NotLeader: 1, Dropped: 2 } as const

/**
 * The Raft algorithm as a pure, deterministic state machine: no timers, no I/O. Feed it `tick()`, `step(m)`,
 * `propose(...)` and `readIndex(...)`; take a `ready()`, do what it says, then `advance(ready)`.
 */
export class RaftCore {
  readonly id: string
  term = 0
  vote: string | null = null
  leader: string | null = null
  role: Role = 'follower'
  readonly log = new RaftLog()

  voters: string[] = []
  learners: string[] = []
  readonly progress = new Map<string, Progress>()
  /** The latest snapshot this node holds (what a leader sends to a follower missing compacted entries). */
  snapshotMeta: SnapshotMeta | null = null
  /** A snapshot received from the leader, to hand out in the next Ready. */
  private pendingSnapshot: Snapshot | null = null
  /** Members removed from the cluster: their messages are ignored and they never return. */
  readonly removed = new Set<string>()
  /** The configurations in the log: the last one is in effect (see ConfLog). */
  private readonly confs: ConfLog
  /** A leader proposes no membership change until the entry at this index is applied. */
  private pendingConfIndex = 0

  private readonly electionMin: number
  private readonly electionMax: number
  private readonly heartbeatTick: number
  private readonly preVote: boolean
  private readonly checkQuorum: boolean
  private readonly checkQuorumTick: number
  private readonly leaseRead: boolean
  private readonly maxMsgBytes: number
  private readonly maxMsgEntries: number
  private readonly maxInflight: number
  private readonly maxInflightBytes: number
  private readonly maxUncommitted: number
  private readonly random: () => number
  /** Forwards answered as leader: a duplicate gets the same answer (see ForwardAnswers). */
  private readonly forwardAnswers = new ForwardAnswers()

  private ticks = 0
  /** The tick this node last became leader at. */
  private leaderSince = 0
  private electionElapsed = 0
  /** Leader: ticks since the last CheckQuorum round. */
  private quorumElapsed = 0
  private heartbeatElapsed = 0
  private randomizedTimeout = 0
  /**
   * Ticks left during which a restarted voter grants no vote: before its restart it may have acknowledged a
   * leader whose lease still counts on it (it no longer knows which), so it waits an election timeout, as
   * it would after hearing from that leader.
   */
  private restartQuiet = 0
  private votes = new Map<string, boolean>()

  /** Why this node last stopped leading, until the driver takes it. */
  private stepDown: StepDown | null = null

  // Leader state.
  private transferee: string | null = null
  private leaseBroken = false
  private uncommittedBytes = 0
  private termStart = 0
  private pendingReads: ReadRequest[] = []
  private rounds: ReadRound[] = []
  private roundSeq = 0

  // Output buffers, drained by ready().
  private msgsNow: Message[] = []
  private msgsAfter: Message[] = []
  private readStates: ReadState[] = []
  private forwards: ForwardResult[] = []
  private prevHard: HardState
  private prevRole: Role = 'follower'
  private prevLeader: string | null = null

  constructor(opts: CoreOptions) {
    this.id = opts.id
    this.electionMin = opts.electionTick
    this.electionMax = opts.electionTickMax ?? 2 * opts.electionTick - 1
    this.heartbeatTick = opts.heartbeatTick
    this.preVote = opts.preVote ?? true
    this.checkQuorum = opts.checkQuorum ?? true
    const cq = opts.checkQuorumTick
    // NaN or Infinity would keep a leader cut off from a quorum leading for ever.
    if (cq !== undefined && !(Number.isSafeInteger(cq) && cq > 0))
      throw new RangeError('checkQuorumTick must be a whole number of ticks above 0')
    this.checkQuorumTick = Math.max(cq ?? opts.electionTick, opts.electionTick)
    this.leaseRead = (opts.leaseRead ?? false) && this.checkQuorum
    this.maxMsgBytes = opts.maxMsgBytes ?? 1 << 20
    this.maxMsgEntries = opts.maxMsgEntries ?? 4096
    this.maxInflight = opts.maxInflightMsgs ?? 256
    this.maxInflightBytes = opts.maxInflightBytes ?? 32 << 20
    this.maxUncommitted = opts.maxUncommittedBytes ?? 64 << 20
    this.random = opts.random

    const st = opts.state
    this.confs = new ConfLog(
      st?.snapshot?.meta.conf ?? { voters: opts.voters, learners: opts.learners ?? [] },
    )
    if (st) {
      const log = this.log
      if (st.snapshot) {
        log.snapIndex = st.snapshot.meta.index
        log.snapTerm = st.snapshot.meta.term
        this.snapshotMeta = st.snapshot.meta
      }
      log.entries = [...st.entries]
      log.stable = log.inProgress = log.lastIndex()
      log.committed = Math.max(log.snapIndex, Math.min(st.hardState.commit, log.lastIndex()))
      this.term = st.hardState.term
      this.vote = st.hardState.vote
      this.confs.appended(log.entries)
      if (this.term > 0) this.restartQuiet = this.electionMin
    }
    const applied = Math.max(opts.applied ?? this.log.snapIndex, this.log.snapIndex)
    this.log.applied = this.log.applying = Math.min(applied, this.log.committed)
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed }
    this.setConf(this.confs.latest())
    this.becomeFollower(this.term, null)
    this.prevRole = this.role
  }

  // ---------------------------------------------------------------- inputs

  /**
   * One unit of logical time for the election and heartbeat timers. `elapsed` (default 1) is how many tick
   * periods really passed: a driver that was stalled passes more, so lease reads expire on real time while
   * the timers still advance one step (a stalled leader first hears its followers before judging them).
   */
  tick(elapsed = 1): void {
    this.ticks += elapsed >= 1 ? Math.floor(elapsed) : 1
    this.electionElapsed++
    if (this.restartQuiet > 0) this.restartQuiet--
    if (this.role === 'leader') {
      this.heartbeatElapsed++
      this.quorumElapsed++
      // CheckQuorum runs on a window of its own (checkQuorumTick, at least the election timeout). Its length
      // decides only how long a leader cut off from a quorum goes on believing it leads; nothing that makes
      // Raft safe rests on it: a new leader is elected on the followers' own timers (and granted votes once
      // their lease from this leader, electionMin ticks, ran out), this leader commits nothing without a
      // quorum and so cannot act on a term that has passed, two leaders in one term stay impossible (votes
      // are unchanged), and lease reads count acknowledgements within electionMin ticks (leaseValid), not
      // within this window.
      if (this.quorumElapsed >= this.checkQuorumTick) {
        this.quorumElapsed = 0
        if (this.checkQuorum) {
          const unheard = this.quorumLost()
          if (unheard !== null) {
            this.becomeFollower(this.term, null, {
              reason: 'check-quorum',
              term: this.term,
              windowTicks: this.checkQuorumTick,
              unheard,
            })
            return
          }
        }
      }
      if (this.electionElapsed >= this.electionMin) {
        this.electionElapsed = 0
        if (this.transferee !== null) this.transferee = null
      }
      if (this.heartbeatElapsed >= this.heartbeatTick) {
        this.heartbeatElapsed = 0
        this.bcastHeartbeat(0)
      }
      return
    }
    if (this.electionElapsed >= this.randomizedTimeout) {
      this.electionElapsed = 0
      if (this.promotable()) this.campaign(this.preVote ? 'pre' : 'vote')
      // A learner never campaigns: without this it would keep a leader that is gone (or that removed it) forever,
      // and what it forwarded there would never settle.
      else this.leader = null
    }
  }

  /** Proposes commands. On the leader returns the first index and term; on a follower forwards them. */
  propose(data: readonly Uint8Array[], context = 0): { index: number; term: number; reason: number } {
    if (this.role === 'leader') {
      if (this.transferee !== null) return { index: -1, term: this.term, reason: Reject.Dropped }
      const first = this.appendLocal(data)
      if (first < 0) return { index: -1, term: this.term, reason: Reject.Dropped }
      return { index: first, term: this.term, reason: 0 }
    }
    if (this.leader === null || this.role === 'learner' || context === 0) {
      return { index: -1, term: this.term, reason: Reject.NotLeader }
    }
    const ents: Entry[] = new Array(data.length)
    for (let i = 0; i < data.length; i++)
      ents[i] = { index: 0, term: 0, type: EntryType.Normal, data: data[i]! }
    this.send(this.msg(MessageType.Propose, this.leader, { entries: ents, context }))
    return { index: 0, term: this.term, reason: 0 }
  }

  /**
   * Asks for a linearizable read point, identified by `context` (unique per node, non-zero). The answer comes
   * as a ReadState in a later Ready. Returns false when no leader is known (nothing was sent).
   */
  readIndex(context: number): boolean {
    if (this.role === 'leader') {
      this.handleRead({ from: this.id, context })
      return true
    }
    if (this.leader === null) return false
    this.send(this.msg(MessageType.ReadIndex, this.leader, { context }))
    return true
  }

  /** Starts handing leadership to `to` (default: the most up-to-date voter). Returns the target, or null. */
  transferLeadership(to?: string): string | null {
    if (this.role !== 'leader') return null
    let target = to ?? null
    if (target === null) {
      let best = -1
      for (const v of this.voters) {
        if (v === this.id) continue
        const m = this.progress.get(v)!.match
        if (m > best) {
          best = m
          target = v
        }
      }
    }
    if (target === null || target === this.id || !this.voters.includes(target)) return null
    if (this.transferee === target) return target
    this.transferee = target
    this.electionElapsed = 0
    this.quorumElapsed = 0
    const pr = this.progress.get(target)!
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target)
    else this.sendAppend(target, pr, true)
    return target
  }

  /** Feeds one message from a peer. Unknown senders and malformed terms are ignored. */
  step(m: Message): void {
    if (m.to !== this.id || (this.removed.has(m.from) && this.removalCommitted(m.from))) return
    if (m.term > this.term) {
      const isVote = m.type === MessageType.Vote || m.type === MessageType.PreVote
      if (isVote) {
        const force = m.context === 1
        const inLease =
          this.checkQuorum &&
          ((this.leader !== null && this.electionElapsed < this.electionMin) || this.restartQuiet > 0)
        if (!force && inLease) return
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote changes no term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; ours moves only when we campaign.
      } else {
        const lead =
          m.type === MessageType.Append ||
          m.type === MessageType.Heartbeat ||
          m.type === MessageType.Snapshot ||
          m.type === MessageType.TimeoutNow
            ? m.from
            : null
        this.becomeFollower(
          m.term,
          m.type === MessageType.TimeoutNow ? null : lead,
          this.role === 'leader' ? this.higherTerm(m) : undefined,
        )
      }
    } else if (m.term < this.term) {
      if (
        m.type === MessageType.Append ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snapshot
      ) {
        // Figure 2: reply false with our term, so a stale leader steps down.
        this.send(this.msg(MessageType.AppendResp, m.from, {}))
      } else if (m.type === MessageType.PreVote) {
        this.send(this.msg(MessageType.PreVoteResp, m.from, { reject: true }))
      } else if (m.type === MessageType.Propose || m.type === MessageType.ReadIndex) {
        this.refuseNotLeader(m)
      }
      return
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVote(m)
        return
      case MessageType.VoteResp:
      case MessageType.PreVoteResp:
        this.handleVoteResp(m)
        return
    }

    if (this.role === 'leader') this.stepLeader(m)
    else if (this.role === 'candidate' || this.role === 'precandidate') this.stepCandidate(m)
    else this.stepFollower(m)
  }

  // ---------------------------------------------------------------- Ready / advance

  /**
   * Takes the messages that may leave before anything is persisted (a leader's appends and heartbeats,
   * pre-votes), so a driver can send them while an earlier Ready is still being written: a slow disk then
   * delays neither heartbeats nor the pipelining of new entries to followers.
   */
  takeMessagesNow(): readonly Message[] {
    const m = this.msgsNow
    if (m.length === 0) return m
    this.msgsNow = []
    return m
  }

  /** Is there anything to do? With `options`, committed entries count only when the driver would take them. */
  hasReady(options?: ReadyOptions): boolean {
    if (options !== undefined) checkReadyOptions(options)
    const log = this.log
    return (
      this.msgsNow.length > 0 ||
      this.msgsAfter.length > 0 ||
      this.pendingSnapshot !== null ||
      log.lastIndex() > log.inProgress ||
      (log.committed > log.applying && takesCommitted(options)) ||
      this.readStates.length > 0 ||
      this.forwards.length > 0 ||
      this.role !== this.prevRole ||
      this.leader !== this.prevLeader ||
      this.hardChanged()
    )
  }

  /**
   * What to do now. `options` bound the committed entries handed out (a driver whose state machine lags
   * behind takes fewer, or none, and still gets every message to send and everything to persist); the rest
   * come in later Readys.
   */
  ready(options?: ReadyOptions): Ready {
    // Checked before anything changes: a refused call hands nothing out.
    if (options !== undefined) checkReadyOptions(options)
    const log = this.log
    const last = log.lastIndex()
    const entries = last > log.inProgress ? log.slice(log.inProgress + 1, last) : EMPTY
    log.inProgress = last
    // Only committed entries are ever applied.
    const applyUpTo = log.committed
    let committed: readonly Entry[] = EMPTY
    if (applyUpTo > log.applying && takesCommitted(options)) {
      const count = Math.min(
        applyUpTo - log.applying,
        options?.maxCommittedEntries ?? Number.MAX_SAFE_INTEGER,
      )
      committed = log.sliceBytes(
        log.applying + 1,
        options?.maxCommittedBytes ?? Number.MAX_SAFE_INTEGER,
        count,
      )
      if (committed.length > 0) log.applying = committed[committed.length - 1]!.index
    }
    let hardState: HardState | null = null
    if (this.hardChanged()) {
      hardState = { term: this.term, vote: this.vote, commit: log.committed }
      this.prevHard = hardState
    }
    const softStateChanged = this.role !== this.prevRole || this.leader !== this.prevLeader
    this.prevRole = this.role
    this.prevLeader = this.leader
    const snapshot = this.pendingSnapshot
    this.pendingSnapshot = null
    const rd: Ready = {
      softStateChanged,
      snapshot,
      hardState,
      entries,
      messagesNow: this.msgsNow,
      messages: this.msgsAfter,
      committed,
      readStates: this.readStates,
      forwards: this.forwards,
    }
    this.msgsNow = []
    this.msgsAfter = []
    this.readStates = []
    this.forwards = []
    return rd
  }

  /**
   * The driver persisted and sent everything in `rd`, and applied its committed entries or handed them to an
   * apply pipeline that applies them in order (`applied` counts them from then on).
   */
  advance(rd: Ready): void {
    const log = this.log
    if (rd.snapshot !== null && rd.snapshot.meta.index > log.applied) log.applied = rd.snapshot.meta.index
    if (rd.entries.length > 0) log.stableTo(rd.entries)
    if (rd.committed.length > 0) {
      const last = rd.committed[rd.committed.length - 1]!.index
      if (last > log.applied) log.applied = last
    }
    if (this.role === 'leader') {
      const self = this.progress.get(this.id)
      if (self?.maybeUpdate(log.stable) && this.maybeCommit()) this.bcastCommit()
    }
  }

  /** The configuration this node runs with: that of the last Config entry in its log, or of its snapshot. */
  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners], removed: [...this.removed] }
  }

  /** The configuration as of log index `index` (what a snapshot taken there records). */
  confAt(index: number): ConfState {
    const c = this.confs.at(index)
    return { voters: [...c.voters], learners: [...c.learners], removed: [...(c.removed ?? [])] }
  }

  /**
   * Leader only: appends a Config entry that moves the cluster to `conf` (one member added, promoted or
   * removed at a time); it takes effect at once. Refused (index -1) while an earlier change is not yet
   * applied or this leader has not committed an entry of its own term: the rules that make single-server
   * changes safe.
   */
  proposeConfChange(conf: ConfState): { index: number; term: number; reason: number } {
    if (this.role !== 'leader' || this.transferee !== null) {
      return { index: -1, term: this.term, reason: Reject.NotLeader }
    }
    if (this.log.applied < this.pendingConfIndex || !this.committedInTerm()) {
      return { index: -1, term: this.term, reason: Reject.Dropped }
    }
    const log = this.log
    const index = log.lastIndex() + 1
    const entry: Entry = { index, term: this.term, type: EntryType.Config, data: encodeConf(conf) }
    log.entries.push(entry)
    this.pendingConfIndex = index
    this.confs.appended([entry])
    this.confChanged()
    this.bcastAppend()
    return { index, term: this.term, reason: 0 }
  }

  /**
   * The driver applied the Config entry at `index`. Once the configuration in effect is applied (so
   * committed), a leader stops replicating to the members it removed, and steps down if it removed itself
   * (it led the cluster into the new configuration).
   */
  confApplied(index: number): void {
    if (index < this.confs.latestIndex()) return
    for (const id of [...this.progress.keys()]) {
      if (id !== this.id && !this.voters.includes(id) && !this.learners.includes(id)) this.progress.delete(id)
    }
    if (this.role === 'leader' && !this.voters.includes(this.id))
      this.becomeFollower(this.term, null, { reason: 'removed', term: this.term })
  }

  /** Leader only: voters heard from within the last two election timeouts (this node included). */
  reachableVoters(): string[] {
    const since = this.ticks - 2 * this.electionMax
    return this.voters.filter((v) => v === this.id || (this.progress.get(v)?.lastHeard ?? -1) >= since)
  }

  /**
   * Leader only: the members (voters and learners) heard from within the last two election timeouts and in
   * this leadership, this node included. Null on a follower, and for the first election timeout of a
   * leadership: a member that did not answer a single heartbeat by then is gone.
   */
  recentlyHeard(): string[] | null {
    if (this.role !== 'leader' || this.ticks - this.leaderSince < this.electionMax) return null
    const since = Math.max(this.leaderSince, this.ticks - 2 * this.electionMax)
    return [...this.voters, ...this.learners].filter(
      (v) => v === this.id || (this.progress.get(v)?.lastHeard ?? -1) >= since,
    )
  }

  /** Leader only: is a snapshot on its way to `id` (its progress waits for the answer)? */
  sendingSnapshot(id: string): boolean {
    return this.role === 'leader' && this.progress.get(id)?.state === ProgressState.Snapshot
  }

  /** Leader only: how far `id`'s log matches this leader's (0 when unknown). */
  matchOf(id: string): number {
    return this.progress.get(id)?.match ?? 0
  }

  /** The driver made a snapshot durable (taken locally); leaders send it to followers that need it. */
  snapshotTaken(meta: SnapshotMeta): void {
    if (meta.index > (this.snapshotMeta?.index ?? 0)) this.snapshotMeta = meta
  }

  /** Drops log entries up to `index` (at most the applied index and the latest snapshot's index). */
  compact(index: number): void {
    this.log.compact(Math.min(index, this.snapshotMeta?.index ?? 0))
    this.confs.compacted(this.log.snapIndex)
  }

  /** The driver could not deliver a snapshot to `to`: probe again (a fresh snapshot is sent if still needed). */
  reportSnapshot(to: string, ok: boolean): void {
    const pr = this.progress.get(to)
    if (!pr || pr.state !== ProgressState.Snapshot || this.role !== 'leader') return
    if (!ok) {
      pr.becomeProbe()
      pr.probeSent = true
    }
  }

  // ---------------------------------------------------------------- state views

  get committed(): number {
    return this.log.committed
  }

  get applied(): number {
    return this.log.applied
  }

  get lastIndex(): number {
    return this.log.lastIndex()
  }

  /** The transfer in progress, if any. */
  get transferTarget(): string | null {
    return this.transferee
  }

  /** Why this node last stopped leading, once (null when it has not since the last call). */
  takeStepDown(): StepDown | null {
    const s = this.stepDown
    this.stepDown = null
    return s
  }

  /** Has this leader committed an entry of its own term (the precondition for serving reads)? */
  committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term
  }

  // ---------------------------------------------------------------- roles

  private promotable(): boolean {
    return this.voters.includes(this.id)
  }

  private resetTimers(): void {
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    const span = this.electionMax - this.electionMin + 1
    this.randomizedTimeout = this.electionMin + Math.floor(this.random() * span)
  }

  private becomeFollower(term: number, leader: string | null, why?: StepDown): void {
    const wasLeader = this.role === 'leader'
    if (wasLeader && why !== undefined) this.stepDown = why
    if (term !== this.term) {
      this.term = term
      this.vote = null
    }
    this.leader = leader
    this.role = this.promotable() || !this.learners.includes(this.id) ? 'follower' : 'learner'
    this.resetTimers()
    this.votes.clear()
    this.transferee = null
    if (wasLeader) this.failReads()
  }

  private becomePreCandidate(): void {
    this.role = 'precandidate'
    this.leader = null
    this.votes.clear()
    // Timers keep running so a failed pre-vote retries after another randomized timeout.
    const span = this.electionMax - this.electionMin + 1
    this.randomizedTimeout = this.electionMin + Math.floor(this.random() * span)
  }

  private becomeCandidate(): void {
    this.term++
    this.vote = this.id
    this.leader = null
    this.role = 'candidate'
    this.resetTimers()
    this.votes.clear()
  }

  private becomeLeader(): void {
    this.role = 'leader'
    this.leader = this.id
    this.leaderSince = this.ticks
    this.resetTimers()
    this.quorumElapsed = 0
    this.transferee = null
    this.leaseBroken = false
    this.uncommittedBytes = 0
    this.pendingReads = []
    this.rounds = []
    const last = this.log.lastIndex()
    for (const pr of this.progress.values()) {
      pr.match = 0
      pr.next = last + 1
      pr.recentActive = false
      pr.sentCommit = 0
      pr.ackedTick = Number.NEGATIVE_INFINITY
      pr.appendAckTick = this.ticks
      pr.becomeProbe()
      pr.next = last + 1
    }
    const self = this.progress.get(this.id)
    if (self) {
      self.match = this.log.stable
      self.recentActive = true
      self.becomeReplicate()
    }
    // The no-op: commits everything before it once it commits (Figure 8: only current-term entries commit
    // by counting replicas).
    this.termStart = last + 1
    // A membership change waits until this term's no-op is applied (so the leader has committed in its term
    // and no change from an earlier term can still be pending).
    this.pendingConfIndex = last + 1
    this.log.append([{ index: last + 1, term: this.term, type: EntryType.Normal, data: EMPTY_DATA }])
    this.bcastAppend()
  }

  private campaign(kind: 'pre' | 'vote' | 'transfer'): void {
    let type: MessageType
    let voteTerm: number
    if (kind === 'pre') {
      this.becomePreCandidate()
      type = MessageType.PreVote
      voteTerm = this.term + 1
    } else {
      this.becomeCandidate()
      type = MessageType.Vote
      voteTerm = this.term
    }
    this.votes.set(this.id, true)
    if (this.tally() === 1) {
      if (kind === 'pre') this.campaign('vote')
      else this.becomeLeader()
      return
    }
    const lastIndex = this.log.lastIndex()
    const lastTerm = this.log.lastTerm()
    for (const v of this.voters) {
      if (v === this.id) continue
      const m = this.msg(type, v, {
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === 'transfer' ? 1 : 0,
      })
      m.term = voteTerm
      this.send(m)
    }
  }

  /** 1: won, -1: lost, 0: undecided. */
  private tally(): number {
    let granted = 0
    let rejected = 0
    for (const v of this.voters) {
      const g = this.votes.get(v)
      if (g === true) granted++
      else if (g === false) rejected++
    }
    const q = (this.voters.length >> 1) + 1
    if (granted >= q) return 1
    if (rejected >= q) return -1
    return 0
  }

  // ---------------------------------------------------------------- votes

  private handleVote(m: Message): void {
    const pre = m.type === MessageType.PreVote
    const canVote =
      this.vote === m.from || (this.vote === null && this.leader === null) || (pre && m.term > this.term)
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      const r = this.msg(respType, m.from, {})
      // A granted pre-vote answers at the term asked about, so the poller can count it.
      r.term = m.term
      this.send(r)
      if (!pre) {
        this.electionElapsed = 0
        this.vote = m.from
      }
    } else {
      this.send(this.msg(respType, m.from, { reject: true }))
    }
  }

  private handleVoteResp(m: Message): void {
    const pre = m.type === MessageType.PreVoteResp
    if ((pre && this.role !== 'precandidate') || (!pre && this.role !== 'candidate')) return
    if (pre && m.term !== this.term + 1 && !m.reject) return
    if (!this.voters.includes(m.from)) return
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject)
    const t = this.tally()
    if (t === 1) {
      if (pre) this.campaign('vote')
      else this.becomeLeader()
    } else if (t === -1) {
      this.becomeFollower(this.term, null)
    }
  }

  // ---------------------------------------------------------------- per-role steps

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from)
    switch (m.type) {
      case MessageType.AppendResp:
        if (pr) this.handleAppendResp(m, pr)
        return
      case MessageType.HeartbeatResp:
        if (pr) this.handleHeartbeatResp(m, pr)
        return
      case MessageType.Propose: {
        if (!pr) return
        if (this.answerDuplicate(m)) return
        const data: Uint8Array[] = new Array(m.entries.length)
        for (let i = 0; i < data.length; i++) data[i] = m.entries[i]!.data
        const first = this.transferee === null ? this.appendLocal(data) : -1
        this.forwardAnswers.add(m.from, m.context, { index: first < 0 ? -1 : first, term: this.term })
        if (first < 0) {
          this.send(
            this.msg(MessageType.ProposeResp, m.from, {
              reject: true,
              hint: Reject.Dropped,
              context: m.context,
            }),
          )
        } else {
          this.send(
            this.msg(MessageType.ProposeResp, m.from, {
              index: first,
              logTerm: this.term,
              context: m.context,
            }),
          )
        }
        return
      }
      case MessageType.ReadIndex:
        if (pr) this.handleRead({ from: m.from, context: m.context })
        return
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.Append:
        this.becomeFollower(m.term, m.from)
        this.handleAppend(m)
        return
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from)
        this.handleHeartbeat(m)
        return
      case MessageType.Snapshot:
        this.becomeFollower(m.term, m.from)
        this.handleSnapshot(m)
        return
      case MessageType.Propose:
      case MessageType.ReadIndex:
        this.refuseNotLeader(m)
        return
      case MessageType.ProposeResp:
      case MessageType.ReadIndexResp:
        this.stepFollower(m)
        return
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Append:
        this.electionElapsed = 0
        this.leader = m.from
        this.handleAppend(m)
        return
      case MessageType.Heartbeat:
        this.electionElapsed = 0
        this.leader = m.from
        this.handleHeartbeat(m)
        return
      case MessageType.Snapshot:
        this.electionElapsed = 0
        this.leader = m.from
        this.handleSnapshot(m)
        return
      case MessageType.TimeoutNow:
        if (this.promotable()) this.campaign('transfer')
        return
      case MessageType.ProposeResp:
        this.forwards.push(
          m.reject
            ? { context: m.context, index: -1, term: m.term, reason: m.hint }
            : { context: m.context, index: m.index, term: m.logTerm, reason: 0 },
        )
        return
      case MessageType.ReadIndexResp:
        this.readStates.push({ context: m.context, index: m.reject ? -1 : m.index })
        return
      case MessageType.Propose:
      case MessageType.ReadIndex:
        this.refuseNotLeader(m)
        return
    }
  }

  // ---------------------------------------------------------------- replication, follower side

  private handleAppend(m: Message): void {
    const log = this.log
    if (m.index < log.committed) {
      this.send(this.msg(MessageType.AppendResp, m.from, { index: log.committed }))
      return
    }
    const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNew >= 0) {
      this.confAfterAppend(m.index + 1, m.entries)
      this.send(this.msg(MessageType.AppendResp, m.from, { index: lastNew }))
      return
    }
    const hint = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm)
    this.send(
      this.msg(MessageType.AppendResp, m.from, {
        reject: true,
        index: m.index,
        hint,
        logTerm: Math.max(0, log.term(hint)),
      }),
    )
  }

  /** Raft §7: install a snapshot the leader sent, unless the log already covers it. */
  private handleSnapshot(m: Message): void {
    const log = this.log
    const s = m.snapshot
    if (!s || s.meta.index !== m.index || s.meta.term !== m.logTerm) return
    if (m.index <= log.committed) {
      this.send(this.msg(MessageType.AppendResp, m.from, { index: log.committed }))
      return
    }
    if (log.matchTerm(m.index, m.logTerm)) {
      // The log holds the snapshot's last entry: the entries after it may still be good.
      log.commitTo(m.index)
      this.send(this.msg(MessageType.AppendResp, m.from, { index: m.index }))
      return
    }
    log.restore(m.index, m.logTerm)
    this.snapshotMeta = s.meta
    this.pendingSnapshot = s
    this.confs.reset(s.meta.conf)
    this.confChanged()
    this.send(this.msg(MessageType.AppendResp, m.from, { index: m.index }))
  }

  /**
   * A follower appended entries from `from` on (a conflicting tail may have been truncated): if that touched
   * a Config entry, the configuration in effect is the last one left in the log.
   */
  private confAfterAppend(from: number, ents: readonly Entry[]): void {
    let touched = this.confs.latestIndex() >= from
    for (let i = 0; !touched && i < ents.length; i++) touched = ents[i]!.type === EntryType.Config
    if (!touched) return
    this.confs.truncatedFrom(from)
    this.confs.appended(this.log.slice(from, this.log.lastIndex()))
    this.confChanged()
  }

  /** Runs with the configuration in effect from now on. */
  private confChanged(): void {
    const before = this.role === 'leader' ? new Map(this.progress) : null
    this.setConf(this.confs.latest())
    if (before !== null) {
      // A member being removed still gets the entries up to its removal, so it learns of it and stops
      // campaigning; it counts toward nothing, and its progress goes once the change is applied.
      for (const [id, pr] of before) if (id !== this.id && !this.progress.has(id)) this.progress.set(id, pr)
      for (const pr of this.progress.values()) {
        if (pr.id !== this.id && pr.next === 1 && pr.match === 0) pr.next = this.log.lastIndex() + 1
      }
      if (this.maybeCommit()) this.bcastCommit()
    } else if (this.role === 'learner' || this.role === 'follower') {
      this.role = this.promotable() || !this.learners.includes(this.id) ? 'follower' : 'learner'
    }
  }

  private setConf(conf: ConfState): void {
    this.removed.clear()
    for (const id of conf.removed ?? []) this.removed.add(id)
    this.applyConf(
      conf.voters.filter((v) => !this.removed.has(v)),
      conf.learners.filter((v) => !this.removed.has(v)),
    )
  }

  /**
   * Is `id`'s removal committed here? Only then are its messages ignored: a removal still uncommitted may be
   * truncated, and a member that ignored the leader doing so (the member it removes) would never learn of it.
   */
  private removalCommitted(id: string): boolean {
    return this.confs.at(this.log.committed).removed?.includes(id) ?? false
  }

  /** Replaces the membership (progress of members that stay is kept). */
  private applyConf(voters: readonly string[], learners: readonly string[]): void {
    this.voters = [...voters]
    this.learners = [...learners]
    const keep = new Set([...voters, ...learners])
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id)
    for (const v of voters) {
      const pr = this.progress.get(v)
      if (pr) pr.isLearner = false
      else this.progress.set(v, this.joiningProgress(v, false))
    }
    for (const l of learners) {
      const pr = this.progress.get(l)
      if (pr) pr.isLearner = true
      else this.progress.set(l, this.joiningProgress(l, true))
    }
  }

  /**
   * The progress of a member new to the configuration. Under a leader it counts as heard at its addition
   * (etcd marks it recently active): a member still starting up gets the same two election timeouts as any
   * other to answer before it is reported unreachable, and does not count against CheckQuorum at once.
   */
  private joiningProgress(id: string, learner: boolean): Progress {
    const pr = this.newProgress(id, learner)
    if (this.role === 'leader') {
      pr.lastHeard = this.ticks
      pr.recentActive = true
    }
    return pr
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit)
    this.send(this.msg(MessageType.HeartbeatResp, m.from, { index: m.index, context: m.context }))
  }

  // ---------------------------------------------------------------- replication, leader side

  private appendLocal(data: readonly Uint8Array[]): number {
    let bytes = 0
    for (let i = 0; i < data.length; i++) bytes += data[i]!.length
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.maxUncommitted) return -1
    this.uncommittedBytes += bytes
    const log = this.log
    const first = log.lastIndex() + 1
    const term = this.term
    for (let i = 0; i < data.length; i++) {
      log.entries.push({ index: first + i, term, type: EntryType.Normal, data: data[i]! })
    }
    this.bcastAppend()
    return first
  }

  private bcastAppend(): void {
    for (const pr of this.progress.values()) {
      if (pr.id !== this.id) this.sendAppend(pr.id, pr, true)
    }
  }

  /** After a commit advance: send what each follower lacks, or at least the new commit index. */
  private bcastCommit(): void {
    const c = this.log.committed
    for (const pr of this.progress.values()) {
      if (pr.id !== this.id && pr.sentCommit < c) this.sendAppend(pr.id, pr, true)
    }
  }

  private sendAppend(to: string, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false
    const log = this.log
    const prevIndex = pr.next - 1
    const prevTerm = log.term(prevIndex)
    if (prevTerm < 0) {
      // The entries this follower needs were compacted: send the snapshot instead (the driver streams it).
      const meta = this.snapshotMeta
      if (meta === null || !pr.recentActive) return false
      this.send(this.msg(MessageType.Snapshot, to, { index: meta.index, logTerm: meta.term }))
      pr.becomeSnapshot(meta.index)
      return true
    }
    const ents =
      pr.next <= log.lastIndex() ? log.sliceBytes(pr.next, this.maxMsgBytes, this.maxMsgEntries) : EMPTY
    if (ents.length === 0 && !sendIfEmpty) return false
    const m = this.msg(MessageType.Append, to, {
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: log.committed,
    })
    this.send(m)
    pr.sentCommit = log.committed
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index
      if (pr.state === ProgressState.Replicate) {
        let bytes = 0
        for (let i = 0; i < ents.length; i++) bytes += dataBytes(ents[i]!)
        pr.next = last + 1
        pr.inflights.add(last, bytes)
      } else {
        pr.probeSent = true
      }
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true
    }
    return true
  }

  private handleAppendResp(m: Message, pr: Progress): void {
    pr.recentActive = true
    pr.appendAckTick = this.ticks
    pr.lastHeard = this.ticks
    const log = this.log
    if (m.reject) {
      let probe = m.hint
      if (m.logTerm > 0) probe = log.findConflictByTerm(m.hint, m.logTerm)
      if (pr.maybeDecrTo(m.index, probe)) {
        if (pr.state === ProgressState.Replicate) {
          const next = pr.next
          pr.becomeProbe()
          pr.next = next
        }
        this.sendAppend(m.from, pr, true)
      }
      return
    }
    const wasPaused = pr.isPaused()
    const moved = pr.maybeUpdate(m.index)
    if (pr.state === ProgressState.Snapshot) {
      if (pr.match < pr.pendingSnapshot) return
      pr.becomeReplicate()
    } else if (!moved && !(pr.match === m.index && pr.state === ProgressState.Probe)) return
    else if (pr.state === ProgressState.Probe) pr.becomeReplicate()
    else pr.inflights.freeLE(m.index)
    if (moved && this.maybeCommit()) this.bcastCommit()
    else if (wasPaused || pr.sentCommit < log.committed)
      this.sendAppend(m.from, pr, pr.sentCommit < log.committed)
    // Keep the pipe full while there is more to send.
    while (pr.next <= log.lastIndex() && this.sendAppend(m.from, pr, false)) {}
    if (this.transferee === m.from && pr.match === log.lastIndex()) this.sendTimeoutNow(m.from)
  }

  private handleHeartbeatResp(m: Message, pr: Progress): void {
    pr.recentActive = true
    pr.lastHeard = this.ticks
    pr.probeSent = false
    if (m.index > pr.ackedTick) pr.ackedTick = m.index
    // Answers heartbeats but has not answered an append for two heartbeat intervals: the appends in flight
    // were lost (a partition, drops). Fall back to probing from the known match.
    if (
      pr.state === ProgressState.Replicate &&
      pr.match < pr.next - 1 &&
      this.ticks - pr.appendAckTick >= 2 * this.heartbeatTick
    ) {
      pr.becomeProbe()
    }
    // Behind: send what it lacks. A probe goes out even when there is nothing new to send (its next is past
    // the end: a member added to an idle cluster, whose first appends were lost), or it never learns where
    // its log stands until the next proposal.
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, pr, pr.state === ProgressState.Probe)
    if (m.context > 0) this.ackRound(m.from, m.context)
  }

  /** maybeCommit's match indexes, kept between calls: it runs on every append answer (no garbage per call). */
  private readonly matchScratch: number[] = []

  private maybeCommit(): boolean {
    // The voters' match indexes in descending order (insertion sort: a handful of voters).
    const matches = this.matchScratch
    const voters = this.voters
    for (let k = 0; k < voters.length; k++) {
      const m = this.progress.get(voters[k]!)?.match ?? 0
      let i = k
      for (; i > 0 && matches[i - 1]! < m; i--) matches[i] = matches[i - 1]!
      matches[i] = m
    }
    const q = matches[voters.length >> 1]!
    const log = this.log
    // Figure 8: count replicas only for an entry of the current term.
    if (q <= log.committed || log.term(q) !== this.term) return false
    const hadCommittedInTerm = log.term(log.committed) === this.term
    for (let i = Math.max(log.committed + 1, this.termStart + 1); i <= q; i++) {
      this.uncommittedBytes -= dataBytes(log.entries[i - log.snapIndex - 1]!)
    }
    if (this.uncommittedBytes < 0) this.uncommittedBytes = 0
    log.commitTo(q)
    if (!hadCommittedInTerm && this.pendingReads.length > 0) {
      const reads = this.pendingReads
      this.pendingReads = []
      for (const r of reads) this.handleRead(r)
    }
    return true
  }

  /**
   * CheckQuorum's round: null when a quorum of voters answered since the last round, else the voters that
   * did not (with how long ago each last answered). Starts the next round.
   */
  private quorumLost(): UnheardVoter[] | null {
    let active = 0
    const unheard: UnheardVoter[] = []
    for (const v of this.voters) {
      const pr = this.progress.get(v)
      if (v === this.id || pr?.recentActive) active++
      else {
        const heard = pr !== undefined && pr.lastHeard >= this.leaderSince ? pr.lastHeard : -1
        unheard.push({ id: v, sinceTicks: heard < 0 ? null : this.ticks - heard })
      }
    }
    for (const pr of this.progress.values()) if (pr.id !== this.id) pr.recentActive = false
    return active >= (this.voters.length >> 1) + 1 ? null : unheard
  }

  /** A leader's step-down on a message of a higher term: a transfer it started, or another member's term. */
  private higherTerm(m: Message): StepDown {
    const transfer =
      this.transferee === m.from && m.type === MessageType.Vote && m.context === 1
        ? 'transfer'
        : 'higher-term'
    return { reason: transfer, term: this.term, from: m.from, newTerm: m.term, message: m.type }
  }

  private sendTimeoutNow(to: string): void {
    this.leaseBroken = true
    this.send(this.msg(MessageType.TimeoutNow, to, {}))
  }

  private bcastHeartbeat(round: number): void {
    for (const pr of this.progress.values()) {
      if (pr.id === this.id) continue
      const commit = Math.min(pr.match, this.log.committed)
      this.send(this.msg(MessageType.Heartbeat, pr.id, { commit, index: this.ticks, context: round }))
    }
  }

  // ---------------------------------------------------------------- reads

  private handleRead(r: ReadRequest): void {
    if (!this.committedInTerm()) {
      this.pendingReads.push(r)
      return
    }
    const index = this.log.committed
    if (this.voters.length === 1 && this.voters[0] === this.id) {
      this.answerRead(r, index)
      return
    }
    if (this.leaseValid()) {
      this.answerRead(r, index)
      return
    }
    const last = this.rounds[this.rounds.length - 1]
    if (
      last &&
      last.index === index &&
      last.acks.size === 1 &&
      this.msgsNow.length > 0 &&
      this.roundUnsent(last)
    ) {
      last.requests.push(r)
      return
    }
    const round: ReadRound = { round: ++this.roundSeq, index, acks: new Set([this.id]), requests: [r] }
    this.rounds.push(round)
    this.bcastHeartbeat(round.round)
  }

  /** Is the round's heartbeat still in the output buffer (so a new request can share it)? */
  private roundUnsent(round: ReadRound): boolean {
    for (let i = this.msgsNow.length - 1; i >= 0; i--) {
      const m = this.msgsNow[i]!
      if (m.type === MessageType.Heartbeat && m.context === round.round) return true
    }
    return false
  }

  private leaseValid(): boolean {
    if (!this.leaseRead || this.leaseBroken || this.transferee !== null) return false
    // Followers refuse votes for electionMin ticks after hearing from us; count heartbeats acknowledged
    // within that window, measured from when we sent them, with one tick of margin.
    const since = this.ticks - this.electionMin + 2
    let n = 0
    for (const v of this.voters) {
      if (v === this.id || this.progress.get(v)!.ackedTick >= since) n++
    }
    return n >= (this.voters.length >> 1) + 1
  }

  private ackRound(from: string, round: number): void {
    let k = -1
    for (let i = 0; i < this.rounds.length; i++) {
      const r = this.rounds[i]!
      if (r.round === round) {
        if (this.voters.includes(from)) r.acks.add(from)
        if (r.acks.size >= (this.voters.length >> 1) + 1) k = i
        break
      }
    }
    if (k < 0) return
    // A quorum acknowledged this round, so every earlier round is confirmed too.
    const done = this.rounds.splice(0, k + 1)
    for (const r of done) for (const req of r.requests) this.answerRead(req, r.index)
  }

  private answerRead(r: ReadRequest, index: number): void {
    if (r.from === this.id) this.readStates.push({ context: r.context, index })
    else this.send(this.msg(MessageType.ReadIndexResp, r.from, { index, context: r.context }))
  }

  private failReads(): void {
    const reqs: ReadRequest[] = [...this.pendingReads]
    for (const r of this.rounds) reqs.push(...r.requests)
    this.pendingReads = []
    this.rounds = []
    for (const r of reqs) {
      if (r.from === this.id) this.readStates.push({ context: r.context, index: -1 })
      else {
        this.refuseNotLeader({ type: MessageType.ReadIndex, from: r.from, context: r.context })
      }
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Answers a Propose or ReadIndex forwarded to a member that does not lead: rejected, with its context. */
  private refuseNotLeader(m: Pick<Message, 'type' | 'from' | 'context'>): void {
    if (m.type === MessageType.Propose && this.answerDuplicate(m)) return
    const type = m.type === MessageType.Propose ? MessageType.ProposeResp : MessageType.ReadIndexResp
    this.send(this.msg(type, m.from, { reject: true, hint: Reject.NotLeader, context: m.context }))
  }

  /** A forward this member answered before as leader (a duplicate): answered the same way. */
  private answerDuplicate(m: Pick<Message, 'from' | 'context'>): boolean {
    const a = this.forwardAnswers.get(m.from, m.context)
    if (!a) return false
    this.send(
      this.msg(
        MessageType.ProposeResp,
        m.from,
        a.index < 0
          ? { reject: true, hint: Reject.Dropped, context: m.context }
          : { index: a.index, logTerm: a.term, context: m.context },
      ),
    )
    return true
  }

  private hardChanged(): boolean {
    const p = this.prevHard
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed
  }

  private newProgress(id: string, learner: boolean): Progress {
    return new Progress(id, learner, this.maxInflight, this.maxInflightBytes)
  }

  private msg(type: MessageType, to: string, f: Partial<Message>): Message {
    return {
      type,
      from: this.id,
      to,
      term: this.term,
      index: f.index ?? 0,
      logTerm: f.logTerm ?? 0,
      entries: f.entries ?? EMPTY,
      commit: f.commit ?? 0,
      reject: f.reject ?? false,
      hint: f.hint ?? NONE,
      context: f.context ?? 0,
    }
  }

  private send(m: Message): void {
    // A leader's appends and heartbeats may leave before its own write is durable: it counts itself toward a
    // commit only once advance() reports the write (Raft thesis §10.2.1). A ProposeResp only says where the
    // entries went, a TimeoutNow promises nothing of this leader's log (its term is durable since it won),
    // and pre-votes change no state. All else (votes, vote grants, acknowledgements) waits for the Ready's
    // writes; so a leader whose disk is full can still hand its leadership over.
    if (
      (this.role === 'leader' &&
        (m.type === MessageType.Append ||
          m.type === MessageType.Heartbeat ||
          m.type === MessageType.Snapshot ||
          m.type === MessageType.ProposeResp ||
          m.type === MessageType.TimeoutNow)) ||
      m.type === MessageType.PreVote
    ) {
      this.msgsNow.push(m)
    } else {
      this.msgsAfter.push(m)
    }
  }
}
