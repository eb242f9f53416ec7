import type { Entry } from '../storage.js'
import { dataBytes } from './wire-entry.js'

/**
 * The whole log a core knows, in memory: entries after the snapshot point (snapIndex, snapTerm). LogStorage
 * has no read path besides `load`, so the core keeps every entry since the last compaction.
 *
 * Watermarks: `stable` (durable, acknowledged by the driver's advance), `inProgress` (handed out in a Ready,
 * possibly still being persisted), `committed`, `applying` (handed out for apply) and `applied`.
 */
export class RaftLog {
  snapIndex = 0
  snapTerm = 0
  entries: Entry[] = []
  committed = 0
  applying = 0
  applied = 0
  stable = 0
  inProgress = 0

  lastIndex(): number {
    return this.snapIndex + this.entries.length
  }

  lastTerm(): number {
    const n = this.entries.length
    return n === 0 ? this.snapTerm : this.entries[n - 1]!.term
  }

  firstIndex(): number {
    return this.snapIndex + 1
  }

  /** Term of entry `i`, or -1 when it is unknown (compacted away or beyond the end). */
  term(i: number): number {
    if (i === this.snapIndex) return this.snapTerm
    if (i < this.snapIndex || i > this.lastIndex()) return -1
    return this.entries[i - this.snapIndex - 1]!.term
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t
  }

  /** Entries lo..hi inclusive; an empty array when lo > hi. Caller guarantees lo > snapIndex. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) return []
    return this.entries.slice(lo - this.snapIndex - 1, hi - this.snapIndex)
  }

  /** Entries from `lo` on, at least one if any exist, at most `maxBytes` of data otherwise. */
  sliceBytes(lo: number, maxBytes: number, maxCount: number): Entry[] {
    const start = lo - this.snapIndex - 1
    const ents = this.entries
    if (start >= ents.length) return []
    let end = start + 1
    let bytes = dataBytes(ents[start]!)
    const limit = Math.min(ents.length, start + maxCount)
    while (end < limit) {
      bytes += dataBytes(ents[end]!)
      if (bytes > maxBytes) break
      end++
    }
    return ents.slice(start, end)
  }

  /** Raft §5.4.1: is a candidate's log (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm()
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())
  }

  /** The largest index <= `index` whose term is <= `term` (the fast-backtracking probe point). */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex())
    while (i > this.snapIndex && this.term(i) > term) i--
    return i
  }

  /** Appends entries that follow the last one (leader path). */
  append(ents: readonly Entry[]): void {
    for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]!)
  }

  /**
   * Follower path (Figure 2, AppendEntries rules 2-5): if our log has (prevIndex, prevTerm), drop the first
   * conflicting entry and all that follow, append the new ones, advance commit. Returns the index of the last
   * new entry, or -1 when the log does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1
    const lastNew = prevIndex + ents.length
    let k = 0
    // Skip entries we already have (same index and term); stop at the first conflict or the end of our log.
    while (k < ents.length) {
      const e = ents[k]!
      if (e.index > this.lastIndex() || this.term(e.index) !== e.term) break
      k++
    }
    if (k < ents.length) {
      const from = ents[k]!.index
      if (from <= this.committed) {
        throw new Error(
          `raft invariant: entry ${from} conflicts with committed entry (commit ${this.committed})`,
        )
      }
      this.truncateFrom(from)
      for (let j = k; j < ents.length; j++) this.entries.push(ents[j]!)
    }
    this.commitTo(Math.min(commit, lastNew))
    return lastNew
  }

  /** Drops entries with index >= `from`. */
  truncateFrom(from: number): void {
    if (from > this.lastIndex()) return
    this.entries.length = from - this.snapIndex - 1
    if (this.stable >= from) this.stable = from - 1
    if (this.inProgress >= from) this.inProgress = from - 1
  }

  /** Drops the entries up to `index` (at most `applied`), which a snapshot covers. */
  compact(index: number): void {
    const to = Math.min(index, this.applied, this.stable)
    if (to <= this.snapIndex) return
    const term = this.term(to)
    this.entries.splice(0, to - this.snapIndex)
    this.snapIndex = to
    this.snapTerm = term
  }

  /** Replaces the whole log with a snapshot's point: everything up to `index` is committed and applied. */
  restore(index: number, term: number): void {
    this.entries = []
    this.snapIndex = index
    this.snapTerm = term
    this.committed = index
    this.applying = index
    this.stable = index
    this.inProgress = index
  }

  commitTo(c: number): boolean {
    const target = Math.min(c, this.lastIndex())
    if (target > this.committed) {
      this.committed = target
      return true
    }
    return false
  }

  /**
   * The driver persisted the entries of a Ready: everything up to the highest of them that is still in the
   * log with the same term (a later truncation may have replaced a tail of them while they were written).
   */
  stableTo(ents: readonly Entry[]): void {
    for (let k = ents.length - 1; k >= 0; k--) {
      const e = ents[k]!
      if (e.index <= this.inProgress && this.term(e.index) === e.term) {
        if (e.index > this.stable) this.stable = e.index
        return
      }
    }
  }
}
