// The public shapes of a RaftNode: what it is built from, the state machine it drives, its events and results.
import type { Clock, Transport } from '@swarmkit/transport'
import type { LogStorage } from './storage.js'
import type { Role } from './types.js'

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
  /**
   * CheckQuorum's window in ms: a leader that did not hear from a quorum of voters within one window steps
   * down (after between one and two windows of silence). Default and minimum: the election timeout's lower
   * bound. Longer keeps one voter's stall (a long GC, a wait for a CPU) from deposing the leader; it delays
   * only the step-down of a leader cut off from the others, never the election of a new one.
   */
  readonly checkQuorumMs?: number
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

/** A voter a leader had not heard from within its CheckQuorum window. */
export interface UnheardMember {
  readonly id: string
  /** Milliseconds since it last answered this leader (null: not once in this leadership). */
  readonly ms: number | null
}

/** Why this node stopped leading: the third argument of `leader:change` when it did. */
export interface StepDownInfo {
  /**
   * `check-quorum`: a quorum of voters had not answered within the window (`unheard`, `windowMs`);
   * `higher-term`: a message of a higher term (`from`, `newTerm`, `message`); `transfer`: the target of a
   * leadership transfer campaigned; `removed`: this member was removed from the configuration.
   */
  readonly reason: 'check-quorum' | 'higher-term' | 'transfer' | 'removed'
  /** The term it led. */
  readonly term: number
  readonly unheard?: readonly UnheardMember[]
  readonly windowMs?: number
  readonly from?: string
  readonly newTerm?: number
  /** The kind of message that carried the higher term (e.g. `Vote`, `AppendResp`). */
  readonly message?: string
  /** The same in one sentence, for logs. */
  readonly text: string
}

/** The events a {@link RaftNode} emits (eventemitter3, typed). */
export interface RaftNodeEvents {
  /**
   * The known leader changed (null while there is none). `stepDown` says why, when this node was the leader
   * and no longer is.
   */
  'leader:change': (leaderId: string | null, term: number, stepDown?: StepDownInfo) => void
  'role:change': (role: Role) => void
  /** A fatal failure (storage); the node stops. The failing operations reject as well. */
  error: (err: Error) => void
  /**
   * Storage refused a write for lack of space (`NO_SPACE`): the node keeps running and writes it again until
   * it goes through, and refuses proposals with `NO_SPACE` meanwhile.
   */
  'storage:full': (err: Error) => void
  /** A write went through again after `storage:full`. */
  'storage:writable': () => void
}

/** What `propose` resolves with once the command is committed and applied on this node. */
export interface ProposeResult {
  readonly index: number
  readonly term: number
  readonly result: unknown
}
