// Reading a segment back: frame by frame, telling a torn tail (an append cut short by a crash) from damage
// to data that had been synced.
//
// A crash can leave only the last, unsynced append in doubt, and only at the end of the last segment: every
// earlier segment was synced before the next one was created. In the last segment a bad frame at `off` is a
// torn tail when no well-formed record follows it, or when a 512-byte sector between it and the next
// well-formed record reads as zeros (pages of an unsynced write that never reached the disk). Anything else is
// corruption, reported with the file and offset and never skipped.

import { RaftError } from '../../errors.js'
import {
  bodyChecksum,
  ENTRIES_BODY,
  ENTRIES_ITEM,
  ENTRY_BODY,
  FLAG_SEALED,
  FLAG_TAG_CHECKSUM,
  get32,
  HARD_BODY,
  KIND_ENTRIES,
  KIND_ENTRY,
  KIND_HARD,
  KIND_SEGMENT,
  KIND_SNAPSHOT,
  MAX_TAG_BYTES,
  RECORD_HEADER,
  SEGMENT_BODY,
  SNAPSHOT_BODY,
} from './format.js'

const SECTOR = 512

export function corrupt(file: string, offset: number, what: string, cause?: unknown): RaftError {
  return new RaftError(
    'CORRUPT',
    `${file}: ${what} at offset ${offset}`,
    cause === undefined ? {} : { cause },
  )
}

/**
 * Thrown by a visitor for a record checksummed by its tag only (FLAG_TAG_CHECKSUM) whose sealed data did not
 * open: `error` is the corruption to report unless the record turns out to be a torn tail.
 */
export class UnopenedRecord extends Error {
  constructor(readonly error: RaftError) {
    super(error.message)
  }
}

function allZero(buf: Uint8Array, from: number, to = buf.length): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false
  return true
}

/** True when some whole sector-aligned 512-byte block of `buf[from, to)` is all zeros. */
function hasZeroSector(buf: Uint8Array, from: number, to: number): boolean {
  for (let s = Math.ceil(from / SECTOR) * SECTOR; s + SECTOR <= to; s += SECTOR) {
    if (allZero(buf, s, s + SECTOR)) return true
  }
  return false
}

/** Whether a well-formed record (plausible shape, matching checksum) starts at `p`. */
function recordAt(buf: Uint8Array, p: number, maxBody: number): boolean {
  if (p + RECORD_HEADER + SEGMENT_BODY > buf.length) return false
  const len = get32(buf, p)
  if (len < SEGMENT_BODY || len > maxBody || p + RECORD_HEADER + len > buf.length) return false
  const b = p + RECORD_HEADER
  switch (buf[b]) {
    case KIND_SEGMENT:
      if (len !== SEGMENT_BODY || buf[b + 2] !== 0 || buf[b + 3] !== 0) return false
      break
    case KIND_HARD:
      if (len !== HARD_BODY + (buf[b + 2]! | (buf[b + 3]! << 8)) || buf[b + 1] !== 0) return false
      break
    case KIND_SNAPSHOT:
      if (len !== SNAPSHOT_BODY || buf[b + 1] !== 0 || buf[b + 2] !== 0 || buf[b + 3] !== 0) return false
      break
    case KIND_ENTRY:
      if (len < ENTRY_BODY || !sealFlagsOk(buf[b + 2]!, buf[b + 3]!, true)) return false
      break
    case KIND_ENTRIES:
      if (
        len < ENTRIES_BODY + ENTRIES_ITEM ||
        buf[b + 1] !== 0 ||
        !sealFlagsOk(buf[b + 2]!, buf[b + 3]!, false)
      )
        return false
      break
    default:
      return false
  }
  return bodyChecksum(buf, b, len) === get32(buf, p + 4)
}

/** Flags 0 (plain, ENTRY only), 1 (sealed) or 3 (sealed, tag checksum) with a tag length only for 3. */
export function sealFlagsOk(flags: number, tag: number, plainAllowed: boolean): boolean {
  if (flags === (FLAG_SEALED | FLAG_TAG_CHECKSUM)) return tag >= 1 && tag <= MAX_TAG_BYTES
  return tag === 0 && (flags === FLAG_SEALED || (plainAllowed && flags === 0))
}

function nextRecord(buf: Uint8Array, from: number, maxBody: number): number {
  for (let p = from; p + RECORD_HEADER + SEGMENT_BODY <= buf.length; p++)
    if (recordAt(buf, p, maxBody)) return p
  return -1
}

/**
 * Calls `visit(body, offset)` for each valid record of `buf` in order and returns where the valid records end
 * (`buf.length` when the segment is whole). Throws `CORRUPT` for damage that is not a torn tail of the last
 * segment.
 */
export function scanSegment(
  buf: Uint8Array,
  file: string,
  isLast: boolean,
  maxBody: number,
  visit: (body: Uint8Array, offset: number) => void,
): number {
  let off = 0
  while (off < buf.length) {
    let problem: string | null = null
    let end = 0
    if (buf.length - off < RECORD_HEADER) problem = 'truncated record header'
    else {
      const len = get32(buf, off)
      end = off + RECORD_HEADER + len
      if (len === 0) problem = 'zero-length record'
      else if (len > maxBody) problem = `record length ${len} over the limit of ${maxBody}`
      else if (end > buf.length) problem = 'record runs past the end of the file'
      else if (bodyChecksum(buf, off + RECORD_HEADER, len) !== get32(buf, off + 4))
        problem = 'checksum mismatch'
    }
    if (problem !== null) {
      if (!isLast) throw corrupt(file, off, problem)
      const next = nextRecord(buf, off + 1, maxBody)
      if (next === -1 || hasZeroSector(buf, off, next)) return off
      throw corrupt(file, off, `${problem}, followed by a valid record at offset ${next}`)
    }
    try {
      visit(buf.subarray(off + RECORD_HEADER, end), off)
    } catch (err) {
      if (!(err instanceof UnopenedRecord)) throw err
      // Its tag and readable part were written but not all of its data (a page in the middle of an unsynced
      // append that never reached the disk): a torn tail when nothing but zeros follows it in the last segment.
      if (isLast && allZero(buf, end)) return off
      throw err.error
    }
    off = end
  }
  return off
}
