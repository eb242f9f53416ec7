/**
 * Plain-data helpers. Stored objects are plain JSON-like data plus Uint8Array (what the raft command codec
 * carries unchanged), deep-frozen once stored so that reads can hand them out without copying.
 */

const MAX_DEPTH = 64

/** Empty arrays are common in stored objects (a task's networks, a spec's mounts): all share this one. */
const EMPTY_ARRAY: readonly unknown[] = Object.freeze([])

/**
 * Copies plain data for the store and freezes the copy in the same pass; throws TypeError (naming `what`) on
 * anything else (functions, Maps, Dates, cycles). Frozen objects and arrays are shared, not copied: every
 * object the store hands out is deep-frozen, so an update built as `{ ...task, status: { ...task.status,
 * state } }` copies only the two new levels. The top level is a fresh object left open, so the store can set
 * `meta` before it freezes it; nothing else holds it yet.
 */
export function cloneForStore(value: Record<string, any>, what: string): Record<string, any> {
  return cloneFrozen(value, what, 0, false) as Record<string, any>
}

function cloneFrozen(value: unknown, path: string, depth: number, freeze: boolean): unknown {
  if (value === null || typeof value !== 'object') {
    const t = typeof value
    if (t === 'function' || t === 'symbol' || t === 'bigint') {
      throw new TypeError(`${path}: ${t} values cannot be stored`)
    }
    return value
  }
  if (depth > MAX_DEPTH) throw new TypeError(`${path}: nested too deeply (or cyclic)`)
  if (freeze && Object.isFrozen(value)) return value
  if (Array.isArray(value)) {
    if (value.length === 0 && freeze) return EMPTY_ARRAY
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = cloneFrozen(value[i], path, depth + 1, true)
    return freeze ? Object.freeze(out) : out
  }
  if (value instanceof Uint8Array) return new Uint8Array(value)
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`${path}: only plain objects, arrays and Uint8Array can be stored`)
  }
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  for (const key in out) {
    // The top level's meta is the store's to set: the caller's is not copied.
    if (depth === 0 && key === 'meta') continue
    const v = out[key]
    // A frozen part is shared as it is (no call, no store back into the copy).
    if (v !== null && typeof v === 'object') {
      if (!Object.isFrozen(v)) out[key] = cloneFrozen(v, path, depth + 1, true)
    } else if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
      throw new TypeError(`${path}: ${typeof v} values cannot be stored`)
    }
  }
  return freeze ? Object.freeze(out) : out
}

/**
 * Freezes decoded or cloned data in place, replacing Node Buffers (what msgpackr decodes binary to, views
 * into the decoded frame) with standalone Uint8Array copies first. Typed arrays themselves cannot be frozen.
 */
export function freezeDeep<T>(value: T): T {
  freezeValue(value)
  return value
}

function freezeValue(value: unknown): void {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return
  if (Object.isFrozen(value)) return
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i]
      if (v instanceof Uint8Array && v.constructor !== Uint8Array) value[i] = new Uint8Array(v)
      else freezeValue(v)
    }
  } else {
    const obj = value as Record<string, unknown>
    for (const key in obj) {
      const v = obj[key]
      if (v instanceof Uint8Array && v.constructor !== Uint8Array) obj[key] = new Uint8Array(v)
      else freezeValue(v)
    }
  }
  Object.freeze(value)
}

/**
 * Structural equality of plain data (Uint8Array by content), undefined fields ignored. `ordered`: the same keys
 * in the same order too, an undefined field counting as a key (what JSON and the command encoding show).
 */
export function equalPlain(a: unknown, b: unknown, ordered = false): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    if (a.length !== bb.length) return false
    for (let i = 0; i < a.length; i++) if (!equalPlain(a[i], bb[i], ordered)) return false
    return true
  }
  const ao = a as Record<string, unknown>
  const bo = b as Record<string, unknown>
  if (ordered) {
    const ka = Object.keys(ao)
    const kb = Object.keys(bo)
    if (ka.length !== kb.length) return false
    for (let i = 0; i < ka.length; i++) {
      const k = ka[i]!
      if (k !== kb[i] || !equalPlain(ao[k], bo[k], true)) return false
    }
    return true
  }
  let n = 0
  for (const key in ao) {
    if (ao[key] === undefined) continue
    n++
    if (!equalPlain(ao[key], bo[key])) return false
  }
  for (const key in bo) if (bo[key] !== undefined) n--
  return n === 0
}
