import { Packr } from 'msgpackr'
import type { Entry } from '../storage.js'
import { type Message, MessageType } from '../types.js'

/**
 * The wire format between RaftNodes, one msgpack array per frame:
 * - hello, first frame of every outbound connection: [0, version, from, to]
 * - batch: [1, m0, m1, ...] with each m = [type, term, index, logTerm, commit, reject, hint, context, entries]
 *   and entries = [index, term, type, data, index, term, type, data, ...] (flat).
 * `from` and `to` are bound by the hello. Everything is validated on decode; a bad frame closes the connection.
 */
const VERSION = 1
const HELLO = 0
const BATCH = 1
const MAX_TYPE = MessageType.ProposeResp
const EMPTY: readonly Entry[] = []

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false })

export class WireError extends Error {
  override readonly name = 'WireError'
}

export function encodeHello(from: string, to: string): Uint8Array {
  return packr.pack([HELLO, VERSION, from, to])
}

export function decodeHello(frame: Uint8Array): { from: string; to: string } {
  const v = unpack(frame)
  if (!Array.isArray(v) || v.length !== 4 || v[0] !== HELLO) throw new WireError('expected a hello frame')
  if (v[1] !== VERSION) throw new WireError(`unsupported wire version ${String(v[1])}`)
  if (typeof v[2] !== 'string' || typeof v[3] !== 'string' || v[2].length > 256 || v[3].length > 256) {
    throw new WireError('bad hello')
  }
  return { from: v[2], to: v[3] }
}

export function encodeBatch(msgs: readonly Message[], from: number, to: number): Uint8Array {
  const out: unknown[] = new Array(to - from + 1)
  out[0] = BATCH
  for (let i = from; i < to; i++) {
    const m = msgs[i]!
    let ents: unknown[] | number = 0
    const n = m.entries.length
    if (n > 0) {
      ents = new Array(n * 4)
      for (let k = 0; k < n; k++) {
        const e = m.entries[k]!
        ents[k * 4] = e.index
        ents[k * 4 + 1] = e.term
        ents[k * 4 + 2] = e.type
        ents[k * 4 + 3] = e.data
      }
    }
    out[i - from + 1] = [
      m.type,
      m.term,
      m.index,
      m.logTerm,
      m.commit,
      m.reject ? 1 : 0,
      m.hint,
      m.context,
      ents,
    ]
  }
  return packr.pack(out)
}

function unpack(frame: Uint8Array): unknown {
  try {
    return packr.unpack(frame)
  } catch (err) {
    throw new WireError('undecodable frame', { cause: err })
  }
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/** Decodes and validates a batch frame from `from` to `to`. `maxEntryBytes` bounds each entry's data. */
export function decodeBatch(frame: Uint8Array, from: string, to: string, maxEntryBytes: number): Message[] {
  const v = unpack(frame)
  if (!Array.isArray(v) || v[0] !== BATCH) throw new WireError('expected a batch frame')
  const out: Message[] = new Array(v.length - 1)
  for (let i = 1; i < v.length; i++) {
    const a = v[i]
    if (!Array.isArray(a) || a.length !== 9) throw new WireError('bad message')
    const [type, term, index, logTerm, commit, reject, hint, context, ents] = a
    if (typeof type !== 'number' || !Number.isInteger(type) || type < 1 || type > MAX_TYPE) {
      throw new WireError('bad message type')
    }
    if (!isCount(term) || !isCount(index) || !isCount(logTerm) || !isCount(commit) || !isCount(hint)) {
      throw new WireError('bad message field')
    }
    if (!isCount(context) || (reject !== 0 && reject !== 1)) throw new WireError('bad message field')
    let entries: readonly Entry[] = EMPTY
    if (ents !== 0) {
      if (!Array.isArray(ents) || ents.length % 4 !== 0) throw new WireError('bad entries')
      const list: Entry[] = new Array(ents.length / 4)
      for (let k = 0; k < list.length; k++) {
        const ei = ents[k * 4]
        const et = ents[k * 4 + 1]
        const ty = ents[k * 4 + 2]
        const data = ents[k * 4 + 3]
        if (!isCount(ei) || !isCount(et) || (ty !== 0 && ty !== 1) || !(data instanceof Uint8Array)) {
          throw new WireError('bad entry')
        }
        if (data.length > maxEntryBytes)
          throw new WireError(`entry of ${data.length} bytes is over the limit`)
        list[k] = { index: ei, term: et, type: ty, data }
      }
      entries = list
    }
    out[i - 1] = {
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
  return out
}
