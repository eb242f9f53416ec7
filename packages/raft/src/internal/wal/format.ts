// The on-disk formats of the write-ahead log and the snapshot files. Every integer is little-endian; 64-bit
// numbers (indexes, terms, sequence numbers) are written as low then high 32-bit words and limited to 2^53-1.
//
// A segment file `wal-<seq>-<firstIndex>.log` (both 16 hex digits) is a run of records:
//   u32 bodyLength | u32 crc32c(body) | body
// and every body starts with a kind byte:
//   SEGMENT  1 | version u8 | 0 u16 | seq u64                      always the first record of a segment
//   HARD     2 | 0 u8 | voteLength u16 | term u64 | commit u64 | vote (utf-8)
//   SNAPSHOT 3 | 0 u8 | 0 u16 | index u64 | term u64               the snapshot file of that name is durable
//   ENTRY    4 | type u8 | flags u8 | tagLength u8 | index u64 | term u64 | data (sealed when flags & 1)
//   ENTRIES  5 | 0 u8 | flags u8 (1 or 3: sealed) | tagLength u8 | firstIndex u64 | count u32 |
//            count x (term u64 | type u8 | dataLength u32) | the entries' data, concatenated and sealed as one
//            (written with the `batchSeal` option: one seal per save instead of one per entry; everything
//            before the sealed data stays readable and is passed to the seal hook to bind)
// A sealed ENTRY or ENTRIES record with flags & 2 (the `sealTagBytes` option) ends in an authentication tag of
// tagLength bytes that the sealer computed over all of its sealed data (an AEAD's tag): its checksum covers the
// readable part and the tag only, since the tag already detects any change to the sealed bytes before it (the
// open hook checks it when the log is read). Otherwise tagLength is 0 and the checksum covers the whole body.
// A segment starts with SEGMENT, then the hard state and snapshot reference in force when it was created, so
// the segments before it can be deleted once the log they hold is covered by a snapshot.
//
// A snapshot file `snap-<index>-<term>.snap` (16 hex digits each):
//   magic "SKRSNAP1" | flags u32 | confLength u32 | index u64 | term u64 | dataLength u64 | conf (JSON) | data |
//   u32 crc32c(everything before it)

import { crc32c } from './crc32c.js'

export const RECORD_HEADER = 8
export const KIND_SEGMENT = 1
export const KIND_HARD = 2
export const KIND_SNAPSHOT = 3
export const KIND_ENTRY = 4
export const KIND_ENTRIES = 5
export const FLAG_SEALED = 1
/** The record's checksum covers its readable part and its sealed data's trailing tag only (see above). */
export const FLAG_TAG_CHECKSUM = 2
export const MAX_TAG_BYTES = 64
export const WAL_VERSION = 1
export const SEGMENT_BODY = 12
export const HARD_BODY = 20
export const SNAPSHOT_BODY = 20
export const ENTRY_BODY = 20
/** The fixed part of an ENTRIES body, and the size of each entry's line in its table. */
export const ENTRIES_BODY = 16
export const ENTRIES_ITEM = 13
export const MAX_VOTE_BYTES = 1024
export const SNAP_MAGIC = 'SKRSNAP1'
export const SNAP_HEADER = 40
export const MAX_CONF_BYTES = 16 << 20

const TWO32 = 0x1_0000_0000

export function put64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v % TWO32, off)
  buf.writeUInt32LE(Math.floor(v / TWO32), off + 4)
}

export function get64(buf: Uint8Array, off: number): number {
  const lo = (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0
  const hi = (buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24)) >>> 0
  return hi * TWO32 + lo
}

export function get32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0
}

/**
 * The checksum of the record body `buf[b, b + len)`: CRC-32C of the whole body, or for a record with
 * FLAG_TAG_CHECKSUM of its readable part followed by its tag. -1 (matching no stored checksum) when such a
 * record's lengths do not add up.
 */
export function bodyChecksum(buf: Uint8Array, b: number, len: number): number {
  const kind = buf[b]
  if ((kind !== KIND_ENTRY && kind !== KIND_ENTRIES) || !(buf[b + 2]! & FLAG_TAG_CHECKSUM))
    return crc32c(buf, 0, b, b + len)
  const tag = buf[b + 3]!
  let readable = ENTRY_BODY
  if (kind === KIND_ENTRIES) {
    if (len < ENTRIES_BODY) return -1
    readable = ENTRIES_BODY + get32(buf, b + 12) * ENTRIES_ITEM
  }
  if (tag === 0 || tag > MAX_TAG_BYTES || readable + tag > len) return -1
  return crc32c(buf, crc32c(buf, 0, b, b + readable), b + len - tag, b + len)
}

/** Writes the frame header of the record whose body spans `buf[start + 8, start + 8 + bodyLength)`. */
export function seal(buf: Buffer, start: number, bodyLength: number): void {
  buf.writeUInt32LE(bodyLength, start)
  buf.writeUInt32LE(bodyChecksum(buf, start + RECORD_HEADER, bodyLength), start + 4)
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0')
}

export function segmentName(seq: number, firstIndex: number): string {
  return `wal-${hex16(seq)}-${hex16(firstIndex)}.log`
}

export function snapshotName(index: number, term: number): string {
  return `snap-${hex16(index)}-${hex16(term)}.snap`
}

const SEGMENT_RE = /^wal-([0-9a-f]{16})-([0-9a-f]{16})\.log$/
const SNAPSHOT_RE = /^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/

export function parseSegmentName(name: string): number | null {
  const m = SEGMENT_RE.exec(name)
  if (!m) return null
  const seq = Number.parseInt(m[1]!, 16)
  return Number.isSafeInteger(seq) ? seq : null
}

export function parseSnapshotName(name: string): { index: number; term: number } | null {
  const m = SNAPSHOT_RE.exec(name)
  if (!m) return null
  const index = Number.parseInt(m[1]!, 16)
  const term = Number.parseInt(m[2]!, 16)
  return Number.isSafeInteger(index) && Number.isSafeInteger(term) ? { index, term } : null
}
