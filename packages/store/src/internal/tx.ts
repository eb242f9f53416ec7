import { SEQUENCE_MESSAGE, StoreError } from '../errors.js'
import { checkServiceSpec, DEFAULT_SPEC_LIMITS, type SpecLimits } from '../service-spec.js'
import type { By, NewObject, Tx } from '../store-types.js'
import { type Meta, type Table, type TableObjects, type Task, taskStateRank } from '../types.js'
import { typeError } from './check.js'
import { addressClaim, checkClaims } from './claims.js'
import { type Action, Op } from './codec.js'
import { cloneForStore } from './data.js'
import { undelta } from './delta.js'
import {
  hasKey,
  type IndexKeys,
  type IndexName,
  idsOf,
  slotKey,
  type TableState,
  taskHoldsReferences,
  UNIQUE_NAMES,
} from './indexes.js'
import { validateObject } from './validate.js'

/** A pending change to one object, squashed: the first touch decides the op, the last write the object. */
export interface Entry {
  op: Op
  table: Table
  id: string
  baseVersion: number
  object: Record<string, any> | null
  /** In the overlay (false once a create was undone by a delete, or rolled back). */
  live: boolean
  /**
   * The stored object the transaction started from (null: none, for a create); undefined when not known (a
   * decoded command). It saves the commit a lookup when nothing committed since the transaction opened.
   */
  base?: Record<string, any> | null
  /** Decoded update rebuilt from `base` and these fields (a delta): the only ones that can hold anything new. */
  changed?: Record<string, any>
}

/** One undo record: the entry, and its op and object before the write (`live` false: it did not exist). */
type Undo = [entry: Entry, op: Op, object: Record<string, any> | null, live: boolean]

export type Tables = { [T in Table]: TableState<TableObjects[T]> }

const SINGULAR: Record<Table, string> = {
  nodes: 'node',
  services: 'service',
  tasks: 'task',
  networks: 'network',
  clusters: 'cluster',
  secrets: 'secret',
  configs: 'config',
}

const REF_INDEX: Partial<Record<Table, IndexName>> = {
  networks: 'network',
  secrets: 'secret',
  configs: 'config',
}

const SPEC_VERSION_ZERO = Object.freeze({ index: 0 })

/** Resolves a `By` to an index and key (or a scan kind) for a table, or throws TypeError. */
function plan(
  table: Table,
  state: TableState<any>,
  by: By | undefined,
):
  | { kind: 'all' }
  | { kind: 'id'; id: string }
  | { kind: 'prefix'; prefix: string }
  | { kind: 'index'; index: IndexName; key: string }
  | { kind: 'namePrefix'; prefix: string } {
  if (by === undefined) return { kind: 'all' }
  if (typeof by !== 'object' || by === null) throw typeError('by', 'be an object')
  const need = (index: IndexName, k: string) => {
    if (!state.hasIndex(index)) throw new TypeError(`by: ${table} have no ${index} index`)
    return { kind: 'index' as const, index, key: k }
  }
  const str = (v: unknown, what: string): string => {
    if (typeof v !== 'string') throw typeError(`by.${what}`, 'be a string')
    return v
  }
  if ('all' in by) return { kind: 'all' }
  if ('id' in by) return { kind: 'id', id: str(by.id, 'id') }
  if ('idPrefix' in by) return { kind: 'prefix', prefix: str(by.idPrefix, 'idPrefix') }
  if ('name' in by) {
    need('name', '')
    return { kind: 'index', index: 'name', key: str(by.name, 'name').toLowerCase() }
  }
  if ('namePrefix' in by) {
    need('name', '')
    return { kind: 'namePrefix', prefix: str(by.namePrefix, 'namePrefix').toLowerCase() }
  }
  if ('serviceId' in by) return need('serviceId', str(by.serviceId, 'serviceId'))
  if ('nodeId' in by) return need('nodeId', str(by.nodeId, 'nodeId'))
  if ('slot' in by) {
    const s = by.slot
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.serviceId !== 'string' ||
      !Number.isSafeInteger(s.slot)
    ) {
      throw typeError('by.slot', 'be { serviceId, slot, nodeId? }')
    }
    return need('slot', slotKey(s.serviceId, s.slot, s.nodeId))
  }
  if ('desiredState' in by) return need('desiredState', str(by.desiredState, 'desiredState'))
  if ('taskState' in by) return need('taskState', str(by.taskState, 'taskState'))
  if ('role' in by) return need('role', str(by.role, 'role'))
  if ('availability' in by) return need('availability', str(by.availability, 'availability'))
  if ('referencedNetworkId' in by) return need('network', str(by.referencedNetworkId, 'referencedNetworkId'))
  if ('referencedSecretId' in by) return need('secret', str(by.referencedSecretId, 'referencedSecretId'))
  if ('referencedConfigId' in by) return need('config', str(by.referencedConfigId, 'referencedConfigId'))
  if ('heldAddress' in by) {
    const a = by.heldAddress as { networkId?: unknown; address?: unknown } | null
    if (typeof a !== 'object' || a === null) throw typeError('by.heldAddress', 'be { networkId, address }')
    if (table !== 'services' && table !== 'tasks' && table !== 'nodes')
      throw new TypeError(`by: ${table} hold no addresses`)
    return need(
      'claim',
      addressClaim(str(a.networkId, 'heldAddress.networkId'), str(a.address, 'heldAddress.address')),
    )
  }
  throw typeError('by', `use a known selector (not ${Object.keys(by).join(', ')})`)
}

function checkTable(table: unknown, tables: Tables): asserts table is Table {
  if (typeof table !== 'string' || !Object.hasOwn(tables, table)) {
    throw typeError('table', `be one of ${Object.keys(tables).join(', ')}`)
  }
}

/**
 * A read view (overlay null) or a write transaction over the store's tables. Reads see the transaction's own
 * writes. Every write is checked at once against the transaction's view, so a failed call changes nothing.
 */
export class TxImpl implements Tx {
  /** Per table, the pending changes by id (null for a read-only view). */
  private readonly overlay: Partial<Record<Table, Map<string, Entry>>> | null
  /** Every entry ever put in the overlay, in the order objects were first touched (some no longer live). */
  private readonly order: Entry[] = []
  private live = 0
  private undo: Undo[] | null = null
  /** The last meta handed out (objects written with the same creation time share one). */
  private lastMeta: Meta | undefined

  constructor(
    private readonly tables: Tables,
    readonly version: number,
    writable: boolean,
    readonly now: number,
    private readonly limits: Readonly<SpecLimits> = DEFAULT_SPEC_LIMITS,
  ) {
    this.overlay = writable ? {} : null
  }

  private entry(table: Table, id: string): Entry | undefined {
    return this.overlay?.[table]?.get(id)
  }

  private touched(table: Table): Map<string, Entry> | null {
    const m = this.overlay?.[table]
    return m !== undefined && m.size > 0 ? m : null
  }

  // ---------------------------------------------------------------------------------------------- reads

  get<T extends Table>(table: T, id: string): TableObjects[T] | undefined {
    checkTable(table, this.tables)
    if (this.live > 0) {
      const e = this.entry(table, id)
      if (e) return (e.object ?? undefined) as TableObjects[T] | undefined
    }
    return this.tables[table].objects.get(id) as TableObjects[T] | undefined
  }

  find<T extends Table>(table: T, by?: By, filter?: (object: TableObjects[T]) => boolean): TableObjects[T][] {
    checkTable(table, this.tables)
    if (filter !== undefined && typeof filter !== 'function') throw typeError('filter', 'be a function')
    const state = this.tables[table] as TableState<TableObjects[T]>
    return this.select(table, state, plan(table, state, by), filter)
  }

  /** The objects of `table` holding a claim (claims.ts), as this transaction sees them. */
  claimHolders(table: Table, key: string): readonly { id: string }[] {
    return this.select(
      table,
      this.tables[table] as TableState<any>,
      { kind: 'index', index: 'claim', key },
      undefined,
    )
  }

  private select<T extends Table>(
    table: T,
    state: TableState<TableObjects[T]>,
    p: ReturnType<typeof plan>,
    filter: ((object: TableObjects[T]) => boolean) | undefined,
  ): TableObjects[T][] {
    const out: TableObjects[T][] = []
    const touched = this.touched(table)
    const take = (id: string, o: TableObjects[T] | undefined) => {
      if (o === undefined) return
      if (touched?.has(id)) return
      if (filter === undefined || filter(o)) out.push(o)
    }
    switch (p.kind) {
      case 'all':
        for (const [id, o] of state.objects) take(id, o)
        break
      case 'id':
        take(p.id, state.objects.get(p.id))
        break
      case 'prefix':
        for (const id of state.idsWithPrefix(p.prefix)) take(id, state.objects.get(id))
        break
      case 'index':
        for (const id of state.lookup(p.index, p.key)) take(id, state.objects.get(id))
        break
      case 'namePrefix': {
        const seen = new Set<string>()
        for (const [k, bucket] of state.index('name')) {
          if (!k.startsWith(p.prefix)) continue
          for (const id of idsOf(bucket)) {
            if (seen.has(id)) continue
            seen.add(id)
            take(id, state.objects.get(id))
          }
        }
        break
      }
    }
    if (touched) {
      for (const e of touched.values()) {
        if (e.object === null) continue
        const o = e.object as TableObjects[T]
        if (!matches(state, p, o)) continue
        if (filter === undefined || filter(o)) out.push(o)
      }
    }
    return out
  }

  lookup<T extends Table>(table: T, ref: string): TableObjects[T] {
    checkTable(table, this.tables)
    if (typeof ref !== 'string') throw typeError('ref', 'be a string')
    const byId = this.get(table, ref)
    if (byId) return byId
    const notFound = () => new StoreError('NOT_FOUND', `${SINGULAR[table]} ${ref} not found`)
    if (ref === '') throw notFound()
    if (this.tables[table].hasIndex('name')) {
      const named = this.find(table, { name: ref })
      if (named.length === 1) return named[0]!
      if (named.length > 1) {
        throw new StoreError(
          'INVALID_ARGUMENT',
          `${SINGULAR[table]} ${ref} is ambiguous (${named.length} matches)`,
        )
      }
    }
    const prefixed = this.find(table, { idPrefix: ref })
    if (prefixed.length === 1) return prefixed[0]!
    if (prefixed.length > 1) {
      throw new StoreError(
        'INVALID_ARGUMENT',
        `${SINGULAR[table]} ${ref} is ambiguous (${prefixed.length} matches)`,
      )
    }
    throw notFound()
  }

  // ---------------------------------------------------------------------------------------------- writes

  private writable(table: Table): Map<string, Entry> {
    const overlay = this.overlay
    if (overlay === null) throw new TypeError('tx: this is a read-only view')
    checkTable(table, this.tables)
    let m = overlay[table]
    if (m === undefined) overlay[table] = m = new Map()
    return m
  }

  /**
   * The meta of an object this transaction writes: the version it commits at if nothing else commits first
   * (always so for a local store, which runs one writer at a time), as swarm sets it on write. The commit
   * stores an object whose meta turned out right as it is, and copies it with the right meta otherwise (a
   * replicated commit gets the raft index as its version). Equal metas are shared: they are frozen.
   */
  private meta(createdAt: number): Meta {
    const m = this.lastMeta
    if (m !== undefined && m.createdAt === createdAt) return m
    return (this.lastMeta = Object.freeze({ version: this.version + 1, createdAt, updatedAt: this.now }))
  }

  /** Puts a new entry in the overlay. */
  private insert(m: Map<string, Entry>, e: Entry): void {
    if (this.undo !== null) this.undo.push([e, e.op, e.object, false])
    m.set(e.id, e)
    this.order.push(e)
    this.live++
  }

  /** Records an entry's state before it changes (for rollback). */
  private record(e: Entry): void {
    if (this.undo !== null) this.undo.push([e, e.op, e.object, e.live])
  }

  create<T extends Table>(table: T, object: NewObject<TableObjects[T]>): TableObjects[T] {
    const overlay = this.writable(table)
    validateObject(table, object)
    const o = cloneForStore(object as Record<string, any>, 'object')
    o.meta = this.meta(this.now)
    if (table === 'services' && o.specVersion === undefined) o.specVersion = SPEC_VERSION_ZERO
    if (overlay.has(o.id) || this.tables[table].objects.has(o.id)) {
      throw new StoreError('EXISTS', `${SINGULAR[table]} ${o.id} already exists`)
    }
    this.checkName(table, o)
    checkClaims(table, o, null, this)
    if (table === 'services') {
      checkServiceSpec(o.spec, this.limits)
      this.checkServiceRefs(o)
    }
    Object.freeze(o)
    this.insert(overlay, {
      op: Op.Create,
      table,
      id: o.id,
      baseVersion: 0,
      object: o,
      live: true,
      base: null,
    })
    return o as TableObjects[T]
  }

  update<T extends Table>(table: T, object: TableObjects[T]): TableObjects[T] {
    const overlay = this.writable(table)
    const id: unknown = (object as { id?: unknown } | null | undefined)?.id
    const e = typeof id === 'string' ? overlay.get(id) : undefined
    const cur = (e ? e.object : typeof id === 'string' ? this.tables[table].objects.get(id) : undefined) as
      | Record<string, any>
      | null
      | undefined
    validateObject(table, object, cur ?? undefined)
    if (!cur) throw new StoreError('NOT_FOUND', `${SINGULAR[table]} ${object.id} not found`)
    checkVersion(table, object, cur.meta.version)
    if (table === 'tasks') checkTaskState(cur as Task, object as Task)
    const o = cloneForStore(object as Record<string, any>, 'object')
    o.meta = this.meta(cur.meta.createdAt)
    if (table === 'services' && o.specVersion === undefined) o.specVersion = SPEC_VERSION_ZERO
    this.checkName(table, o)
    checkClaims(table, o, cur, this)
    if (table === 'services') {
      // An unchanged spec (the stored frozen object) passed these checks when it was written.
      if (o.spec !== cur.spec) checkServiceSpec(o.spec, this.limits)
      this.checkServiceRefs(o)
    }
    Object.freeze(o)
    if (e) {
      this.record(e)
      e.object = o
    } else {
      const v = cur.meta.version
      this.insert(overlay, {
        op: Op.Update,
        table,
        id: o.id,
        baseVersion: v,
        object: o,
        live: true,
        base: cur,
      })
    }
    return o as TableObjects[T]
  }

  delete(table: Table, id: string): void {
    const overlay = this.writable(table)
    if (typeof id !== 'string') throw typeError('id', 'be a string')
    const cur = this.get(table, id) as Record<string, any> | undefined
    if (!cur) throw new StoreError('NOT_FOUND', `${SINGULAR[table]} ${id} not found`)
    this.checkNotInUse(table, cur)
    const e = overlay.get(id)
    if (e?.op === Op.Create) {
      this.record(e)
      e.live = false
      overlay.delete(id)
      this.live--
    } else if (e) {
      this.record(e)
      e.op = Op.Delete
      e.object = null
    } else
      this.insert(overlay, {
        op: Op.Delete,
        table,
        id,
        baseVersion: cur.meta.version,
        object: null,
        live: true,
        base: cur,
      })
  }

  // ---------------------------------------------------------------------------------------------- checks

  private checkName(table: Table, o: Record<string, any>): void {
    if (!UNIQUE_NAMES.has(table)) return
    const name = (o.spec.name as string).toLowerCase()
    for (const other of this.find(table, { name })) {
      if (other.id !== o.id) {
        throw new StoreError(
          'NAME_CONFLICT',
          `${SINGULAR[table]} name "${o.spec.name}" conflicts with an existing object (${other.id})`,
        )
      }
    }
  }

  private checkServiceRefs(o: Record<string, any>): void {
    const t = o.spec.taskTemplate
    for (const n of t.networks ?? []) this.mustExist('networks', n.target, o)
    for (const r of t.containerSpec.secrets ?? []) this.mustExist('secrets', r.secretId, o)
    for (const r of t.containerSpec.configs ?? []) this.mustExist('configs', r.configId, o)
  }

  private mustExist(table: Table, id: string, service: Record<string, any>): void {
    if (!this.get(table, id)) {
      throw new StoreError(
        'INVALID_ARGUMENT',
        `service ${service.spec.name} references ${SINGULAR[table]} ${id}, which does not exist`,
      )
    }
  }

  /**
   * Refuses removing a network, secret or config that a service refers to, and a network that a task still
   * holding references refers to (as swarmkit: a secret or config is checked against services only, so that
   * `docker stack rm` is not held up by a task that lingers on a down node). With `untouchedOnly` (validating a command at apply time) only objects the command leaves as they are
   * count: what it changes was checked in order when the transaction ran, and a task written after the removal
   * may name it, exactly as in the transaction that was proposed.
   */
  private checkNotInUse(table: Table, o: Record<string, any>, untouchedOnly = false): void {
    const index = REF_INDEX[table]
    if (!index) return
    const by: By =
      index === 'network'
        ? { referencedNetworkId: o.id }
        : index === 'secret'
          ? { referencedSecretId: o.id }
          : { referencedConfigId: o.id }
    const untouched = untouchedOnly ? (x: { id: string }, t: Table) => !this.entry(t, x.id) : () => true
    const services = this.find('services', by, (x) => untouched(x, 'services'))
    if (services.length > 0) {
      throw new StoreError(
        'IN_USE',
        `${SINGULAR[table]} ${o.spec.name} is in use by service ${services.map((s) => s.spec.name).join(', ')}`,
      )
    }
    if (index !== 'network') return
    const tasks = this.find('tasks', by, (x) => untouched(x, 'tasks') && taskHoldsReferences(x))
    if (tasks.length > 0) {
      throw new StoreError('IN_USE', `${SINGULAR[table]} ${o.spec.name} is in use by task ${tasks[0]!.id}`)
    }
  }

  // ---------------------------------------------------------------------------------------------- state

  /** The squashed changes, in the order objects were first touched. */
  actions(): Entry[] {
    const order = this.order
    if (order.length === this.live) return order.slice()
    const out: Entry[] = []
    for (const e of order) if (e.live) out.push(e)
    return out
  }

  get size(): number {
    return this.live
  }

  /** Starts recording an undo log (for batches, where one callback's failure rolls back only its changes). */
  savepoint(): number {
    if (this.undo === null) this.undo = []
    return this.undo.length
  }

  rollback(mark: number): void {
    const undo = this.undo!
    let inserted = 0
    while (undo.length > mark) {
      const [e, op, object, live] = undo.pop()!
      const m = this.writable(e.table)
      e.op = op
      e.object = object
      if (live && !e.live) {
        m.set(e.id, e)
        this.live++
      } else if (!live && e.live) {
        m.delete(e.id)
        this.live--
      }
      // Only an insert records `live` false: `record` is called on entries in the overlay, which are live.
      if (!live) inserted++
      e.live = live
    }
    // Every entry first put in the overlay after the mark was appended to the order after it: drop those.
    this.order.length -= inserted
  }

  /**
   * Loads already-squashed actions (a command from the log) into the overlay without per-call checks (updates
   * sent as deltas rebuilt from the stored objects they name; the entries keep those as their `base`), then
   * checks the final state: versions match the ones the transaction read, names are unique, removed networks,
   * secrets and configs are not referenced by anything the command leaves untouched, services reference
   * objects that exist, task states only moved forward. Each of these is implied by the checks the proposing
   * transaction passed when nothing changed in between, so apply refuses only what a concurrent commit made
   * invalid, and every member refuses the same commands.
   */
  loadAndValidate(actions: readonly Action[]): void {
    for (const a of actions) {
      const overlay = this.writable(a.table)
      if (overlay.has(a.id))
        throw new StoreError('CORRUPT', `${SINGULAR[a.table]} ${a.id} appears twice in one command`)
      const base = this.tables[a.table].objects.get(a.id) as Record<string, any> | undefined
      if (a.op === Op.Create) {
        if (base) throw new StoreError('EXISTS', `${SINGULAR[a.table]} ${a.id} already exists`)
      } else {
        if (!base) throw new StoreError('NOT_FOUND', `${SINGULAR[a.table]} ${a.id} not found`)
        if (a.baseVersion !== base.meta.version)
          throw outOfSequence(a.table, base.meta.version, a.baseVersion)
      }
      let object = a.object
      let changed: Record<string, any> | undefined
      if (object !== null) {
        // An update sent as what changed becomes whole again from its base, at the version it names (delta.ts).
        if (a.kept !== undefined) {
          changed = object
          object = undelta(base!, object, a.kept)
        }
        // Parts it shares with the stored object (what a delta kept) passed these checks when it was stored.
        validateObject(a.table, object, base)
        if (object.id !== a.id) throw new StoreError('CORRUPT', `${SINGULAR[a.table]} ${a.id}: id mismatch`)
        if (a.op === Op.Update && a.table === 'tasks') checkTaskState(base as Task, object as Task)
      }
      this.insert(overlay, {
        op: a.op,
        table: a.table,
        id: a.id,
        baseVersion: a.baseVersion,
        object,
        live: true,
        base: base ?? null,
        changed,
      })
    }
    for (const e of this.order) {
      if (e.object !== null) {
        this.checkName(e.table, e.object)
        checkClaims(e.table, e.object, e.base, this)
        if (e.table === 'services') this.checkServiceRefs(e.object)
      } else {
        this.checkNotInUse(e.table, e.base!, true)
      }
    }
  }
}

function matches(state: TableState<any>, p: ReturnType<typeof plan>, o: { id: string }): boolean {
  switch (p.kind) {
    case 'all':
      return true
    case 'id':
      return o.id === p.id
    case 'prefix':
      return o.id.startsWith(p.prefix)
    case 'index':
      return hasKey(state.keysOf(p.index, o), p.key)
    case 'namePrefix': {
      const keys: IndexKeys = state.keysOf('name', o)
      if (keys === undefined) return false
      if (typeof keys === 'string') return keys.startsWith(p.prefix)
      return keys.some((k) => k.startsWith(p.prefix))
    }
  }
}

function checkVersion(table: Table, o: { meta?: { version?: unknown } }, current: number): void {
  const v = o.meta?.version
  if (v !== current) throw outOfSequence(table, current, v)
}

function outOfSequence(table: Table, current: number, v: unknown): StoreError {
  return new StoreError('SEQUENCE', SEQUENCE_MESSAGE, {
    detail: `${SINGULAR[table]} is at version ${current}, not ${v}`,
  })
}

function checkTaskState(cur: Task, next: Task): void {
  if (taskStateRank(next.status.state) < taskStateRank(cur.status.state)) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `task ${cur.id}: state cannot move back from ${cur.status.state} to ${next.status.state}`,
    )
  }
}
