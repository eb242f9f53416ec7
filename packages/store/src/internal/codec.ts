import { Packr } from 'msgpackr'
import { StoreError } from '../errors.js'
import { TABLES, type Table } from '../types.js'

/** What a transaction does to one object. */
export const Op = { Create: 0, Update: 1, Delete: 2 } as const
export type Op = (typeof Op)[keyof typeof Op]

export interface Action {
  op: Op
  table: Table
  id: string
  /** The version the transaction saw (0 for creates); apply fails with SEQUENCE if the stored one differs. */
  baseVersion: number
  /** The new object for creates and updates; null for deletes. */
  object: Record<string, any> | null
}

/** One transaction as it travels through raft: an id to match it on apply, the proposer's clock, actions. */
export interface Command {
  id: string
  time: number
  actions: Action[]
}

const COMMAND_VERSION = 1
const SNAPSHOT_VERSION = 1
const SNAPSHOT_KIND = 'swarmkit-store'

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' })

export function encodeCommand(cmd: Command): Uint8Array {
  const a = cmd.actions.map((x) => [x.op, TABLES.indexOf(x.table), x.id, x.baseVersion, x.object])
  return packr.pack([COMMAND_VERSION, cmd.id, cmd.time, a])
}

const corrupt = (what: string, cause?: unknown): StoreError =>
  new StoreError('CORRUPT', `malformed store command: ${what}`, cause === undefined ? undefined : { cause })

export function decodeCommand(data: Uint8Array, maxBytes: number): Command {
  if (!(data instanceof Uint8Array)) throw corrupt('not bytes')
  if (data.length > maxBytes) throw corrupt(`${data.length} bytes exceeds the limit of ${maxBytes}`)
  let raw: unknown
  try {
    raw = packr.unpack(data)
  } catch (err) {
    throw corrupt('undecodable', err)
  }
  if (!Array.isArray(raw) || raw.length !== 4 || raw[0] !== COMMAND_VERSION) throw corrupt('unknown format')
  const [, id, time, list] = raw
  if (typeof id !== 'string' || typeof time !== 'number' || !Array.isArray(list)) throw corrupt('bad header')
  const actions: Action[] = []
  for (const item of list) {
    if (!Array.isArray(item) || item.length !== 5) throw corrupt('bad action')
    const [op, t, oid, baseVersion, object] = item
    const table = TABLES[t as number]
    if (op !== Op.Create && op !== Op.Update && op !== Op.Delete) throw corrupt('bad op')
    if (table === undefined || typeof oid !== 'string' || !Number.isSafeInteger(baseVersion)) {
      throw corrupt('bad action fields')
    }
    if (op === Op.Delete ? object !== null : typeof object !== 'object' || object === null) {
      throw corrupt('bad action object')
    }
    actions.push({ op, table, id: oid, baseVersion, object })
  }
  return { id, time, actions }
}

export interface SnapshotData {
  version: number
  tables: Record<Table, Record<string, any>[]>
}

export function encodeSnapshot(s: SnapshotData): Uint8Array {
  return packr.pack([SNAPSHOT_KIND, SNAPSHOT_VERSION, s.version, TABLES.map((t) => s.tables[t])])
}

export function decodeSnapshot(data: Uint8Array): SnapshotData {
  if (!(data instanceof Uint8Array)) throw new TypeError('snapshot: expected a Uint8Array')
  let raw: unknown
  try {
    raw = packr.unpack(data)
  } catch (err) {
    throw new StoreError('CORRUPT', 'malformed store snapshot: undecodable', { cause: err })
  }
  if (!Array.isArray(raw) || raw[0] !== SNAPSHOT_KIND || raw[1] !== SNAPSHOT_VERSION || raw.length !== 4) {
    throw new StoreError('CORRUPT', 'malformed store snapshot: unknown format')
  }
  const version = raw[2]
  const lists = raw[3]
  if (
    !Number.isSafeInteger(version) ||
    version < 0 ||
    !Array.isArray(lists) ||
    lists.length !== TABLES.length
  ) {
    throw new StoreError('CORRUPT', 'malformed store snapshot: bad header')
  }
  const tables = {} as Record<Table, Record<string, any>[]>
  TABLES.forEach((t, i) => {
    const list = lists[i]
    if (!Array.isArray(list)) throw new StoreError('CORRUPT', `malformed store snapshot: table ${t}`)
    tables[t] = list
  })
  return { version, tables }
}
