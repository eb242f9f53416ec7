// When a RaftNode writes its hard state. Term and vote changes are written at once (a vote must be durable
// before it is granted). A change of the commit index alone is not written on its own: the commit index may be
// learned again after a restart and a lower one is always safe, so it rides along with the next write of
// entries (an idle-to-busy write costs one sync instead of two), or is written after a tick without one.
import type { HardState } from '../storage.js'
import type { Ready } from '../types.js'

export class HardStateWrites {
  /** The hard state last handed to storage. */
  private saved: HardState = { term: 0, vote: null, commit: 0 }
  /** A hard state that differs from `saved` only in its commit index, not yet written. */
  private pending: HardState | null = null
  private pendingAt = 0

  /** Starts from what storage holds. */
  reset(saved: HardState): void {
    this.saved = saved
  }

  get hasPending(): boolean {
    return this.pending !== null
  }

  /** The hard state to write with `rd`, or null (a commit-only change is held back). */
  toSave(rd: Ready, now: number): HardState | null {
    const h = rd.hardState
    if (h !== null) {
      const s = this.saved
      if (h.term === s.term && h.vote === s.vote && rd.entries.length === 0 && rd.snapshot === null) {
        if (this.pending === null) this.pendingAt = now
        this.pending = h
        return null
      }
      this.pending = null
      this.saved = h
      return h
    }
    const p = this.pending
    if (p === null || (rd.entries.length === 0 && rd.snapshot === null)) return null
    this.pending = null
    this.saved = p
    return p
  }

  /** The held-back commit index to write on its own, once it has waited `afterMs` (`now` given). */
  takePending(now?: number, afterMs = 0): HardState | null {
    const hard = this.pending
    if (hard === null || (now !== undefined && now - this.pendingAt < afterMs)) return null
    this.pending = null
    this.saved = hard
    return hard
  }
}
