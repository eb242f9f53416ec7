// Where a node's configuration comes from: the last Config entry in its log, whether committed or not (Raft
// thesis §4.1, as hashicorp/raft does), else the configuration of its snapshot, else the bootstrap members. A
// configuration takes effect when its entry is appended, is recovered from the log on restart, and reverts
// when its entry is truncated away. Applying entries plays no part, so a slow state machine cannot leave a
// restarted node running with an older membership than its log holds.
import { type ConfState, type Entry, EntryType } from '../storage.js'
import { decodeConf } from './conf.js'

interface ConfAt {
  readonly index: number
  readonly conf: ConfState
}

export class ConfLog {
  /** Configuration at the snapshot point (or the bootstrap one). */
  private base: ConfState
  /** Config entries after the snapshot point, by ascending index. */
  private readonly entries: ConfAt[] = []

  constructor(base: ConfState) {
    this.base = base
  }

  /** The configuration in effect: that of the last Config entry, else the base. */
  latest(): ConfState {
    const n = this.entries.length
    return n === 0 ? this.base : this.entries[n - 1]!.conf
  }

  /** Index of the Config entry in effect (0 when the base configuration is). */
  latestIndex(): number {
    const n = this.entries.length
    return n === 0 ? 0 : this.entries[n - 1]!.index
  }

  /** The configuration as of log index `index` (for a snapshot taken there). */
  at(index: number): ConfState {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!
      if (e.index <= index) return e.conf
    }
    return this.base
  }

  /** Records the Config entries among `ents`, which follow every entry seen so far. True if any. */
  appended(ents: readonly Entry[]): boolean {
    let changed = false
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!
      if (e.type !== EntryType.Config) continue
      this.entries.push({ index: e.index, conf: decodeConf(e.data) })
      changed = true
    }
    return changed
  }

  /** Forgets the Config entries at `from` and after (the log was truncated there). True if any. */
  truncatedFrom(from: number): boolean {
    let n = this.entries.length
    const before = n
    while (n > 0 && this.entries[n - 1]!.index >= from) n--
    this.entries.length = n
    return n !== before
  }

  /** The log was compacted up to `index`: the configuration there becomes the base. */
  compacted(index: number): void {
    let k = 0
    while (k < this.entries.length && this.entries[k]!.index <= index) k++
    if (k === 0) return
    this.base = this.entries[k - 1]!.conf
    this.entries.splice(0, k)
  }

  /** The log was replaced by a snapshot with configuration `conf`. */
  reset(conf: ConfState): void {
    this.base = conf
    this.entries.length = 0
  }
}
