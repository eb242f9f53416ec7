// What FileLogStorage.save has accepted: the log's shape (snapshot point and the terms after it) and hard state
// as every save queued so far leaves them. A save is checked against it, applied to it and encoded in call
// order, before it is written, so an invalid save is refused at once and changes nothing.
import { Buffer } from 'node:buffer'
import { RaftError } from '../../errors.js'
import type { Entry, HardState, StorageUpdate } from '../../storage.js'
import { checkCount, checkHardState } from './checks.js'
import { snapshotName } from './format.js'
import { type EntryEncoder, encodeHard, encodeSnapshotRef } from './records.js'
import { type AsyncSealHook, type SealHook, validateConf } from './replay.js'
import { encodeSnapshotFile, type SnapshotFile } from './snapshot-file.js'

/** One save on its way to disk (or a barrier, or work done by the writer between two saves). */
export interface Pending {
  /** The records of this save (snapshot reference, entries, hard state), or null for a barrier. */
  buf: Buffer | null
  snapFile: SnapshotFile | null
  snap: { index: number; term: number; discard: boolean } | null
  firstEntry: number
  lastEntry: number
  /** The terms of the entries saved (`firstEntry` on), for the durable shape of the log. */
  entryTerms?: number[]
  hard: HardState | null
  /** Set when the save's snapshot file could not be written for lack of space: the save fails where it lies. */
  failure?: unknown
  /** The caller waits for nothing else: the write may be made on its thread (`SaveOptions.inline`). */
  inline?: boolean
  /** Work done by the writer between two saves, with the log to itself (see `reseal`). */
  run?: () => Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}

export interface AcceptedLogOptions {
  readonly seal: SealHook | undefined
  /** Seals snapshot data instead of `seal` when given. */
  readonly sealAsync?: AsyncSealHook | undefined
  readonly encoder: EntryEncoder
  readonly maxEntry: number
  readonly maxSnapshot: number
}

/** The shape of a log: its snapshot point, the terms of the entries after it, and its hard state. */
export class LogShape {
  snapIndex = 0
  snapTerm = 0
  /** Terms of the entries after the snapshot: terms[k] is the term of index snapIndex + 1 + k. */
  terms: number[] = []
  hard: HardState = { term: 0, vote: null, commit: 0 }

  protected termAt(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm
    if (index < this.snapIndex) return undefined
    return this.terms[index - this.snapIndex - 1]
  }

  /**
   * Applies a save as it became durable, in the order of its records, deciding as replay does: a snapshot older
   * than the current one changes nothing; one whose entry is in the log keeps the log after it.
   */
  applyWritten(p: Pending): void {
    if (p.snap && p.snap.index >= this.snapIndex) {
      const { index, term } = p.snap
      const keep = index <= this.snapIndex + this.terms.length && this.termAt(index) === term
      if (keep) this.terms.splice(0, index - this.snapIndex)
      else this.terms = []
      this.snapIndex = index
      this.snapTerm = term
    }
    if (p.entryTerms && p.entryTerms.length > 0) {
      this.terms.length = Math.max(0, p.firstEntry - this.snapIndex - 1)
      for (const t of p.entryTerms) this.terms.push(t)
    }
    if (p.hard) this.hard = p.hard
  }

  /** Becomes a copy of `other`. */
  copyFrom(other: LogShape): void {
    this.snapIndex = other.snapIndex
    this.snapTerm = other.snapTerm
    this.terms = other.terms.slice()
    this.hard = other.hard
  }
}

export class AcceptedLog extends LogShape {
  constructor(private readonly o: AcceptedLogOptions) {
    super()
  }

  /** Validates `update` against the accepted state, applies it there, and encodes its records. */
  accept(update: StorageUpdate): Pending {
    if (typeof update !== 'object' || update === null) throw new TypeError('update must be an object')
    const { snapshot, entries, hardState } = update
    const lastIndex = this.snapIndex + this.terms.length

    // 1. Check everything against the state as it would be after each step, changing nothing yet.
    let snapMeta: { index: number; term: number; discard: boolean } | null = null
    let snapFile: SnapshotFile | null = null
    if (snapshot !== undefined) {
      if (typeof snapshot !== 'object' || snapshot === null || typeof snapshot.meta !== 'object') {
        throw new TypeError('update.snapshot must be a Snapshot')
      }
      const index = checkCount(snapshot.meta.index, 'update.snapshot.meta.index')
      const term = checkCount(snapshot.meta.term, 'update.snapshot.meta.term')
      const conf = validateConf(snapshot.meta.conf, 'update.snapshot.meta')
      if (!(snapshot.data instanceof Uint8Array))
        throw new TypeError('update.snapshot.data must be a Uint8Array')
      if (snapshot.data.length > this.o.maxSnapshot) {
        throw new RaftError('TOO_LARGE', `snapshot data of ${snapshot.data.length} bytes is over the limit`)
      }
      if (index < this.snapIndex || (index === this.snapIndex && index > 0 && term !== this.snapTerm)) {
        throw new RangeError(
          `update.snapshot ${index}/${term} is older than the stored snapshot ${this.snapIndex}/${this.snapTerm}`,
        )
      }
      const keep = index <= lastIndex && this.termAt(index) === term
      snapMeta = { index, term, discard: !keep }
      const name = snapshotName(index, term)
      // An asynchronous sealer seals the (large) data as the file is written, in slices.
      snapFile = this.o.sealAsync
        ? { name, sealAsync: this.o.sealAsync, index, term, conf, raw: snapshot.data }
        : { name, ...encodeSnapshotFile(this.o.seal, index, term, conf, snapshot.data) }
    }
    const base = snapMeta ? snapMeta.index : this.snapIndex
    const baseTerm = snapMeta ? snapMeta.term : this.snapTerm
    const last = snapMeta?.discard ? base : lastIndex
    const termBefore = (i: number): number =>
      i === base ? baseTerm : i > base && i <= last ? this.terms[i - this.snapIndex - 1]! : Number.NaN

    let firstEntry = 0
    let lastEntry = 0
    if (entries !== undefined) {
      if (!Array.isArray(entries)) throw new TypeError('update.entries must be an array')
      let prevTerm = 0
      for (let k = 0; k < entries.length; k++) {
        const e = entries[k] as Entry
        if (typeof e !== 'object' || e === null) throw new TypeError(`update.entries[${k}] must be an Entry`)
        checkCount(e.index, `update.entries[${k}].index`, 1)
        checkCount(e.term, `update.entries[${k}].term`)
        if (!Number.isInteger(e.type) || e.type < 0 || e.type > 255) {
          throw new RangeError(`update.entries[${k}].type must be an integer 0-255`)
        }
        // Read once: an entry from the wire makes a new view of its frame on each read.
        const data = e.data
        if (!(data instanceof Uint8Array))
          throw new TypeError(`update.entries[${k}].data must be a Uint8Array`)
        if (data.length > this.o.maxEntry) {
          throw new RaftError('TOO_LARGE', `entry ${e.index} holds ${data.length} bytes, over the limit`)
        }
        if (k === 0) {
          if (e.index <= base || e.index > last + 1) {
            throw new RangeError(
              `update.entries[0].index ${e.index} must lie in ${base + 1}..${last + 1} (after the snapshot, no gap)`,
            )
          }
          prevTerm = termBefore(e.index - 1)
        } else if (e.index !== entries[k - 1]!.index + 1) {
          throw new RangeError(
            `update.entries[${k}].index ${e.index} does not follow ${entries[k - 1]!.index}`,
          )
        }
        if (e.term < prevTerm) {
          throw new RangeError(`update.entries[${k}].term ${e.term} is below the term ${prevTerm} before it`)
        }
        prevTerm = e.term
      }
      if (entries.length > 0) {
        firstEntry = entries[0]!.index
        lastEntry = entries[entries.length - 1]!.index
      }
    }
    let hard: HardState | null = null
    if (hardState !== undefined) {
      hard = checkHardState(hardState, 'update.hardState')
      if (hard.term < this.hard.term) {
        throw new RangeError(`update.hardState.term ${hard.term} is below the stored term ${this.hard.term}`)
      }
      if (hard.term === this.hard.term && this.hard.vote !== null && hard.vote !== this.hard.vote) {
        throw new RangeError(`update.hardState.vote changes the vote already cast in term ${hard.term}`)
      }
    }

    // 2. Encode (sealing may throw; still nothing changed).
    const parts: Buffer[] = []
    if (snapMeta) parts.push(encodeSnapshotRef(snapMeta.index, snapMeta.term))
    if (entries && entries.length > 0) parts.push(this.o.encoder.encode(entries))
    if (hard) parts.push(encodeHard(hard))
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts)

    // 3. Apply to the accepted state.
    if (snapMeta) {
      if (snapMeta.discard) this.terms = []
      else this.terms.splice(0, snapMeta.index - this.snapIndex)
      this.snapIndex = snapMeta.index
      this.snapTerm = snapMeta.term
    }
    let entryTerms: number[] | undefined
    if (entries && entries.length > 0) {
      this.terms.length = firstEntry - this.snapIndex - 1
      entryTerms = entries.map((e) => e.term)
      for (const t of entryTerms) this.terms.push(t)
    }
    if (hard) this.hard = hard
    const noop = () => {}
    return {
      buf,
      snapFile,
      snap: snapMeta,
      firstEntry,
      lastEntry,
      entryTerms,
      hard,
      resolve: noop,
      reject: noop,
    }
  }
}
