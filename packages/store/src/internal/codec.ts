import { Packr } from 'msgpackr'
import { StoreError } from '../errors.js'
import { TABLES, type Table } from '../types.js'
import { delta, MAX_DELTA_KEYS, siblingDelta, undelta } from './delta.js'

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
  /**
   * Decoded update sent as a delta (internal/delta.ts): `object` holds only the changed fields, and these
   * bits name the base's fields kept; the store rebuilds the object from its base before applying it.
   */
  kept?: number
  /** Proposing side: the stored object the update read (the delta's base), when known. */
  base?: Record<string, any> | null
}

/**
 * One transaction as it travels through raft. `proposer` (random per store instance) and `seq` (1, 2, 3, … per
 * proposer, one in flight at a time) identify it; `time` is the proposer's clock for the objects' meta.
 */
export interface Command {
  kind: 'tx'
  proposer: string
  seq: number
  time: number
  actions: Action[]
}

/**
 * Settles an ambiguous proposal: once applied, command `seq` of `proposer` (and any earlier one) can no
 * longer apply anywhere. Applied after the command, it changes nothing.
 */
export interface Fence {
  kind: 'fence'
  proposer: string
  seq: number
}

const COMMAND_TX = 1
const COMMAND_FENCE = 2

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' })

export function encodeCommand(cmd: Command | Fence): Uint8Array {
  if (cmd.kind === 'fence') return packr.pack([COMMAND_FENCE, cmd.proposer, cmd.seq])
  // Per table, the last object this command carries whole (or rebuilt whole from its sibling): the next
  // one's sibling. The decoder follows the same rule.
  const whole: (Record<string, any> | undefined)[] = []
  const a = cmd.actions.map((x) => {
    const t = TABLES.indexOf(x.table)
    if (x.object === null) return [x.op, t, x.id, x.baseVersion, x.object]
    // An update of a known base at its version carries only what changed (see delta.ts). Not its meta:
    // every member sets that as it applies (the base's stands in, in its place in the key order).
    const d =
      x.op === Op.Update && x.base && x.base.meta?.version === x.baseVersion
        ? delta(x.base, x.object, Object.is, 'meta')
        : undefined
    if (d) return [x.op, t, x.id, x.baseVersion, d.changed, d.kept]
    const sibling = whole[t]
    whole[t] = x.object
    const s = sibling ? siblingDelta(sibling, x.object) : undefined
    return s ? [x.op, t, x.id, x.baseVersion, s.changed, 0, s.kept] : [x.op, t, x.id, x.baseVersion, x.object]
  })
  // A copy of its own: what pack returns is a view into the packer's shared buffer, which raft's log would
  // keep whole (with every other command packed into it) for as long as it keeps this entry.
  return new Uint8Array(packr.pack([COMMAND_TX, cmd.proposer, cmd.seq, cmd.time, a]))
}

/** A delta's mask of kept fields: an integer with some bit set, none past the most fields a base may have. */
const MASK_LIMIT = 2 ** MAX_DELTA_KEYS
const mask = (m: unknown): boolean => typeof m === 'number' && (m | 0) === m && m > 0 && m < MASK_LIMIT

const corrupt = (what: string, cause?: unknown): StoreError =>
  new StoreError('CORRUPT', `malformed store command: ${what}`, cause === undefined ? undefined : { cause })

export function decodeCommand(data: Uint8Array, maxBytes: number): Command | Fence {
  if (!(data instanceof Uint8Array)) throw corrupt('not bytes')
  if (data.length > maxBytes) throw corrupt(`${data.length} bytes exceeds the limit of ${maxBytes}`)
  let raw: unknown
  try {
    raw = packr.unpack(data)
  } catch (err) {
    throw corrupt('undecodable', err)
  }
  if (!Array.isArray(raw)) throw corrupt('unknown format')
  const [kind, proposer, seq] = raw
  if (typeof proposer !== 'string' || proposer.length > 64 || !Number.isSafeInteger(seq) || seq < 1) {
    throw corrupt('bad header')
  }
  if (kind === COMMAND_FENCE && raw.length === 3) return { kind: 'fence', proposer, seq }
  if (kind !== COMMAND_TX || raw.length !== 5) throw corrupt('unknown format')
  const time = raw[3]
  const list = raw[4]
  if (typeof time !== 'number' || !Array.isArray(list)) throw corrupt('bad header')
  const actions: Action[] = []
  const whole: (Record<string, any> | undefined)[] = []
  for (const item of list) {
    if (!Array.isArray(item) || item.length < 5 || item.length > 7) throw corrupt('bad action')
    const [op, t, oid, baseVersion, object, kept, siblingKept] = item
    const table = TABLES[t as number]
    if (op !== Op.Create && op !== Op.Update && op !== Op.Delete) throw corrupt('bad op')
    if (table === undefined || typeof oid !== 'string' || !Number.isSafeInteger(baseVersion)) {
      throw corrupt('bad action fields')
    }
    if (op === Op.Delete ? object !== null : typeof object !== 'object' || object === null) {
      throw corrupt('bad action object')
    }
    if (item.length === 6) {
      // Only what changed from the stored base: the store rebuilds it (see delta.ts).
      if (op !== Op.Update || !mask(kept)) throw corrupt('bad delta')
      actions.push({ op, table, id: oid, baseVersion, object, kept })
      continue
    }
    let o = object
    if (item.length === 7) {
      const sibling = whole[t as number]
      if (op === Op.Delete || kept !== 0 || !mask(siblingKept) || !sibling) throw corrupt('bad sibling delta')
      o = undelta(sibling, object, siblingKept)
    }
    if (o !== null) whole[t as number] = o
    actions.push({ op, table, id: oid, baseVersion, object: o })
  }
  return { kind: 'tx', proposer, seq, time, actions }
}

/** Replicated bookkeeping per proposer: the last command applied and its outcome, and the fence. */
export interface ProposerState {
  applied: number
  floor: number
  code: string | null
  message: string
}
