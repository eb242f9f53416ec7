// The state machine side of a RaftNode: applies committed entries in log order through the apply pipeline,
// settles their proposals with the results, restores snapshots from the leader, and takes snapshots of its own
// (between two applies, at the applied index) by the snapshot policy, compacting the log behind them.
import type { RaftCore } from '../core.js'
import { isRaftError, RaftError } from '../errors.js'
import type { RaftLogger, StateMachine } from '../node-options.js'
import {
  type ConfState,
  type Entry,
  EntryType,
  type LogStorage,
  type Snapshot,
  type SnapshotMeta,
} from '../storage.js'
import { ApplyQueue, type ApplyRoom, type ApplyTask } from './apply-queue.js'
import { decodeConf } from './conf.js'
import type { Proposals } from './proposals.js'

/** Committed entries waiting for the state machine, at most (besides `maxApplyBacklogBytes`). */
const MAX_APPLY_BACKLOG_ENTRIES = 1 << 16

/**
 * Synchronous applies run at most this long before the event loop is let go (to the node's heartbeats, votes
 * and acknowledgements, and the process's other work). A member catching up on dozens of commands of a
 * thousand changes each held its loop for over a second, and missed the leader's heartbeats (issue #18).
 */
const APPLY_SLICE_MS = 10

/** What the applier needs from its node. */
export interface ApplierHost {
  readonly id: string
  readonly sm: StateMachine
  readonly storage: LogStorage
  readonly log: RaftLogger
  readonly proposals: Proposals
  core(): RaftCore | null
  running(): boolean
  learnAddresses(conf: ConfState): void
  /** The configuration as of `index`, with the addresses known for its members. */
  confAt(index: number): ConfState
  /** Something applied: reads and membership changes waiting for it may go on. */
  afterApply(): void
  /** A snapshot was restored: reads waiting for its index resolve. */
  releaseReads(): void
  fail(err: unknown): void
  /**
   * The node's clock, for apply slices: real time in a process, so a long batch lets the loop run; a manual
   * clock in a simulation stands still while it applies, so a seed replays exactly.
   */
  now(): number
  schedule(): void
}

export interface SnapshotPolicy {
  snapshotThreshold: number
  trailingEntries: number
}

export class Applier {
  /** Index of the last entry the state machine applied (or the snapshot it restored). */
  applied = 0
  /** Index of the latest snapshot taken or installed. */
  snapIndex = 0
  private snapshotting = false
  /** Where a snapshot last found the disk full: the next try waits for another interval from there. */
  private snapshotRefusedAt = 0
  private readonly queue: ApplyQueue

  constructor(
    private readonly host: ApplierHost,
    readonly policy: SnapshotPolicy,
    maxBacklogBytes: number,
  ) {
    this.queue = new ApplyQueue(this.run, maxBacklogBytes, MAX_APPLY_BACKLOG_ENTRIES, () => host.schedule())
  }

  /** How many committed entries the core may hand out now. */
  room(): ApplyRoom {
    return this.queue.room()
  }

  /** A snapshot from the leader, restored once `saved` (its write) resolves, in order with the applies. */
  pushSnapshot(snapshot: Snapshot, saved: Promise<void>): void {
    this.queue.push({ kind: 'snapshot', snapshot, saved })
  }

  pushEntries(entries: readonly Entry[]): void {
    this.queue.push({ kind: 'entries', entries })
  }

  /** Drops what waits; resolves once the entry being applied (if any) is done. */
  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** The apply pipeline's step: restore a leader's snapshot or apply entries, then what waited for them. */
  private readonly run = async (task: ApplyTask): Promise<void> => {
    const host = this.host
    if (!host.running()) return
    try {
      if (task.kind === 'snapshot') {
        await task.saved
        if (!host.running()) return
        await this.installSnapshot(task.snapshot)
      } else await this.applyEntries(task.entries)
    } catch (err) {
      host.fail(err)
      return
    }
    if (!host.running()) return
    // Between two applies: a snapshot taken now holds exactly the state at the applied index.
    if (this.snapshotDue()) this.takeSnapshot()
    host.afterApply()
  }

  /** Whether `snapshotThreshold` entries were applied since the last snapshot (or refusal), and none is under way. */
  private snapshotDue(): boolean {
    const { snapshotThreshold } = this.policy
    const since = Math.max(this.snapIndex, this.snapshotRefusedAt)
    return snapshotThreshold > 0 && !this.snapshotting && this.applied - since >= snapshotThreshold
  }

  private async applyEntries(entries: readonly Entry[]): Promise<void> {
    const host = this.host
    const sm = host.sm
    const proposals = host.proposals
    let sliceStart = host.now()
    for (let i = 0; i < entries.length; i++) {
      if (host.now() - sliceStart >= APPLY_SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve))
        if (!host.running()) return
        sliceStart = host.now()
      }
      const e = entries[i]!
      const p = proposals.take(e.index)
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
        if (!host.running()) return
      } else if (e.type === EntryType.Config) {
        host.learnAddresses(decodeConf(e.data))
        host.core()!.confApplied(e.index)
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

  /** A snapshot from the leader is durable: load it into the state machine. */
  private async installSnapshot(s: Snapshot): Promise<void> {
    const host = this.host
    await host.sm.restore(s.data)
    const index = s.meta.index
    this.applied = index
    if (index > this.snapIndex) this.snapIndex = index
    host.learnAddresses(s.meta.conf)
    host.proposals.coveredBySnapshot(index)
    host.releaseReads()
  }

  /**
   * Snapshots the state machine at the applied index. Only applying waits for `stateMachine.snapshot()`;
   * the snapshot is made durable in the background (proposals, replication and commits go on), then the log
   * is compacted behind it, keeping `trailingEntries`.
   */
  private takeSnapshot(): void {
    const host = this.host
    const core = host.core()!
    const index = this.applied
    const term = core.log.term(index)
    if (term < 0) return
    const meta: SnapshotMeta = { index, term, conf: host.confAt(index) }
    this.snapshotting = true
    // Called between two applies, so it sees exactly the state at `index`; a promise it returns may resolve
    // later while applying goes on (the state machine captured its state when called).
    let pending: Uint8Array | Promise<Uint8Array>
    try {
      pending = host.sm.snapshot()
    } catch (err) {
      this.snapshotting = false
      host.log.error?.('state machine snapshot failed', { id: host.id, err })
      return
    }
    Promise.resolve(pending)
      .then(
        (data) => {
          if (data instanceof Uint8Array) return data
          host.log.error?.('stateMachine.snapshot() must return a Uint8Array; no snapshot taken', {
            id: host.id,
          })
          return null
        },
        (err) => {
          host.log.error?.('state machine snapshot failed', { id: host.id, err })
          return null
        },
      )
      .then(async (data) => {
        if (data === null || !host.running()) {
          this.snapshotting = false
          return
        }
        await host.storage.save({ snapshot: { meta, data } })
        this.snapshotting = false
        if (!host.running()) return
        if (index > this.snapIndex) this.snapIndex = index
        core.snapshotTaken(meta)
        const to = index - this.policy.trailingEntries
        if (to > core.log.snapIndex) {
          core.compact(to)
          await host.storage.compact(Math.min(to, core.log.snapIndex))
        }
        // Every apply while this one was written found it under way: if the next came due meanwhile, take it
        // at the next point between two applies (an empty apply), not only once another entry arrives.
        if (this.snapshotDue() && host.running()) this.queue.push({ kind: 'entries', entries: [] })
        host.schedule()
      })
      .catch((err) => {
        this.snapshotting = false
        // A full disk kept nothing of the snapshot: the log stays as it was, and the next try comes one
        // interval later (writing a whole snapshot at every apply would only churn the disk).
        if (isRaftError(err, 'NO_SPACE')) {
          this.snapshotRefusedAt = index
          host.log.warn?.('snapshot not taken: the disk is full', { id: host.id, err })
        } else if (host.running()) host.fail(err)
      })
  }
}
