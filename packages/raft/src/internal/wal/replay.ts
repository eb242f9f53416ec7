// Rebuilding the persisted state from the segments and the latest snapshot file, with every check the format
// allows: checksums, framing, segment order, log continuity, term order, seal hooks and size limits.

import { join } from 'node:path'
import { RaftError } from '../../errors.js'
import { type FileSystem, O_RDWR, readWhole } from '../../file-system.js'
import type { ConfState, Entry, EntryType, HardState, Snapshot } from '../../storage.js'
import { crc32cInSlices } from './crc32c.js'
import {
  ENTRIES_BODY,
  ENTRIES_ITEM,
  ENTRY_BODY,
  FLAG_SEALED,
  FLAG_TAG_CHECKSUM,
  get32,
  get64,
  HARD_BODY,
  KIND_ENTRIES,
  KIND_ENTRY,
  KIND_HARD,
  KIND_SEGMENT,
  KIND_SNAPSHOT,
  MAX_CONF_BYTES,
  SEGMENT_BODY,
  SNAP_HEADER,
  SNAP_MAGIC,
  SNAPSHOT_BODY,
  snapshotName,
  WAL_VERSION,
} from './format.js'
import { corrupt, scanSegment, sealFlagsOk, UnopenedRecord } from './scan.js'

/** What FileLogStorage tells its `seal`/`open` hooks about the record they transform; index, term and type stay readable on disk. */
export interface SealContext {
  /**
   * `entry`: one entry's data; `snapshot`: a snapshot's data; `entries` (only with the `batchSeal` option): the
   * data of `count` consecutive entries, concatenated, with `index` the first one's index and `term` the last
   * one's term.
   */
  readonly kind: 'entry' | 'entries' | 'snapshot'
  readonly index: number
  readonly term: number
  /** The entry's type; 0 for `snapshot` and `entries`. */
  readonly type: number
  /** For `entries`: how many entries the data holds. */
  readonly count?: number
  /**
   * For `entries`: the record's readable part (first index, count, and every entry's term, type and data length),
   * for the sealer to bind to the data (as associated data).
   */
  readonly header?: Uint8Array
}
/** A `seal` or `open` hook of FileLogStorage (encryption at rest): returns the transformed data for the record `context` describes. */
export type SealHook = (data: Uint8Array, context: SealContext) => Uint8Array
/** `SealHook` that may work in slices, letting the event loop run: used for snapshot data, which is large. */
export type AsyncSealHook = (data: Uint8Array, context: SealContext) => Promise<Uint8Array>

export interface Limits {
  /** Largest record body accepted. */
  readonly maxBody: number
  /** Largest segment file read. */
  readonly maxSegmentFile: number
  /** Largest snapshot data accepted. */
  readonly maxSnapshotBytes: number
  readonly open: SealHook | undefined
  /** Opens snapshot data instead of `open` when given. */
  readonly openAsync?: AsyncSealHook | undefined
  /** The file system the log is read through. */
  readonly fs: FileSystem
}

export interface SegmentState {
  readonly seq: number
  readonly name: string
  /** The lowest entry index written to this segment (or the next index when it was created, if none). */
  minIndex: number
}

export interface Replayed {
  hardState: HardState
  snapshot: { index: number; term: number } | null
  /** The log after the snapshot, contiguous from `snapshot.index + 1` (or 1). */
  entries: Entry[]
  segments: SegmentState[]
  /** Where the valid data of the last segment ends, and its file size. */
  tailEnd: number
  tailSize: number
  /** The last segment was cut short while it was being created: delete it (it holds nothing durable). */
  dropLast: boolean
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Replays `segments` (sorted by seq, already checked to be consecutive). The last segment may end in a torn
 * tail; nothing is repaired here, the caller cuts the file at `tailEnd`.
 */
export async function replaySegments(
  dir: string,
  segments: readonly { seq: number; name: string }[],
  limits: Limits,
): Promise<Replayed> {
  let hardState: HardState = { term: 0, vote: null, commit: 0 }
  let snap = null as { index: number; term: number } | null
  let entries: Entry[] = []
  let first = 1
  let firstAt = ''
  const states: SegmentState[] = []
  let tailEnd = 0
  let tailSize = 0
  let dropLast = false

  for (let k = 0; k < segments.length; k++) {
    const seg = segments[k]!
    const isLast = k === segments.length - 1
    const path = join(dir, seg.name)
    const size = await limits.fs.size(path)
    if (size > limits.maxSegmentFile) {
      throw corrupt(
        seg.name,
        0,
        `segment of ${size} bytes is larger than the limit of ${limits.maxSegmentFile}`,
      )
    }
    const buf = await readWhole(limits.fs, path)
    const lastAtStart = entries.length > 0 ? first + entries.length - 1 : (snap?.index ?? 0)
    const state: SegmentState = { seq: seg.seq, name: seg.name, minIndex: lastAtStart + 1 }
    let sawHeader = false
    const add = (entry: Entry, off: number) => {
      const index = entry.index
      if (index < state.minIndex) state.minIndex = index
      const last = first + entries.length - 1
      if (entries.length > 0 && index >= first && index <= last + 1) {
        entries.length = index - first
        entries.push(entry)
      } else {
        entries = [entry]
        first = index
        firstAt = `${seg.name} offset ${off}`
      }
    }
    const end = scanSegment(buf, seg.name, isLast, limits.maxBody, (body, off) => {
      const kind = body[0]
      if (!sawHeader) {
        if (kind !== KIND_SEGMENT || body.length !== SEGMENT_BODY)
          throw corrupt(seg.name, off, 'missing segment header')
        if (body[1] !== WAL_VERSION) throw corrupt(seg.name, off, `unsupported log format version ${body[1]}`)
        const seq = get64(body, 4)
        if (seq !== seg.seq) throw corrupt(seg.name, off, `segment header says seq ${seq}`)
        sawHeader = true
        return
      }
      switch (kind) {
        case KIND_HARD: {
          const voteLen = body[2]! | (body[3]! << 8)
          if (body.length !== HARD_BODY + voteLen) throw corrupt(seg.name, off, 'malformed hard state record')
          const term = get64(body, 4)
          const commit = get64(body, 12)
          if (!Number.isSafeInteger(term) || !Number.isSafeInteger(commit)) {
            throw corrupt(seg.name, off, 'hard state out of range')
          }
          let vote: string | null = null
          if (voteLen > 0) {
            try {
              vote = utf8.decode(body.subarray(HARD_BODY))
            } catch (e) {
              throw corrupt(seg.name, off, 'hard state vote is not utf-8', e)
            }
          }
          if (term < hardState.term)
            throw corrupt(seg.name, off, `term went back from ${hardState.term} to ${term}`)
          hardState = { term, vote, commit }
          return
        }
        case KIND_SNAPSHOT: {
          if (body.length !== SNAPSHOT_BODY) throw corrupt(seg.name, off, 'malformed snapshot record')
          const index = get64(body, 4)
          const term = get64(body, 12)
          if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) {
            throw corrupt(seg.name, off, 'snapshot record out of range')
          }
          // A snapshot of the node's own log is written in the background and its record may land after
          // that of a newer snapshot: an older record changes nothing.
          if (snap !== null && index < snap.index) return
          const last = first + entries.length - 1
          const keep =
            entries.length > 0 && (index < first || (index <= last && entries[index - first]!.term === term))
          if (!keep) {
            entries = []
            first = index + 1
            firstAt = `${seg.name} offset ${off}`
          }
          snap = { index, term }
          return
        }
        case KIND_ENTRY: {
          if (body.length < ENTRY_BODY || !sealFlagsOk(body[2]!, body[3]!, true))
            throw corrupt(seg.name, off, 'malformed entry record')
          const type = body[1]! as EntryType
          const flags = body[2]!
          const index = get64(body, 4)
          const term = get64(body, 12)
          if (!Number.isSafeInteger(index) || index < 1 || !Number.isSafeInteger(term)) {
            throw corrupt(seg.name, off, 'entry index or term out of range')
          }
          let data: Uint8Array = body.subarray(ENTRY_BODY)
          if (flags & FLAG_SEALED) {
            if (!limits.open) throw mismatch(`${seg.name}: entries are sealed but no open hook was given`)
            try {
              data = limits.open(data, { kind: 'entry', index, term, type })
            } catch (e) {
              const c = corrupt(seg.name, off, `entry ${index} could not be opened`, e)
              throw flags & FLAG_TAG_CHECKSUM ? new UnopenedRecord(c) : c
            }
            if (!(data instanceof Uint8Array)) throw new TypeError('options.open must return a Uint8Array')
          } else {
            if (limits.open)
              throw mismatch(`${seg.name}: entry ${index} is not sealed but an open hook was given`)
            data = new Uint8Array(data)
          }
          add({ index, term, type, data }, off)
          return
        }
        case KIND_ENTRIES: {
          const count = body.length >= ENTRIES_BODY ? get32(body, 12) : 0
          const headerEnd = ENTRIES_BODY + count * ENTRIES_ITEM
          if (
            count < 1 ||
            body.length < headerEnd ||
            body[1] !== 0 ||
            !sealFlagsOk(body[2]!, body[3]!, false)
          ) {
            throw corrupt(seg.name, off, 'malformed entries record')
          }
          if (!(body[2]! & FLAG_SEALED)) throw corrupt(seg.name, off, 'entries record is not sealed')
          const start = get64(body, 4)
          if (!Number.isSafeInteger(start) || start < 1 || !Number.isSafeInteger(start + count - 1)) {
            throw corrupt(seg.name, off, 'entry index out of range')
          }
          let total = 0
          let lastTerm = 0
          for (let k = 0, at = ENTRIES_BODY; k < count; k++, at += ENTRIES_ITEM) {
            lastTerm = get64(body, at)
            if (!Number.isSafeInteger(lastTerm)) throw corrupt(seg.name, off, 'entry term out of range')
            total += get32(body, at + 9)
          }
          if (!limits.open) throw mismatch(`${seg.name}: entries are sealed but no open hook was given`)
          const stop = start + count - 1
          let data: Uint8Array
          try {
            data = limits.open(body.subarray(headerEnd), {
              kind: 'entries',
              index: start,
              term: lastTerm,
              type: 0,
              count,
              header: body.subarray(0, headerEnd),
            })
          } catch (e) {
            const c = corrupt(seg.name, off, `entries ${start}-${stop} could not be opened`, e)
            throw body[2]! & FLAG_TAG_CHECKSUM ? new UnopenedRecord(c) : c
          }
          if (!(data instanceof Uint8Array)) throw new TypeError('options.open must return a Uint8Array')
          if (data.length !== total) {
            throw corrupt(
              seg.name,
              off,
              `entries ${start}-${stop} opened to ${data.length} bytes, not ${total}`,
            )
          }
          for (let k = 0, at = ENTRIES_BODY, from = 0; k < count; k++, at += ENTRIES_ITEM) {
            const len = get32(body, at + 9)
            const entry: Entry = {
              index: start + k,
              term: get64(body, at),
              type: body[at + 8]! as EntryType,
              data: new Uint8Array(data.subarray(from, from + len)),
            }
            from += len
            add(entry, off)
          }
          return
        }
        default:
          throw corrupt(seg.name, off, `unknown record kind ${kind}`)
      }
    })
    if (!sawHeader) {
      // Only the last segment can be headerless: the crash came while it was being created.
      if (!isLast) throw corrupt(seg.name, 0, 'missing segment header')
      dropLast = true
      break
    }
    states.push(state)
    tailEnd = end
    tailSize = buf.length
  }
  if (dropLast && states.length > 0) {
    const prev = states[states.length - 1]!
    tailSize = tailEnd = await limits.fs.size(join(dir, prev.name))
  }

  const base = snap?.index ?? 0
  if (entries.length > 0 && first <= base) {
    entries.splice(0, Math.min(entries.length, base - first + 1))
    first = base + 1
  }
  if (entries.length > 0 && first !== base + 1) {
    throw new RaftError(
      'CORRUPT',
      `${firstAt}: the log resumes at index ${first} but the ${snap ? `snapshot ends at ${base}` : 'log starts at 1'}`,
    )
  }
  let prevTerm = snap?.term ?? 0
  for (const e of entries) {
    if (e.term < prevTerm)
      throw new RaftError('CORRUPT', `entry ${e.index} has term ${e.term} after term ${prevTerm}`)
    prevTerm = e.term
  }
  if (hardState.term < prevTerm) {
    // Entries are written before the hard state of the same batch, so a torn batch can leave the log a term
    // ahead of the hard state; the node has only ever seen that term through these entries.
    hardState = { term: prevTerm, vote: null, commit: hardState.commit }
  }
  return { hardState, snapshot: snap, entries, segments: states, tailEnd, tailSize, dropLast }
}

function mismatch(message: string): RaftError {
  return new RaftError('STORAGE_MISMATCH', message)
}

export function validateConf(conf: unknown, where: string): ConfState {
  const bad = (what: string) => new TypeError(`${where}: ${what}`)
  if (typeof conf !== 'object' || conf === null) throw bad('conf must be an object')
  const c = conf as Record<string, unknown>
  for (const key of ['voters', 'learners'] as const) {
    const list = c[key]
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && id.length > 0)) {
      throw bad(`conf.${key} must be an array of non-empty strings`)
    }
  }
  if (c['removed'] !== undefined) {
    const list = c['removed']
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && id.length > 0)) {
      throw bad('conf.removed must be an array of non-empty strings')
    }
  }
  if (c['addresses'] !== undefined) {
    const a = c['addresses']
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw bad('conf.addresses must be an object')
    for (const v of Object.values(a))
      if (typeof v !== 'string') throw bad('conf.addresses values must be strings')
  }
  const out: {
    voters: string[]
    learners: string[]
    addresses?: Record<string, string>
    removed?: string[]
  } = {
    voters: [...(c['voters'] as string[])],
    learners: [...(c['learners'] as string[])],
  }
  if (c['addresses'] !== undefined) out.addresses = { ...(c['addresses'] as Record<string, string>) }
  if (c['removed'] !== undefined) out.removed = [...(c['removed'] as string[])]
  return out
}

/** Reads and checks the snapshot file for `index`/`term`. */
export async function readSnapshotFile(
  dir: string,
  index: number,
  term: number,
  limits: Limits,
): Promise<Snapshot> {
  const name = snapshotName(index, term)
  const path = join(dir, name)
  let size: number
  try {
    size = await limits.fs.size(path)
  } catch (e) {
    throw new RaftError('CORRUPT', `${name}: the log refers to snapshot ${index} but its file is missing`, {
      cause: e,
    })
  }
  const limit = SNAP_HEADER + MAX_CONF_BYTES + limits.maxSnapshotBytes + 1024 + 4
  if (size > limit)
    throw corrupt(name, 0, `snapshot file of ${size} bytes is larger than the limit of ${limit}`)
  const buf = await readWhole(limits.fs, path)
  if (buf.length < SNAP_HEADER + 4 || buf.toString('latin1', 0, 8) !== SNAP_MAGIC) {
    throw corrupt(name, 0, 'not a snapshot file')
  }
  // Checksummed in slices: a large snapshot is read back for every follower it is sent to.
  if ((await crc32cInSlices(buf, 0, 0, buf.length - 4)) !== get32(buf, buf.length - 4)) {
    throw corrupt(name, buf.length - 4, 'snapshot checksum mismatch')
  }
  const flags = get32(buf, 8)
  const confLen = get32(buf, 12)
  const fIndex = get64(buf, 16)
  const fTerm = get64(buf, 24)
  const dataLen = get64(buf, 32)
  if (fIndex !== index || fTerm !== term) throw corrupt(name, 16, `snapshot file holds ${fIndex}/${fTerm}`)
  if (confLen > MAX_CONF_BYTES || SNAP_HEADER + confLen + dataLen + 4 !== buf.length) {
    throw corrupt(name, 12, 'snapshot lengths do not match the file')
  }
  let conf: ConfState
  try {
    conf = validateConf(JSON.parse(buf.toString('utf8', SNAP_HEADER, SNAP_HEADER + confLen)), name)
  } catch (e) {
    throw corrupt(name, SNAP_HEADER, 'bad membership in snapshot', e)
  }
  let data: Uint8Array = buf.subarray(SNAP_HEADER + confLen, buf.length - 4)
  if (flags & FLAG_SEALED) {
    if (!limits.open) throw mismatch(`${name}: the snapshot is sealed but no open hook was given`)
    try {
      const ctx = { kind: 'snapshot' as const, index, term, type: 0 }
      data = limits.openAsync ? await limits.openAsync(data, ctx) : limits.open(data, ctx)
    } catch (e) {
      throw corrupt(name, SNAP_HEADER + confLen, 'snapshot could not be opened', e)
    }
    if (!(data instanceof Uint8Array)) throw new TypeError('options.open must return a Uint8Array')
  } else {
    if (limits.open) throw mismatch(`${name}: the snapshot is not sealed but an open hook was given`)
    data = new Uint8Array(data)
  }
  if (data.length > limits.maxSnapshotBytes) {
    throw corrupt(name, SNAP_HEADER + confLen, `snapshot data of ${data.length} bytes is over the limit`)
  }
  return { meta: { index, term, conf }, data }
}

/** Cuts the file at `length` and syncs it. */
export async function cutFile(files: FileSystem, path: string, length: number): Promise<void> {
  await files.truncate(path, length)
  const fd = await files.open(path, O_RDWR)
  try {
    await files.fsync(fd)
  } finally {
    await files.close(fd)
  }
}
