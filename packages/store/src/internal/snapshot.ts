// The store's whole state as a raft snapshot: the tables encoded with the version and the proposers'
// bookkeeping, loaded back with every object validated, and the events a restore owes the open watches
// (the differences between the state it replaces and the snapshot's).
import { StoreError } from '../errors.js'
import { TABLES, type Table } from '../types.js'
import type { StoreEvent } from '../watch.js'
import { encodeSnapshot, type ProposerState, type SnapshotData } from './codec.js'
import { freezeDeep } from './data.js'
import { INDEXES, TableState } from './indexes.js'
import type { Tables } from './tx.js'
import { validateObject } from './validate.js'

/** Empty tables with their indexes. */
export function emptyTables(): Tables {
  return Object.fromEntries(TABLES.map((t) => [t, new TableState(INDEXES[t] as never)])) as Tables
}

/** Encodes the tables at `version` with the proposers' state. */
export function encodeTables(
  tables: Tables,
  version: number,
  proposers: Map<string, ProposerState>,
): Uint8Array {
  const out = {} as Record<Table, Record<string, any>[]>
  for (const t of TABLES) out[t] = [...tables[t].objects.values()]
  return encodeSnapshot({ version, tables: out, proposers: Object.fromEntries(proposers) })
}

/** Tables holding a decoded snapshot's objects, each validated and frozen; `CORRUPT` if one is malformed. */
export function tablesFromSnapshot(s: SnapshotData): Tables {
  const fresh = emptyTables()
  for (const t of TABLES) {
    for (const raw of s.tables[t]) {
      validateObject(t, raw)
      const meta = raw.meta
      if (typeof meta !== 'object' || meta === null || !Number.isSafeInteger(meta.version)) {
        throw new StoreError('CORRUPT', `malformed store snapshot: ${t} object without meta.version`)
      }
      const o = freezeDeep(raw) as { id: string }
      if (fresh[t].objects.has(o.id))
        throw new StoreError('CORRUPT', `malformed store snapshot: duplicate ${o.id}`)
      fresh[t].put(o.id, undefined, o as never)
    }
  }
  return fresh
}

/** The create/update/delete events that take watchers from `current` to `fresh`, at `version`. */
export function restoreEvents(current: Tables, fresh: Tables, version: number): StoreEvent[] {
  const events: StoreEvent[] = []
  for (const t of TABLES) {
    const before = current[t].objects
    const after = fresh[t].objects as Map<string, any>
    for (const [id, o] of after) {
      const old = before.get(id) as any
      if (!old) events.push({ action: 'create', table: t, version, object: o } as StoreEvent)
      else if (old.meta.version !== o.meta.version) {
        events.push({
          action: 'update',
          table: t,
          version,
          object: o,
          oldObject: old,
        } as StoreEvent)
      }
    }
    for (const [id, old] of before) {
      if (!after.has(id)) events.push({ action: 'delete', table: t, version, object: old } as StoreEvent)
    }
  }
  return events
}
