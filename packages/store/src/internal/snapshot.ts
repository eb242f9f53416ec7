// The store's whole state as a raft snapshot: captured at once (the table's frozen objects, listed), encoded
// a step at a time; loaded back a step at a time with every object validated, and the events a restore owes
// the open watches (the differences between the state it replaces and the snapshot's). The steps are run at
// once or in time slices by internal/slices.ts.
import { StoreError } from '../errors.js'
import { TABLES, type Table } from '../types.js'
import type { StoreEvent } from '../watch.js'
import type { ProposerState } from './codec.js'
import { freezeDeep } from './data.js'
import { INDEXES, keptIndexes, TableState } from './indexes.js'
import type { Interner } from './intern.js'
import { encodeSnapshotSteps, readSnapshotSteps, type SnapshotState } from './snapshot-format.js'
import type { Tables } from './tx.js'
import { validateObject } from './validate.js'

/** Objects compared per step when a restore works out its events. */
const COMPARED_PER_STEP = 2048

/** Empty tables with their indexes. */
export function emptyTables(): Tables {
  return Object.fromEntries(
    TABLES.map((t) => [t, new TableState(INDEXES[t] as never, keptIndexes(t))]),
  ) as Tables
}

/**
 * The state as of now, for a snapshot encoded later: each table's objects listed (they are frozen, so the
 * list is all that needs copying) and the proposers' bookkeeping copied (apply changes it in place).
 */
export function captureState(
  tables: Tables,
  version: number,
  proposers: Map<string, ProposerState>,
): SnapshotState {
  const out = {} as Record<Table, Record<string, any>[]>
  for (const t of TABLES) out[t] = Array.from((tables[t] as TableState<any>).objects.values())
  const p: Record<string, ProposerState> = {}
  for (const [id, s] of proposers) p[id] = { ...s }
  return { version, tables: out, proposers: p }
}

/** Encodes a captured state, one step at a time. */
export function encodeStateSteps(s: SnapshotState): Generator<void, Uint8Array> {
  return encodeSnapshotSteps(s)
}

/** A decoded snapshot: its version, tables and proposers, and the events that take watches to it. */
export interface RestoredState {
  version: number
  tables: Tables
  proposers: Record<string, ProposerState>
  events: StoreEvent[]
}

/**
 * Decodes `data` into fresh tables (every object validated and frozen; `CORRUPT` if one is malformed) and
 * works out the events from `current` to them, one step at a time. `current` must not change until it ends.
 */
export function* restoreSteps(
  data: Uint8Array,
  current: Tables,
  interner?: Interner,
): Generator<void, RestoredState> {
  const fresh = emptyTables()
  const reader = readSnapshotSteps(data)
  let r = reader.next()
  while (!r.done) {
    const { table: t, objects } = r.value
    for (const raw of objects) {
      try {
        validateObject(t, raw as Record<string, any>)
      } catch (err) {
        throw new StoreError('CORRUPT', `malformed store snapshot: ${(err as Error).message}`, { cause: err })
      }
      const meta = (raw as { meta?: { version?: unknown } }).meta
      if (typeof meta !== 'object' || meta === null || !Number.isSafeInteger(meta.version)) {
        throw new StoreError('CORRUPT', `malformed store snapshot: ${t} object without meta.version`)
      }
      // Frozen; with an interner, sharing parts with the object it replaces and with its neighbours.
      const id = (raw as { id: string }).id
      if (interner) interner.object(t, raw as Record<string, any>, current[t].objects.get(id) as never)
      const o = (interner ? raw : freezeDeep(raw)) as { id: string }
      if (fresh[t].objects.has(o.id))
        throw new StoreError('CORRUPT', `malformed store snapshot: duplicate ${o.id}`)
      fresh[t].put(o.id, undefined, o as never)
    }
    yield
    r = reader.next()
  }
  const { version, proposers } = r.value
  const events: StoreEvent[] = []
  yield* restoreEventSteps(current, fresh, version, events)
  return { version, tables: fresh, proposers, events }
}

/** The create/update/delete events that take watchers from `current` to `fresh`, at `version`, into `out`. */
function* restoreEventSteps(
  current: Tables,
  fresh: Tables,
  version: number,
  out: StoreEvent[],
): Generator<void, void> {
  let n = 0
  for (const t of TABLES) {
    const before = current[t].objects
    const after = fresh[t].objects as Map<string, any>
    for (const [id, o] of after) {
      const old = before.get(id) as any
      if (!old) out.push({ action: 'create', table: t, version, object: o } as StoreEvent)
      else if (old.meta.version !== o.meta.version) {
        out.push({ action: 'update', table: t, version, object: o, oldObject: old } as StoreEvent)
      }
      if (++n % COMPARED_PER_STEP === 0) yield
    }
    for (const [id, old] of before) {
      if (!after.has(id)) out.push({ action: 'delete', table: t, version, object: old } as StoreEvent)
      if (++n % COMPARED_PER_STEP === 0) yield
    }
  }
}
