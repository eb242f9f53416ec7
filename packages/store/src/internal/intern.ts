/**
 * Decoded objects made small. Every object a replicated store keeps comes out of a raft command's decoder,
 * fresh: 150,000 tasks of one service would hold 150,000 equal copies of its task spec, and every string in
 * them is a slice of a string the decoder made for a whole run of the command's strings (msgpackr's native
 * string extraction), which keeps the whole run alive. So, as an object is frozen:
 *
 * - a top-level part equal to the same part of the object it replaces, or of one of the last few objects of
 *   its table, is replaced by that one (already frozen): the tasks of one service version share one spec,
 *   annotations and endpoint, and an update shares what it did not change with the version before;
 * - strings are copied out of the decoder's runs, and equal ones shared.
 *
 * Equal means the same data with the same keys in the same order (what JSON shows), so nothing anyone can
 * read changes; shared parts are frozen like everything else the store hands out.
 */

import { equalPlain } from './data.js'

/** Distinct values remembered per table and top-level key (a few services written at once). */
const RECENT = 4
/** Strings remembered for sharing; past this the memory starts afresh (sharing is only a saving). */
const MAX_STRINGS = 1 << 16
/** V8 copies shorter substrings instead of slicing them: those hold no decoder run. */
const MIN_SLICED = 13

interface Recent {
  values: unknown[]
  /** A decoded part found equal to `to`, one of `values`, and replaced by it. */
  from: unknown
  to: unknown
}

export class Interner {
  readonly #strings = new Map<string, string>()
  /** Per table and top-level key, the last few distinct values stored, and the last part replaced by one. */
  readonly #recent = new Map<string, Map<string, Recent>>()

  /**
   * Freezes `o`, a decoded object of `table` (what `freezeDeep` does), sharing its top-level parts with
   * `prev` (the stored version it replaces) or recent objects of the table where they are equal. `changed`:
   * `o` was rebuilt from `prev` and these fields (a delta); every other field of `o` is `prev`'s own.
   */
  object(
    table: string,
    o: Record<string, any>,
    prev: Record<string, any> | undefined,
    changed?: Record<string, unknown>,
  ): void {
    let recentByKey = this.#recent.get(table)
    // An update rebuilt from `prev` and a delta: only the delta's fields can hold anything new.
    for (const key in changed ?? o) {
      const v = o[key]
      // The same value as the stored version (a field an update kept, rebuilt from its base): already
      // frozen and interned there. A string equal to it takes the stored one.
      const before = prev?.[key]
      if (v === before) {
        if (typeof v === 'string') o[key] = before
        continue
      }
      if (typeof v === 'string') {
        o[key] = this.string(v)
        continue
      }
      if (v === null || typeof v !== 'object') continue
      if (key === 'meta') {
        // Set and frozen by the store on apply; a snapshot's is decoded with the object.
        this.#freeze(v)
        continue
      }
      if (v instanceof Uint8Array) {
        if (v.constructor !== Uint8Array) o[key] = new Uint8Array(v)
        continue
      }
      if (before !== undefined && sameData(v, before)) {
        o[key] = before
        continue
      }
      if (!recentByKey) this.#recent.set(table, (recentByKey = new Map()))
      let recent = recentByKey.get(key)
      if (recent === undefined)
        recentByKey.set(key, (recent = { values: [], from: undefined, to: undefined }))
      // Objects of one command share decoded parts (sibling deltas, delta.ts): the part replaced last time
      // is replaced by the same again, without comparing it.
      if (v === recent.from) {
        o[key] = recent.to
        continue
      }
      const same = findSame(recent.values, v)
      if (same !== undefined) {
        o[key] = same
        if (same !== v) {
          recent.from = v
          recent.to = same
        }
        continue
      }
      this.#freeze(v)
      if (recent.values.length >= RECENT) recent.values.pop()
      recent.values.unshift(v)
    }
    Object.freeze(o)
  }

  /** `s` as a string of its own (not a slice of a decoder's run), shared with equal ones seen lately. */
  string(s: string): string {
    const known = this.#strings.get(s)
    if (known !== undefined) return known
    const own = s.length < MIN_SLICED ? s : ownString(s)
    if (this.#strings.size >= MAX_STRINGS) this.#strings.clear()
    this.#strings.set(own, own)
    return own
  }

  /** Freezes nested data in place: strings made its own, Node Buffers replaced by plain Uint8Array copies. */
  #freeze(value: object): void {
    if (Object.isFrozen(value)) return
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.#part(value[i])
    } else {
      const obj = value as Record<string, unknown>
      for (const key in obj) obj[key] = this.#part(obj[key])
    }
    Object.freeze(value)
  }

  #part(v: unknown): unknown {
    if (typeof v === 'string') return this.string(v)
    if (v === null || typeof v !== 'object') return v
    if (v instanceof Uint8Array) return v.constructor !== Uint8Array ? new Uint8Array(v) : v
    this.#freeze(v)
    return v
  }
}

/** A flat copy of `s`: JSON's round trip is exact for every string, and the quickest copy measured. */
function ownString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string
}

function findSame(recent: readonly unknown[], v: unknown): unknown {
  for (let i = 0; i < recent.length; i++) if (sameData(v, recent[i])) return recent[i]
  return undefined
}

/**
 * Keys of the objects being compared, outer levels first, up to `top` (reused, never shortened: V8 frees an
 * array's store when its length drops, and this runs on every object a replicated store applies).
 */
const scratch: string[] = new Array<string>(64).fill('')
let top = 0

/**
 * The same plain data: same keys in the same order, equal values (Uint8Array by content), an undefined field
 * counting as a key. What `equalPlain(a, b, true)` says, without allocating: this runs on every object a
 * replicated store applies.
 */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (a instanceof Uint8Array || b instanceof Uint8Array) return equalPlain(a, b, true)
  const isArray = Array.isArray(a)
  if (isArray !== Array.isArray(b)) return false
  if (isArray) {
    const aa = a as unknown[]
    const bb = b as unknown[]
    if (aa.length !== bb.length) return false
    for (let i = 0; i < aa.length; i++) if (!sameData(aa[i], bb[i])) return false
    return true
  }
  const ao = a as Record<string, unknown>
  const bo = b as Record<string, unknown>
  const start = top
  // for-in lists an object's own keys in Object.keys order (plain data has nothing enumerable inherited).
  for (const k in ao) {
    if (top === scratch.length) scratch.push(k)
    else scratch[top] = k
    top++
  }
  const n = top - start
  let same = true
  let i = 0
  for (const k in bo) {
    if (i === n || scratch[start + i] !== k) {
      same = false
      break
    }
    i++
  }
  if (i !== n) same = false
  for (let j = 0; same && j < n; j++) {
    const k = scratch[start + j]!
    if (!sameData(ao[k], bo[k])) same = false
  }
  top = start
  return same
}
