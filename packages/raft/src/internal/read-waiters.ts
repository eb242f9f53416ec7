// Linearizable reads on their way through a RaftNode: queued until the next Ready, sent as one ReadIndex
// request per batch, answered with a read index, then held until this node's state machine has applied up to
// it. A batch whose leader changed or whose answer got lost is asked again; a read with no leader in time
// rejects with NO_LEADER.
import type { RaftCore } from '../core.js'
import { RaftError } from '../errors.js'
import type { ReadState } from '../types.js'

export interface ReadWaiter {
  readonly resolve: (index: number) => void
  readonly reject: (e: Error) => void
  readonly deadline: number
  done: boolean
}

interface ReadBatch {
  readonly reads: ReadWaiter[]
  readonly sentAt: number
}

/** What the reads need from their node. */
export interface ReadHost {
  readonly electionMaxMs: number
  now(): number
  /** A context unique on this node (shared with forwarded proposals). */
  nextContext(): number
}

function resolveRead(r: ReadWaiter, index: number): void {
  if (r.done) return
  r.done = true
  r.resolve(index)
}

export class ReadWaiters {
  /** Asked since the last Ready. */
  queue: ReadWaiter[] = []
  private waitsLeader: ReadWaiter[] = []
  private readonly batches = new Map<number, ReadBatch>()
  /** Answered, waiting for the state machine to reach their index (sorted by index). */
  private waits: { index: number; reads: ReadWaiter[] }[] = []

  constructor(private readonly host: ReadHost) {}

  /** Reads answered but not yet applied here. */
  get applying(): boolean {
    return this.waits.length > 0
  }

  /** Queues a read for the next Ready; it rejects with NO_LEADER when no leader answers by `deadline`. */
  add(deadline: number, signal: AbortSignal | undefined): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const r: ReadWaiter = { resolve, reject, deadline, done: false }
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
      this.queue.push(r)
    })
  }

  /** Sends the queued reads as one ReadIndex request (or holds them until a leader is known). */
  submit(core: RaftCore): void {
    const reads = this.queue.filter((r) => !r.done)
    this.queue = []
    if (reads.length === 0) return
    const ctx = this.host.nextContext()
    if (core.readIndex(ctx)) this.batches.set(ctx, { reads, sentAt: this.host.now() })
    else this.waitsLeader.push(...reads)
  }

  /** Answers from the core; `applied` is this node's applied index. */
  onReadStates(states: readonly ReadState[], applied: number): void {
    for (const s of states) {
      const b = this.batches.get(s.context)
      if (!b) continue
      this.batches.delete(s.context)
      if (s.index < 0) {
        for (const r of b.reads) if (!r.done) this.waitsLeader.push(r)
        continue
      }
      if (s.index <= applied) {
        for (const r of b.reads) resolveRead(r, s.index)
        continue
      }
      const w = { index: s.index, reads: b.reads }
      const ws = this.waits
      let i = ws.length
      while (i > 0 && ws[i - 1]!.index > s.index) i--
      ws.splice(i, 0, w)
    }
  }

  /** The state machine reached `applied`: the reads waiting for it resolve. */
  release(applied: number): void {
    const ws = this.waits
    let k = 0
    while (k < ws.length && ws[k]!.index <= applied) {
      const w = ws[k++]!
      for (const r of w.reads) resolveRead(r, w.index)
    }
    if (k > 0) this.waits = ws.slice(k)
  }

  /**
   * The leader or term changed: reads in flight to an old leader are asked again, and with a leader known
   * (`leaderKnown`) the reads that waited for one go out.
   */
  leaderChanged(leaderKnown: boolean): void {
    if (leaderKnown && this.waitsLeader.length > 0) {
      for (const r of this.waitsLeader) this.queue.push(r)
      this.waitsLeader = []
    }
    if (this.batches.size > 0) {
      for (const b of this.batches.values()) for (const r of b.reads) this.queue.push(r)
      this.batches.clear()
    }
  }

  /**
   * On each tick: reads past their deadline reject; lost rounds are asked again after an election timeout. A
   * read answered with an index this node has not seen committed (`committed`) waits for a leader to bring
   * it there, and rejects at its deadline too (a member cut off or removed would wait forever); one that waits
   * only for the state machine to apply what is committed waits as long as that takes.
   */
  checkDeadlines(now: number, leaderKnown: boolean, committed: number): void {
    if (this.waitsLeader.length > 0) {
      const again: ReadWaiter[] = []
      for (const r of this.waitsLeader) {
        if (r.done) continue
        if (now >= r.deadline) {
          r.done = true
          r.reject(new RaftError('NO_LEADER', 'no leader within the wait'))
        } else again.push(r)
      }
      this.waitsLeader = []
      if (leaderKnown) this.queue.push(...again)
      else this.waitsLeader = again
    }
    if (this.waits.length > 0 && this.waits[this.waits.length - 1]!.index > committed) {
      for (const w of this.waits) {
        if (w.index <= committed) continue
        w.reads = w.reads.filter((r) => {
          if (r.done) return false
          if (now < r.deadline) return true
          r.done = true
          r.reject(
            new RaftError('NO_LEADER', 'no leader brought this member to the read index within the wait'),
          )
          return false
        })
      }
      this.waits = this.waits.filter((w) => w.reads.length > 0)
    }
    if (this.batches.size > 0) {
      // A read round can be lost with its messages: ask again after an election timeout.
      for (const [ctx, b] of this.batches) {
        if (now - b.sentAt < this.host.electionMaxMs) continue
        this.batches.delete(ctx)
        for (const r of b.reads) {
          if (r.done) continue
          if (now >= r.deadline) {
            r.done = true
            r.reject(new RaftError('NO_LEADER', 'no confirmed leader within the wait'))
          } else this.queue.push(r)
        }
      }
    }
  }

  failAll(err: RaftError): void {
    const reads: ReadWaiter[] = [...this.queue, ...this.waitsLeader]
    for (const b of this.batches.values()) reads.push(...b.reads)
    for (const w of this.waits) reads.push(...w.reads)
    for (const r of reads) {
      if (!r.done) {
        r.done = true
        r.reject(err)
      }
    }
    this.queue = []
    this.waitsLeader = []
    this.batches.clear()
    this.waits = []
  }
}
