// Snapshot transfer frames, sent on the same connections as message batches (kinds 2 and 3):
//   chunk: u8 kind=2, u8 version, f64 term, f64 index, f64 logTerm, f64 offset, f64 total, u32 confLength,
//          conf (JSON; in the chunk at offset 0 only), data
//   ack:   u8 kind=3, u8 version, f64 index, f64 received, u8 status (ACK_OK: got everything up to `received`;
//          ACK_GAP: a chunk went missing, resend from `received`; ACK_ABORT: the receiver gives the transfer up)
// Numbers are f64 holding non-negative safe integers; every field is checked on decode.
import type { ConfState } from '../storage.js'
import { WireError } from './wire.js'

export const CHUNK = 2
export const ACK = 3
export const ACK_ABORT = 0
export const ACK_OK = 1
export const ACK_GAP = 2
const VERSION = 1
const CHUNK_HEAD = 2 + 5 * 8 + 4
const ACK_SIZE = 2 + 2 * 8 + 1
const MAX_CONF = 1 << 20
const utf8 = new TextEncoder()
const utf8d = new TextDecoder('utf-8', { fatal: true })

export interface Chunk {
  term: number
  index: number
  logTerm: number
  offset: number
  total: number
  conf: ConfState | null
  data: Uint8Array
}

export function encodeChunk(c: Chunk): Uint8Array {
  const conf = c.conf ? utf8.encode(JSON.stringify(c.conf)) : new Uint8Array(0)
  const out = new Uint8Array(CHUNK_HEAD + conf.length + c.data.length)
  const dv = new DataView(out.buffer)
  out[0] = CHUNK
  out[1] = VERSION
  dv.setFloat64(2, c.term, true)
  dv.setFloat64(10, c.index, true)
  dv.setFloat64(18, c.logTerm, true)
  dv.setFloat64(26, c.offset, true)
  dv.setFloat64(34, c.total, true)
  dv.setUint32(42, conf.length, true)
  out.set(conf, CHUNK_HEAD)
  out.set(c.data, CHUNK_HEAD + conf.length)
  return out
}

function num(dv: DataView, at: number): number {
  const v = dv.getFloat64(at, true)
  if (!Number.isSafeInteger(v) || v < 0) throw new WireError('bad number in snapshot frame')
  return v
}

function checkConf(v: unknown): ConfState {
  const c = v as ConfState
  const ids = (l: unknown) => Array.isArray(l) && l.every((x) => typeof x === 'string' && x.length > 0)
  if (typeof c !== 'object' || c === null || !ids(c.voters) || !ids(c.learners)) {
    throw new WireError('bad membership in snapshot chunk')
  }
  if (c.addresses !== undefined) {
    if (typeof c.addresses !== 'object' || c.addresses === null) throw new WireError('bad addresses')
    for (const a of Object.values(c.addresses))
      if (typeof a !== 'string') throw new WireError('bad addresses')
  }
  return c
}

/** Decodes a chunk; `maxChunk` bounds its data and `maxTotal` the snapshot it belongs to. */
export function decodeChunk(frame: Uint8Array, maxChunk: number, maxTotal: number): Chunk {
  if (frame.length < CHUNK_HEAD || frame[0] !== CHUNK) throw new WireError('expected a snapshot chunk')
  if (frame[1] !== VERSION) throw new WireError(`unsupported wire version ${frame[1]}`)
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const term = num(dv, 2)
  const index = num(dv, 10)
  const logTerm = num(dv, 18)
  const offset = num(dv, 26)
  const total = num(dv, 34)
  const confLen = dv.getUint32(42, true)
  if (confLen > MAX_CONF || CHUNK_HEAD + confLen > frame.length) throw new WireError('bad snapshot chunk')
  const data = frame.subarray(CHUNK_HEAD + confLen)
  if (total > maxTotal) throw new WireError(`snapshot of ${total} bytes is over the limit of ${maxTotal}`)
  if (data.length > maxChunk || offset + data.length > total) throw new WireError('bad snapshot chunk size')
  if ((offset === 0) !== confLen > 0) throw new WireError('membership goes with the first chunk only')
  let conf: ConfState | null = null
  if (confLen > 0) {
    try {
      conf = checkConf(JSON.parse(utf8d.decode(frame.subarray(CHUNK_HEAD, CHUNK_HEAD + confLen))))
    } catch (err) {
      throw err instanceof WireError ? err : new WireError('bad membership in snapshot chunk', { cause: err })
    }
  }
  return { term, index, logTerm, offset, total, conf, data }
}

export function encodeAck(index: number, received: number, status: number): Uint8Array {
  const out = new Uint8Array(ACK_SIZE)
  const dv = new DataView(out.buffer)
  out[0] = ACK
  out[1] = VERSION
  dv.setFloat64(2, index, true)
  dv.setFloat64(10, received, true)
  out[18] = status
  return out
}

export function decodeAck(frame: Uint8Array): { index: number; received: number; status: number } {
  if (frame.length !== ACK_SIZE || frame[0] !== ACK || frame[1] !== VERSION || frame[18]! > ACK_GAP) {
    throw new WireError('bad snapshot ack')
  }
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  return { index: num(dv, 2), received: num(dv, 10), status: frame[18]! }
}
