// The replicated state: a map from string keys to byte values, as a raft state machine.
//
// Commands (what is proposed and logged), little-endian:
//   PUT 1 | keyLength u16 | key (utf-8) | value
// Snapshots: count u32, then per key: keyLength u16 | key | valueLength u32 | value.
import { Buffer, isUtf8 } from 'node:buffer'

const PUT = 1
const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

/** Longest key accepted, in utf-8 bytes. */
export const MAX_KEY_BYTES = 4096

export function encodePut(key: string, value: Uint8Array): Uint8Array {
  const k = enc.encode(key)
  if (k.length === 0 || k.length > MAX_KEY_BYTES) throw new RangeError(`key must be 1-${MAX_KEY_BYTES} bytes`)
  const out = new Uint8Array(3 + k.length + value.length)
  out[0] = PUT
  out[1] = k.length & 0xff
  out[2] = k.length >>> 8
  out.set(k, 3)
  out.set(value, 3 + k.length)
  return out
}

/**
 * `bytes` as a put command, checked as `encodePut` checks its arguments (a key of 1-`MAX_KEY_BYTES` bytes of
 * valid utf-8), without a copy: for a command that arrived already encoded (the client protocol's put request
 * carries one). Throws a RangeError for anything else.
 */
export function checkPut(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 3 || bytes[0] !== PUT) throw new RangeError('not a put command')
  const k = bytes[1]! | (bytes[2]! << 8)
  if (k === 0 || k > MAX_KEY_BYTES || 3 + k > bytes.length)
    throw new RangeError(`key must be 1-${MAX_KEY_BYTES} bytes`)
  if (!isUtf8(bytes.subarray(3, 3 + k))) throw new RangeError('key must be utf-8')
  return bytes
}

/** Keys serialized between two yields to the event loop while a snapshot is taken in the background. */
const SNAPSHOT_SLICE = 2048

/** The key-value map that `apply` mutates, in log order, on every member. */
export class KvStateMachine {
  #map = new Map<string, Uint8Array>()
  /**
   * While `snapshotAsync` runs: the value each key had when it was called, recorded by `apply` the first time
   * it overwrites the key. Keys are never deleted, so the snapshot's keys are the first `size` keys of the map
   * in insertion order, and their values are these or, when not overwritten, the live ones.
   */
  #before: Map<string, Uint8Array> | null = null

  get size(): number {
    return this.#map.size
  }

  /** The value stored under `key` as of the last applied entry. */
  get(key: string): Uint8Array | undefined {
    return this.#map.get(key)
  }

  /** Applies one committed command; returns the log index it was applied at. */
  apply(command: Uint8Array, index: number): number {
    if (command.length === 0) return index
    if (command[0] !== PUT || command.length < 3) throw new Error(`entry ${index}: unknown kv command`)
    const keyLength = command[1]! | (command[2]! << 8)
    if (3 + keyLength > command.length) throw new Error(`entry ${index}: truncated kv command`)
    // Buffer's utf-8 decoding and its pooled allocation, not TextDecoder and `slice`: a value of a few hundred
    // bytes copied with `slice` gets an ArrayBuffer of its own (a malloc and a GC-tracked backing store each),
    // 2-3 µs of every member's CPU per put, against 1 µs for both changes here. Pooled values share Node's 8 KiB
    // slabs, as Buffers do. Commands are utf-8 checked where they are made (`encodePut`, `checkPut`); a key
    // decodes to the same string on every member in any case.
    const key = Buffer.from(command.buffer, command.byteOffset + 3, keyLength).toString('utf8')
    const before = this.#before
    if (before !== null && !before.has(key)) {
      const old = this.#map.get(key)
      if (old !== undefined) before.set(key, old)
    }
    const value = Buffer.allocUnsafe(command.length - 3 - keyLength)
    value.set(command.subarray(3 + keyLength))
    this.#map.set(key, value)
    return index
  }

  /** The whole map, serialized at once. */
  snapshot(): Uint8Array {
    let size = 4
    const keys: Uint8Array[] = []
    for (const [k, v] of this.#map) {
      const kb = enc.encode(k)
      keys.push(kb)
      size += 2 + kb.length + 4 + v.length
    }
    const out = new Uint8Array(size)
    const view = new DataView(out.buffer)
    view.setUint32(0, this.#map.size, true)
    let off = 4
    let i = 0
    for (const v of this.#map.values()) {
      const kb = keys[i++]!
      view.setUint16(off, kb.length, true)
      out.set(kb, off + 2)
      off += 2 + kb.length
      view.setUint32(off, v.length, true)
      out.set(v, off + 4)
      off += 4 + v.length
    }
    return out
  }

  /**
   * The map as of this call, serialized in slices between which the event loop runs (and `apply` goes on):
   * a large map is snapshotted without stalling the member. Same format as `snapshot()`. One at a time; a call
   * while one runs serializes at once.
   */
  async snapshotAsync(): Promise<Uint8Array> {
    if (this.#before !== null) return this.snapshot()
    const map = this.#map
    const before = new Map<string, Uint8Array>()
    this.#before = before
    const count = map.size
    const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve))
    try {
      // Two passes over the first `count` keys: their sizes, then their bytes. A key's value as of the call
      // is the one `apply` saved in `before`, or the live one if it was not overwritten since.
      let size = 4
      let n = 0
      for (const [k, v] of map) {
        if (n === count) break
        size += 6 + Buffer.byteLength(k) + (before.get(k) ?? v).length
        if (++n % SNAPSHOT_SLICE === 0) await yieldNow()
      }
      const out = Buffer.allocUnsafe(size)
      out.writeUInt32LE(count, 0)
      let off = 4
      n = 0
      for (const [k, live] of map) {
        if (n === count) break
        const v = before.get(k) ?? live
        const kl = out.write(k, off + 2, 'utf8')
        out.writeUInt16LE(kl, off)
        off += 2 + kl
        out.writeUInt32LE(v.length, off)
        out.set(v, off + 4)
        off += 4 + v.length
        if (++n % SNAPSHOT_SLICE === 0) await yieldNow()
      }
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    } finally {
      if (this.#before === before) this.#before = null
    }
  }

  restore(snapshot: Uint8Array): void {
    const view = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength)
    const fail = () => new Error('malformed kv snapshot')
    if (snapshot.length < 4) throw fail()
    const count = view.getUint32(0, true)
    const next = new Map<string, Uint8Array>()
    let off = 4
    for (let n = 0; n < count; n++) {
      if (off + 2 > snapshot.length) throw fail()
      const kl = view.getUint16(off, true)
      if (off + 2 + kl + 4 > snapshot.length) throw fail()
      const key = dec.decode(snapshot.subarray(off + 2, off + 2 + kl))
      off += 2 + kl
      const vl = view.getUint32(off, true)
      if (off + 4 + vl > snapshot.length) throw fail()
      next.set(key, snapshot.slice(off + 4, off + 4 + vl))
      off += 4 + vl
    }
    if (off !== snapshot.length) throw fail()
    // A new map rather than the old one cleared: a snapshot being serialized from the old one stays intact.
    this.#map = next
    this.#before = null
  }
}
