// Proposals on their way through a RaftNode: queued until the next Ready, appended by the leader (then known by
// log index until applied), forwarded by a follower (known by context until the leader answers with their
// index), or waiting for a leader. Each settles once: with its apply result, or with why it was lost.
import type { RaftCore } from '../core.js'
import { RaftError } from '../errors.js'
import type { ProposeResult } from '../node-options.js'
import type { ForwardResult } from '../types.js'

export interface Proposal {
  readonly data: Uint8Array
  readonly resolve: (r: ProposeResult) => void
  readonly reject: (e: Error) => void
  /** When waiting for a leader must end (set when the wait starts; 0 before). */
  deadline: number
  term: number
  done: boolean
}

/** What the proposals need from their node. */
export interface ProposalHost {
  readonly leaderWaitMs: number
  readonly electionMaxMs: number
  readonly maxAppendBytes: number
  now(): number
  /** A context unique on this node (shared with read requests). */
  nextContext(): number
}

export function settle(p: Proposal, err: unknown): void {
  if (p.done) return
  p.done = true
  p.reject(err as Error)
}

export class Proposals {
  /** Proposed since the last Ready. */
  queued: Proposal[] = []
  private waitingLeader: Proposal[] = []
  private readonly forwarded = new Map<number, { items: Proposal[]; sentAt: number }>()
  /** Appended at these log indexes (by this leader, or by the leader a follower forwarded them to). */
  readonly byIndex = new Map<number, Proposal>()
  /**
   * The highest index the apply pipeline has taken up (its proposal looked up, or covered by a snapshot):
   * a proposal placed at or below it would never be settled. Applying runs beside the loop that learns where
   * forwarded proposals went, so this can be ahead of the applied index.
   */
  private taken = 0

  constructor(private readonly host: ProposalHost) {}

  /** Queues `data` for the next Ready; settles with its apply result here (or why it was lost). */
  add(data: Uint8Array, signal: AbortSignal | undefined): Promise<ProposeResult> {
    return new Promise<ProposeResult>((resolve, reject) => {
      const p: Proposal = { data, resolve, reject, deadline: 0, term: 0, done: false }
      if (signal) {
        const onAbort = () => settle(p, signal.reason)
        signal.addEventListener('abort', onAbort, { once: true })
      }
      this.queued.push(p)
    })
  }

  /** Hands the queued proposals to the core: appended on a leader, forwarded on a follower. */
  submit(core: RaftCore): void {
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
        for (const p of items) settle(p, new RaftError('PROPOSAL_DROPPED', 'the leader refused the proposal'))
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
        (chunk.length === 0 || bytes + items[end]!.data.length <= this.host.maxAppendBytes)
      ) {
        const p = items[end++]!
        if (p.done) continue
        bytes += p.data.length
        data.push(p.data)
        chunk.push(p)
      }
      start = end
      if (chunk.length === 0) continue
      const ctx = this.host.nextContext()
      core.propose(data, ctx)
      this.forwarded.set(ctx, { items: chunk, sentAt: this.host.now() })
    }
  }

  private waitForLeader(p: Proposal): void {
    if (p.deadline === 0) p.deadline = this.host.now() + this.host.leaderWaitMs
    this.waitingLeader.push(p)
  }

  /** The leader answered forwarded proposals. */
  onForwards(results: readonly ForwardResult[]): void {
    for (const r of results) {
      const f = this.forwarded.get(r.context)
      if (!f) continue
      this.forwarded.delete(r.context)
      if (r.reason === 0) {
        let k = r.index
        for (const p of f.items) {
          p.term = r.term
          if (!p.done) {
            if (k <= this.taken) {
              // Applied (or being applied) before the answer arrived: its outcome is unknown here.
              settle(
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
          settle(p, new RaftError('PROPOSAL_DROPPED', 'the leader refused the proposal'))
      }
    }
    // Refused as "not leader": retried on the next tick or leader change, never in a tight loop.
  }

  /** Leadership changed: what is not committed (`commit`) may never be, and forwarded ones are unanswered. */
  failUncommitted(commit: number): void {
    const lost = () => new RaftError('LOST_LEADERSHIP', 'leadership changed before the proposal committed')
    for (const [index, p] of this.byIndex) {
      if (index > commit) {
        this.byIndex.delete(index)
        settle(p, lost())
      }
    }
    for (const f of this.forwarded.values()) for (const p of f.items) settle(p, lost())
    this.forwarded.clear()
  }

  /**
   * The log cannot grow (a full disk): what is not committed settles with `err()`, its outcome unknown for
   * what reached the core, and what waited to be handed to it is refused.
   */
  refuseUncommitted(commit: number, err: (neverProposed: boolean) => RaftError): void {
    // Appended here or handed to the leader: they may still commit. Queued ones never left this node.
    for (const [index, p] of this.byIndex) {
      if (index > commit) {
        this.byIndex.delete(index)
        settle(p, err(false))
      }
    }
    for (const f of this.forwarded.values()) for (const p of f.items) settle(p, err(false))
    this.forwarded.clear()
    for (const p of this.queued) settle(p, err(true))
    for (const p of this.waitingLeader) settle(p, err(true))
    this.queued = []
    this.waitingLeader = []
  }

  /** A leader is known: what waited for one goes out with the next Ready. */
  leaderKnown(): void {
    if (this.waitingLeader.length > 0) {
      for (const p of this.waitingLeader) this.queued.push(p)
      this.waitingLeader = []
    }
  }

  /** The proposal appended at `index`, if this node tracks one (it is forgotten); the pipeline calls it in order. */
  take(index: number): Proposal | undefined {
    if (index > this.taken) this.taken = index
    const p = this.byIndex.size > 0 ? this.byIndex.get(index) : undefined
    if (p !== undefined) this.byIndex.delete(index)
    return p
  }

  /** Proposals covered by a snapshot from the leader: applied there, so their results are unknown here. */
  coveredBySnapshot(index: number): void {
    if (index > this.taken) this.taken = index
    for (const [i, p] of this.byIndex) {
      if (i > index) continue
      this.byIndex.delete(i)
      settle(
        p,
        new RaftError('LOST_LEADERSHIP', 'the entry was applied from a snapshot; its result is unknown'),
      )
    }
  }

  /** On each tick: hand waiting proposals to a leader, or time them out; time out unanswered forwards. */
  checkDeadlines(now: number, core: RaftCore): void {
    if (this.waitingLeader.length > 0) {
      if (core.leader !== null && core.role !== 'learner') {
        for (const p of this.waitingLeader) this.queued.push(p)
        this.waitingLeader = []
      } else {
        this.waitingLeader = this.waitingLeader.filter((p) => {
          if (p.done) return false
          if (now < p.deadline) return true
          settle(p, new RaftError('NO_LEADER', 'no leader within the wait'))
          return false
        })
      }
    }
    if (this.forwarded.size > 0) {
      for (const [ctx, f] of this.forwarded) {
        if (now - f.sentAt < 2 * this.host.electionMaxMs) continue
        this.forwarded.delete(ctx)
        for (const p of f.items) settle(p, new RaftError('LOST_LEADERSHIP', 'no answer from the leader'))
      }
    }
  }

  failAll(err: RaftError): void {
    for (const p of this.queued) settle(p, err)
    for (const p of this.waitingLeader) settle(p, err)
    for (const f of this.forwarded.values()) for (const p of f.items) settle(p, err)
    for (const p of this.byIndex.values()) settle(p, err)
    this.queued = []
    this.waitingLeader = []
    this.forwarded.clear()
    this.byIndex.clear()
  }
}
