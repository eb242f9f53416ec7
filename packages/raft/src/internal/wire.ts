import type { Entry } from '../storage.js'
import { type Message, MessageType } from '../types.js'
import { dataBytes, WireEntry } from './wire-entry.js'

/**
 * The wire format between RaftNodes: a small fixed binary layout (little endian), cheaper than a generic
 * codec on the hot path and strictly validated on decode.
 *
 * hello, the first frame of every outbound connection:
 *   u8 kind=0, u8 version, u16 fromLen, from (UTF-8), u16 toLen, to (UTF-8)
 * batch, every later frame:
 *   u8 kind=1, u8 version, u32 count, then per message:
 *   u8 type, u8 reject, f64 term, f64 index, f64 logTerm, f64 commit, f64 hint, f64 context, u32 entries,
 *   then per entry: f64 index, f64 term, u8 type, u32 length, data
 * Numbers are f64 holding non-negative safe integers. `from`/`to` of a batch are bound by the hello.
 */
const VERSION = 1
const HELLO = 0
const BATCH = 1
/** The frame kind of message batches (other kinds are routed elsewhere: snapshot chunks and acks). */
export const BATCH_KIND = BATCH
const MAX_TYPE = MessageType.ProposeResp
const MSG_HEAD = 2 + 6 * 8 + 4
const ENTRY_HEAD = 8 + 8 + 1 + 4
const EMPTY: readonly Entry[] = []
const utf8 = new TextEncoder()
const utf8d = new TextDecoder('utf-8', { fatal: true })

export class WireError extends Error {
  override readonly name = 'WireError'
}

export function encodeHello(from: string, to: string): Uint8Array {
  const f = utf8.encode(from)
  const t = utf8.encode(to)
  const out = new Uint8Array(2 + 2 + f.length + 2 + t.length)
  const dv = new DataView(out.buffer)
  out[0] = HELLO
  out[1] = VERSION
  dv.setUint16(2, f.length, true)
  out.set(f, 4)
  dv.setUint16(4 + f.length, t.length, true)
  out.set(t, 6 + f.length)
  return out
}

export function decodeHello(frame: Uint8Array): { from: string; to: string } {
  if (frame.length < 6 || frame[0] !== HELLO) throw new WireError('expected a hello frame')
  if (frame[1] !== VERSION) throw new WireError(`unsupported wire version ${frame[1]}`)
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const fl = dv.getUint16(2, true)
  if (4 + fl + 2 > frame.length) throw new WireError('bad hello')
  const tl = dv.getUint16(4 + fl, true)
  if (6 + fl + tl !== frame.length || fl === 0 || tl === 0 || fl > 1024 || tl > 1024)
    throw new WireError('bad hello')
  try {
    return { from: utf8d.decode(frame.subarray(4, 4 + fl)), to: utf8d.decode(frame.subarray(6 + fl)) }
  } catch (err) {
    throw new WireError('bad hello', { cause: err })
  }
}

/** Encodes msgs[from..to) into one frame. */
export function encodeBatch(msgs: readonly Message[], from: number, to: number): Uint8Array {
  let size = 6
  for (let i = from; i < to; i++) {
    const ents = msgs[i]!.entries
    size += MSG_HEAD + ents.length * ENTRY_HEAD
    for (let k = 0; k < ents.length; k++) size += dataBytes(ents[k]!)
  }
  const out = new Uint8Array(size)
  const dv = new DataView(out.buffer)
  out[0] = BATCH
  out[1] = VERSION
  dv.setUint32(2, to - from, true)
  let o = 6
  for (let i = from; i < to; i++) {
    const m = msgs[i]!
    out[o] = m.type
    out[o + 1] = m.reject ? 1 : 0
    dv.setFloat64(o + 2, m.term, true)
    dv.setFloat64(o + 10, m.index, true)
    dv.setFloat64(o + 18, m.logTerm, true)
    dv.setFloat64(o + 26, m.commit, true)
    dv.setFloat64(o + 34, m.hint, true)
    dv.setFloat64(o + 42, m.context, true)
    const ents = m.entries
    dv.setUint32(o + 50, ents.length, true)
    o += MSG_HEAD
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!
      const data = e.data
      dv.setFloat64(o, e.index, true)
      dv.setFloat64(o + 8, e.term, true)
      out[o + 16] = e.type
      dv.setUint32(o + 17, data.length, true)
      o += ENTRY_HEAD
      out.set(data, o)
      o += data.length
    }
  }
  return out
}

function count(dv: DataView, at: number): number {
  const v = dv.getFloat64(at, true)
  if (!Number.isSafeInteger(v) || v < 0) throw new WireError('bad number')
  return v
}

/**
 * Decodes and validates a batch from `from` to `to`. Entry data are views into `frame` (which must not be
 * modified later). `maxEntryBytes` bounds each entry.
 */
export function decodeBatch(frame: Uint8Array, from: string, to: string, maxEntryBytes: number): Message[] {
  const len = frame.length
  if (len < 6 || frame[0] !== BATCH) throw new WireError('expected a batch frame')
  if (frame[1] !== VERSION) throw new WireError(`unsupported wire version ${frame[1]}`)
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const n = dv.getUint32(2, true)
  if (n * MSG_HEAD > len - 6) throw new WireError('bad message count')
  const out: Message[] = new Array(n)
  let o = 6
  for (let i = 0; i < n; i++) {
    if (o + MSG_HEAD > len) throw new WireError('truncated message')
    const type = frame[o]!
    const reject = frame[o + 1]!
    if (type < 1 || type > MAX_TYPE || reject > 1) throw new WireError('bad message header')
    const term = count(dv, o + 2)
    const index = count(dv, o + 10)
    const logTerm = count(dv, o + 18)
    const commit = count(dv, o + 26)
    const hint = count(dv, o + 34)
    const context = count(dv, o + 42)
    const ne = dv.getUint32(o + 50, true)
    o += MSG_HEAD
    if (ne * ENTRY_HEAD > len - o) throw new WireError('bad entry count')
    let entries: readonly Entry[] = EMPTY
    if (ne > 0) {
      const list: Entry[] = new Array(ne)
      for (let k = 0; k < ne; k++) {
        if (o + ENTRY_HEAD > len) throw new WireError('truncated entry')
        const ei = count(dv, o)
        const et = count(dv, o + 8)
        const ty = frame[o + 16]!
        const dl = dv.getUint32(o + 17, true)
        o += ENTRY_HEAD
        if (ty > 1) throw new WireError('bad entry type')
        if (dl > maxEntryBytes) throw new WireError(`entry of ${dl} bytes is over the limit`)
        if (o + dl > len) throw new WireError('truncated entry data')
        list[k] = new WireEntry(ei, et, ty as 0 | 1, frame, o, dl)
        o += dl
      }
      entries = list
    }
    out[i] = {
      type: type as MessageType,
      from,
      to,
      term,
      index,
      logTerm,
      entries,
      commit,
      reject: reject === 1,
      hint,
      context,
    }
  }
  if (o !== len) throw new WireError('trailing bytes in frame')
  return out
}
