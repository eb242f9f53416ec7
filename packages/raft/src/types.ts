import type { Entry, HardState, Snapshot } from './storage.js'

/** The roles a node can be in. */
export type Role = 'leader' | 'follower' | 'candidate' | 'precandidate' | 'learner'

/** Kinds of messages between cores. Numbers, so they encode small. */
export const MessageType = {
  /** Leader to follower: entries after (index, logTerm), and the leader's commit index. */
  Append: 1,
  /** Follower to leader: success with the last matching index, or a rejection with a backtracking hint. */
  AppendResp: 2,
  /** Leader to follower: liveness, commit index, and a read round in `context` (0 for none). */
  Heartbeat: 3,
  HeartbeatResp: 4,
  Vote: 5,
  VoteResp: 6,
  /** Pre-election poll: would you vote for me at term + 1? Changes no state. */
  PreVote: 7,
  PreVoteResp: 8,
  /** Leader to the transfer target: campaign now. */
  TimeoutNow: 9,
  /** Follower to leader: a read request identified by `context`. */
  ReadIndex: 10,
  ReadIndexResp: 11,
  /** Follower to leader: forwarded proposals identified by `context`. */
  Propose: 12,
  ProposeResp: 13,
  /**
   * Leader to follower: install the snapshot `index`/`logTerm` (the follower's log lacks entries the leader
   * compacted). The driver streams the data in chunks; the receiving driver steps the message with `snapshot`
   * set once all of it arrived. Answered with an AppendResp.
   */
  Snapshot: 14,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/**
 * One message between cores. Every field is always present (0, false or empty when unused), which keeps the
 * object shape stable for the JIT and the wire encoding trivial. Field meanings per type:
 * - Append: `index`/`logTerm` identify the entry before `entries`; `commit` is the leader's commit index.
 * - AppendResp: success: `index` is the follower's last index matching the leader. Reject: `index` is the
 *   rejected `index`, `hint`/`logTerm` point at the follower's last entry that may match (fast backtracking).
 * - Heartbeat/HeartbeatResp: `commit` (request only), `index` carries the leader's tick when sent (echoed),
 *   `context` the read round (echoed).
 * - Vote/PreVote: `index`/`logTerm` are the candidate's last entry; `context` 1 marks a leadership transfer.
 * - ProposeResp/ReadIndexResp: `index` (and `logTerm` for proposals) of the result; `reject` with a `hint`
 *   reason (1: not leader, 2: dropped by the leader).
 */
export interface Message {
  type: MessageType
  from: string
  to: string
  term: number
  index: number
  logTerm: number
  entries: readonly Entry[]
  commit: number
  reject: boolean
  hint: number
  context: number
  /** Snapshot messages only, on the receiving side: the whole snapshot. */
  snapshot?: Snapshot
}

/** A ReadIndex outcome: `index` is the commit index to wait for, or -1 when the request failed. */
export interface ReadState {
  readonly context: number
  readonly index: number
}

/** The outcome of proposals forwarded by a follower: `index` of the first entry and `term`, or `index` -1. */
export interface ForwardResult {
  readonly context: number
  readonly index: number
  readonly term: number
  /** 0 on success, 1 when the target was not leader (safe to retry), 2 when the leader dropped them. */
  readonly reason: number
}

/** Everything the core asks its driver to do, in one batch. */
export interface Ready {
  /** Role or leader changed since the last Ready (the current values are on the core). */
  readonly softStateChanged: boolean
  /** Persist this before sending `messages`, or null when unchanged. */
  readonly hardState: HardState | null
  /**
   * A snapshot from the leader to persist (before `entries`) and restore into the state machine before applying
   * `committed`, or null.
   */
  readonly snapshot: Snapshot | null
  /** Persist these (they may overwrite a stored suffix) before sending `messages`. */
  readonly entries: readonly Entry[]
  /** Safe to send at once, before persisting: a leader's appends and heartbeats, pre-votes. */
  readonly messagesNow: readonly Message[]
  /** Send only after `hardState` and `entries` are durable. */
  readonly messages: readonly Message[]
  /** Committed entries to apply, in order, after persisting this Ready. */
  readonly committed: readonly Entry[]
  readonly readStates: readonly ReadState[]
  readonly forwards: readonly ForwardResult[]
}
