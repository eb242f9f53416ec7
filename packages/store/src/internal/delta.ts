/**
 * Updates sent as what changed. A task's status report rewrites one field of a task whose spec, annotations
 * and networks stay as they are, but a command carried the whole object: at 150,000 tasks, most of a raft log
 * (kept in memory between snapshots, written to disk, sent to every member) was copies of unchanged specs.
 *
 * An update names the version it replaces (`baseVersion`), and every member applies it only on exactly that
 * version of the object (anything else is refused as out of sequence), which is the same data on every
 * member. So the command carries the top-level fields that changed and a bit mask of the base object's
 * fields kept as they are; each member rebuilds the object from its own copy of the base before it validates
 * it. Key order is part of the data (JSON shows it): an update that reorders fields is sent whole.
 */

import { sameData } from './intern.js'

/** Most top-level fields a base may have for its update to be sent as a delta (bits of a small integer). */
export const MAX_DELTA_KEYS = 30

/** The keys of `next` in `delta` (reused; only the first ones, up to its count, are current). */
const nextKeys: string[] = []

/**
 * `next` as the fields that differ from `base` and a mask of base's fields (in its key order) kept as they
 * are; undefined when it must be sent whole (nothing kept, too many fields, or fields in another order). A
 * field named `setOnApply` that both have counts as kept whatever it holds: the applying store sets it (an
 * update's `meta`), so only its place in the key order matters, and that the base's copy keeps.
 */
export function delta(
  base: Record<string, unknown>,
  next: Record<string, unknown>,
  same: (a: unknown, b: unknown) => boolean = Object.is,
  setOnApply?: string,
): { changed: Record<string, unknown>; kept: number } | undefined {
  // Key lists without allocating: for-in lists own keys in Object.keys order (plain data inherits nothing
  // enumerable); next's go to a reused array (never shortened: V8 would free its store).
  let n = 0
  for (const k in next) {
    if (n === nextKeys.length) nextKeys.push(k)
    else nextKeys[n] = k
    n++
  }
  const changed: Record<string, unknown> = {}
  let kept = 0
  let i = 0
  let j = 0
  for (const k in base) {
    if (i === MAX_DELTA_KEYS) return undefined
    if (Object.hasOwn(next, k)) {
      // Base fields next keeps come first in next, in base's order; fields new to next follow.
      if (nextKeys[j] !== k) return undefined
      j++
      const v = next[k]
      if (k === setOnApply || same(v, base[k])) kept |= 1 << i
      else changed[k] = v
    }
    i++
  }
  for (; j < n; j++) {
    const k = nextKeys[j]!
    if (Object.hasOwn(base, k)) return undefined
    changed[k] = next[k]
  }
  return kept === 0 ? undefined : { changed, kept }
}

/**
 * Objects written together are alike: the tasks one pass of the orchestrator creates share their spec,
 * annotations, networks and status. In a command, an object sent whole may be sent as a delta of the object
 * sent whole before it in the same table (its sibling), with fields equal as data counted as kept; the
 * decoder rebuilds it from that sibling, so the two share those fields once decoded.
 */
export function siblingDelta(
  sibling: Record<string, unknown>,
  next: Record<string, unknown>,
): { changed: Record<string, unknown>; kept: number } | undefined {
  return delta(sibling, next, (a, b) => a === b || (typeof a === 'object' && sameData(a, b)))
}

/** The object a delta stands for: `base`'s kept fields and the changed ones, in the order `delta` read them. */
export function undelta(
  base: Record<string, unknown>,
  changed: Record<string, unknown>,
  kept: number,
): Record<string, unknown> {
  // Most deltas drop no field of the base (a status change): then a copy of the base (one step, in the base's
  // layout) with the changed fields set in place is the same object, built faster. Only when each field is
  // either kept or changed (kept wins below) and none is `__proto__` (which `out[k] =` would not set).
  let i = 0
  let whole = true
  for (const k in base) {
    const isKept = i < MAX_DELTA_KEYS && (kept & (1 << i)) !== 0
    if (isKept === Object.hasOwn(changed, k) || k === '__proto__') {
      whole = false
      break
    }
    i++
  }
  if (whole) {
    const out: Record<string, unknown> = { ...base }
    for (const k in changed) out[k] = changed[k]
    return out
  }
  const out: Record<string, unknown> = {}
  // for-in lists own keys in Object.keys order (plain data inherits nothing enumerable), without a key array.
  i = 0
  for (const k in base) {
    if (i < MAX_DELTA_KEYS && kept & (1 << i)) out[k] = base[k]
    else if (Object.hasOwn(changed, k)) out[k] = changed[k]
    i++
  }
  for (const k in changed) if (!Object.hasOwn(base, k)) out[k] = changed[k]
  return out
}
