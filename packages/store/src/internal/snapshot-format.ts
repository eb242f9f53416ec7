// The store snapshot's bytes, written and read a piece at a time. The format is msgpack of
//   [ 'swarmkit-store', 1, version, [ nodes[], services[], tasks[], networks[], secrets[], configs[], clusters[] ],
//     { proposer: { applied, floor, code, message } } ]
// (format 1, unchanged). A msgpack array is its header followed by its elements' encodings, each standing
// alone, so the writer packs a few objects at a time and joins the pieces, and the reader decodes a few at a
// time from where the last ones ended: both are generators that yield after each step, and the caller decides
// when the event loop runs (internal/slices.ts). Run to the end without pausing they are the whole-state
// encode and decode, byte for byte.
import { Packr } from 'msgpackr'
import { StoreError } from '../errors.js'
import { TABLES, type Table } from '../types.js'
import { typeError } from './check.js'
import type { ProposerState } from './codec.js'

export const SNAPSHOT_KIND = 'swarmkit-store'
export const SNAPSHOT_FORMAT = 1

/** Objects packed or decoded per step: about a millisecond of work on this project's machines. */
export const OBJECTS_PER_STEP = 128
/** Bytes copied per step when the pieces are joined. */
const BYTES_PER_STEP = 1 << 20

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' })

/** The state a snapshot holds, as captured when it was asked for (the objects are frozen, so never copied). */
export interface SnapshotState {
  version: number
  tables: Record<Table, readonly Record<string, any>[]>
  proposers: Record<string, ProposerState>
}

function arrayHeader(length: number): Uint8Array {
  if (length < 0x10) return Uint8Array.of(0x90 | length)
  if (length < 0x10000) return Uint8Array.of(0xdc, length >> 8, length & 0xff)
  const h = new Uint8Array(5)
  h[0] = 0xdd
  new DataView(h.buffer).setUint32(1, length)
  return h
}

/** The encoding of an array's elements alone (its header cut off). */
function packElements(items: readonly unknown[]): Uint8Array {
  const packed = packr.pack(items)
  return packed.subarray(arrayHeader(items.length).length)
}

/** Encodes `s` one step at a time; each `yield` is a point where the caller may let the event loop run. */
export function* encodeSnapshotSteps(s: SnapshotState): Generator<void, Uint8Array> {
  const pieces: Uint8Array[] = [
    Uint8Array.of(0x95),
    packElements([SNAPSHOT_KIND, SNAPSHOT_FORMAT, s.version]),
    arrayHeader(TABLES.length),
  ]
  for (const t of TABLES) {
    const objects = s.tables[t]
    pieces.push(arrayHeader(objects.length))
    for (let i = 0; i < objects.length; i += OBJECTS_PER_STEP) {
      pieces.push(packElements(objects.slice(i, i + OBJECTS_PER_STEP)))
      yield
    }
  }
  pieces.push(packr.pack(s.proposers))
  let total = 0
  for (const p of pieces) total += p.length
  const out = new Uint8Array(total)
  let at = 0
  let sinceYield = 0
  for (const p of pieces) {
    out.set(p, at)
    at += p.length
    sinceYield += p.length
    if (sinceYield >= BYTES_PER_STEP) {
      sinceYield = 0
      yield
    }
  }
  return out
}

const corrupt = (what: string, cause?: unknown): StoreError =>
  new StoreError('CORRUPT', `malformed store snapshot: ${what}`, cause === undefined ? undefined : { cause })

/** A chunk of decoded (unchecked) objects of one table, as the reader hands them out. */
export interface SnapshotChunk {
  table: Table
  objects: unknown[]
}

/** What follows the tables: the version (from the header) and the proposers' bookkeeping. */
export interface SnapshotTail {
  version: number
  proposers: Record<string, ProposerState>
}

/**
 * Reads a snapshot `OBJECTS_PER_STEP` objects at a time: yields each chunk of a table's objects as decoded
 * (unchecked: the caller validates them), returns the version and proposers. Throws `CORRUPT` on anything
 * malformed or truncated, `UNSUPPORTED` for a store snapshot of another format.
 */
export function* readSnapshotSteps(data: Uint8Array): Generator<SnapshotChunk, SnapshotTail> {
  if (!(data instanceof Uint8Array)) throw typeError('snapshot', 'be a Uint8Array')
  let pos = 0
  /** Decodes up to `max` values from `pos` on, moving `pos` past them. */
  const values = (max: number): unknown[] => {
    const out: unknown[] = []
    if (max === 0) return out
    if (pos >= data.length) throw corrupt('truncated')
    try {
      packr.unpackMultiple(data.subarray(pos), (value: unknown, _start?: number, end?: number) => {
        out.push(value)
        if (out.length === max) {
          pos += end!
          return false
        }
        return true
      })
    } catch (err) {
      throw corrupt('undecodable', err)
    }
    if (out.length < max) throw corrupt('truncated')
    return out
  }
  /** Reads an array header at `pos`: its length. */
  const header = (): number => {
    const b = data[pos]
    if (b === undefined) throw corrupt('truncated')
    if ((b & 0xf0) === 0x90) {
      pos += 1
      return b & 0x0f
    }
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength)
    if (b === 0xdc && pos + 3 <= data.length) {
      pos += 3
      return dv.getUint16(pos - 2)
    }
    if (b === 0xdd && pos + 5 <= data.length) {
      pos += 5
      return dv.getUint32(pos - 4)
    }
    throw corrupt('unknown format')
  }
  if (header() !== 5) throw corrupt('unknown format')
  const [kind, format, version] = values(3)
  if (kind !== SNAPSHOT_KIND) throw corrupt('unknown format')
  if (format !== SNAPSHOT_FORMAT) {
    throw new StoreError(
      'UNSUPPORTED',
      `store snapshot format ${String(format)} is not one this store reads (format ${SNAPSHOT_FORMAT})`,
    )
  }
  if (!Number.isSafeInteger(version) || (version as number) < 0) throw corrupt('bad header')
  if (header() !== TABLES.length) throw corrupt('bad header')
  for (const table of TABLES) {
    let left = header()
    while (left > 0) {
      const objects = values(Math.min(left, OBJECTS_PER_STEP))
      left -= objects.length
      yield { table, objects }
    }
  }
  const [rawProposers] = values(1)
  if (pos !== data.length) throw corrupt('trailing bytes')
  return { version: version as number, proposers: checkProposers(rawProposers) }
}

function checkProposers(raw: unknown): Record<string, ProposerState> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt('proposers')
  const proposers: Record<string, ProposerState> = {}
  for (const [id, p] of Object.entries(raw as Record<string, any>)) {
    if (
      typeof p !== 'object' ||
      p === null ||
      !Number.isSafeInteger(p.applied) ||
      !Number.isSafeInteger(p.floor) ||
      (p.code !== null && typeof p.code !== 'string') ||
      typeof p.message !== 'string'
    ) {
      throw corrupt('proposer state')
    }
    proposers[id] = { applied: p.applied, floor: p.floor, code: p.code, message: p.message }
  }
  return proposers
}
