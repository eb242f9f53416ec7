// Encoding of the write-ahead log's records (see format.ts): entries (sealed one by one or in runs), the hard
// state, snapshot references and segment headers.
import { Buffer } from 'node:buffer'
import type { Entry, HardState } from '../../storage.js'
import { dataBytes } from '../wire-entry.js'
import {
  ENTRIES_BODY,
  ENTRIES_ITEM,
  ENTRY_BODY,
  FLAG_SEALED,
  FLAG_TAG_CHECKSUM,
  seal as frame,
  get32,
  HARD_BODY,
  KIND_ENTRIES,
  KIND_ENTRY,
  KIND_HARD,
  KIND_SEGMENT,
  KIND_SNAPSHOT,
  put64,
  RECORD_HEADER,
  SEGMENT_BODY,
  SNAPSHOT_BODY,
  WAL_VERSION,
} from './format.js'
import type { SealHook } from './replay.js'

/** Room a seal hook may add to data (nonce, tag, key id). */
export const SEAL_SLACK = 1024
/** The most entries sealed together in one record. */
const MAX_RUN = 4096

export interface EntryEncoderOptions {
  readonly seal: SealHook | undefined
  /** Seal the entries of one save together, in runs (needs `seal`). */
  readonly batchSeal: boolean
  /** Tag length of sealed data when records checksum only their readable part and tag (0: whole body). */
  readonly sealTag: number
  readonly maxEntry: number
  /** The largest record body. */
  readonly maxBody: number
}

export class EntryEncoder {
  constructor(private readonly o: EntryEncoderOptions) {}

  /** The records of `entries`: ENTRY records, or ENTRIES records of runs sealed together (`batchSeal`). */
  encode(entries: readonly Entry[]): Buffer {
    // Each record as its readable part and its data (sealed when there is a hook); `head` null for an ENTRY
    // record, whose fixed part is written below.
    const heads: (Buffer | null)[] = []
    const datas: Uint8Array[] = []
    let size = 0
    const seal = this.o.seal
    for (let i = 0; i < entries.length; ) {
      const e = entries[i]!
      let j = i + 1
      if (this.o.batchSeal) {
        // The longest run from i whose record stays within the body limit however much sealing adds.
        let total = dataBytes(e)
        while (j < entries.length && j - i < MAX_RUN) {
          const n = dataBytes(entries[j]!)
          if (ENTRIES_BODY + (j - i + 1) * ENTRIES_ITEM + total + n > ENTRY_BODY + this.o.maxEntry) break
          total += n
          j++
        }
      }
      if (j - i === 1) {
        let data = e.data
        if (seal) {
          data = seal(data, { kind: 'entry', index: e.index, term: e.term, type: e.type })
          if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
          if (data.length > this.o.maxEntry + SEAL_SLACK)
            throw new RangeError('options.seal grew the data too much')
          if (data.length < this.o.sealTag) throw new RangeError('options.seal returned less than its tag')
        }
        heads.push(null)
        datas.push(data)
        size += RECORD_HEADER + ENTRY_BODY + data.length
      } else {
        const { head, data } = this.sealRun(entries, i, j)
        heads.push(head)
        datas.push(data)
        size += RECORD_HEADER + head.length + data.length
      }
      i = j
    }
    const buf = Buffer.allocUnsafe(size)
    let off = 0
    for (let k = 0, i = 0; k < heads.length; k++) {
      const head = heads[k]!
      const data = datas[k]!
      const b = off + RECORD_HEADER
      let body: number
      if (head === null) {
        const e = entries[i++]!
        buf[b] = KIND_ENTRY
        buf[b + 1] = e.type
        buf[b + 2] = seal ? FLAG_SEALED | (this.o.sealTag ? FLAG_TAG_CHECKSUM : 0) : 0
        buf[b + 3] = seal ? this.o.sealTag : 0
        put64(buf, b + 4, e.index)
        put64(buf, b + 12, e.term)
        body = ENTRY_BODY
      } else {
        buf.set(head, b)
        body = head.length
        i += get32(head, 12)
      }
      buf.set(data, b + body)
      frame(buf, off, body + data.length)
      off = b + body + data.length
    }
    return buf
  }

  /** Seals `entries[i, j)` as one ENTRIES record: its readable part and its sealed data. */
  private sealRun(entries: readonly Entry[], i: number, j: number): { head: Buffer; data: Uint8Array } {
    const count = j - i
    const head = Buffer.allocUnsafe(ENTRIES_BODY + count * ENTRIES_ITEM)
    head[0] = KIND_ENTRIES
    head[1] = 0
    head[2] = FLAG_SEALED | (this.o.sealTag ? FLAG_TAG_CHECKSUM : 0)
    head[3] = this.o.sealTag
    put64(head, 4, entries[i]!.index)
    head.writeUInt32LE(count, 12)
    let total = 0
    for (let k = i, at = ENTRIES_BODY; k < j; k++, at += ENTRIES_ITEM) {
      const e = entries[k]!
      put64(head, at, e.term)
      head[at + 8] = e.type
      const n = dataBytes(e)
      head.writeUInt32LE(n, at + 9)
      total += n
    }
    const plain = Buffer.allocUnsafe(total)
    for (let k = i, at = 0; k < j; k++) {
      const data = entries[k]!.data
      plain.set(data, at)
      at += data.length
    }
    const data = this.o.seal!(plain, {
      kind: 'entries',
      index: entries[i]!.index,
      term: entries[j - 1]!.term,
      type: 0,
      count,
      header: head,
    })
    if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
    if (head.length + data.length > this.o.maxBody)
      throw new RangeError('options.seal grew the data too much')
    if (data.length < this.o.sealTag) throw new RangeError('options.seal returned less than its tag')
    return { head, data }
  }
}

/** The records a new segment starts with: its header, then the durable snapshot reference and hard state. */
export function segmentHead(
  seq: number,
  snap: { index: number; term: number } | null,
  hard: HardState | null,
): Buffer[] {
  const parts: Buffer[] = []
  const head = Buffer.alloc(RECORD_HEADER + SEGMENT_BODY)
  head[RECORD_HEADER] = KIND_SEGMENT
  head[RECORD_HEADER + 1] = WAL_VERSION
  put64(head, RECORD_HEADER + 4, seq)
  frame(head, 0, SEGMENT_BODY)
  parts.push(head)
  if (snap) parts.push(encodeSnapshotRef(snap.index, snap.term))
  if (hard) parts.push(encodeHard(hard))
  return parts
}

export function encodeHard(h: HardState): Buffer {
  const vote = h.vote === null ? Buffer.alloc(0) : Buffer.from(h.vote)
  const buf = Buffer.alloc(RECORD_HEADER + HARD_BODY + vote.length)
  const b = RECORD_HEADER
  buf[b] = KIND_HARD
  buf.writeUInt16LE(vote.length, b + 2)
  put64(buf, b + 4, h.term)
  put64(buf, b + 12, h.commit)
  buf.set(vote, b + HARD_BODY)
  frame(buf, 0, HARD_BODY + vote.length)
  return buf
}

export function encodeSnapshotRef(index: number, term: number): Buffer {
  const buf = Buffer.alloc(RECORD_HEADER + SNAPSHOT_BODY)
  buf[RECORD_HEADER] = KIND_SNAPSHOT
  put64(buf, RECORD_HEADER + 4, index)
  put64(buf, RECORD_HEADER + 12, term)
  frame(buf, 0, SNAPSHOT_BODY)
  return buf
}
