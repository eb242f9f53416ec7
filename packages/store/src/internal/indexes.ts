import type { Service, Table, TableObjects, Task } from '../types.js'
import { taskStateRank } from '../types.js'
import { networkClaims, nodeClaims, serviceClaims, taskClaims } from './claims.js'

/** Secondary indexes; which exist depends on the table (see `INDEXES`). */
export type IndexName =
  | 'name'
  | 'role'
  | 'availability'
  | 'serviceId'
  | 'nodeId'
  | 'slot'
  | 'desiredState'
  | 'taskState'
  | 'network'
  | 'secret'
  | 'config'
  | 'claim'

export type IndexKeys = string | readonly string[] | undefined
type KeyFn<O> = (o: O) => IndexKeys

const lower = (s: string | undefined): string | undefined => (s ? s.toLowerCase() : undefined)

function serviceNetworks(s: Service): IndexKeys {
  const nets = s.spec.taskTemplate.networks
  if (!nets || nets.length === 0) return undefined
  return nets.length === 1 ? nets[0]!.target : unique(nets.map((n) => n.target))
}

function taskNetworks(t: Task): IndexKeys {
  const a = t.networks
  const b = t.spec.networks
  if ((!a || a.length === 0) && (!b || b.length === 0)) return undefined
  const ids: string[] = []
  if (a) for (const n of a) ids.push(n.networkId)
  if (b) for (const n of b) ids.push(n.target)
  return unique(ids)
}

function secretRefs(spec: { containerSpec: { secrets?: { secretId: string }[] } }): IndexKeys {
  const refs = spec.containerSpec.secrets
  if (!refs || refs.length === 0) return undefined
  return refs.length === 1 ? refs[0]!.secretId : unique(refs.map((r) => r.secretId))
}

function configRefs(spec: { containerSpec: { configs?: { configId: string }[] } }): IndexKeys {
  const refs = spec.containerSpec.configs
  if (!refs || refs.length === 0) return undefined
  return refs.length === 1 ? refs[0]!.configId : unique(refs.map((r) => r.configId))
}

function unique(keys: string[]): readonly string[] {
  return keys.length < 2 ? keys : [...new Set(keys)]
}

/** Index key of a task's slot: tasks of replicated services by (service, slot), global ones by (service, node). */
export function slotKey(serviceId: string, slot: number, nodeId?: string): string {
  return slot === 0 && nodeId !== undefined
    ? `${serviceId}\u0000n\u0000${nodeId}`
    : `${serviceId}\u0000${slot}`
}

/** The indexes of `table` that are never dropped. */
export function keptIndexes(table: Table): ReadonlySet<IndexName> {
  return KEPT[table] ?? NO_INDEXES
}
const NO_INDEXES: ReadonlySet<IndexName> = new Set()

export const INDEXES: { [T in Table]: Partial<Record<IndexName, KeyFn<TableObjects[T]>>> } = {
  nodes: {
    name: (n) => {
      const a = lower(n.spec.name)
      const b = lower(n.description?.hostname)
      return a && b && a !== b ? [a, b] : (a ?? b)
    },
    role: (n) => n.role,
    availability: (n) => n.spec.availability,
    claim: nodeClaims,
  },
  services: {
    name: (s) => lower(s.spec.name),
    network: serviceNetworks,
    secret: (s) => secretRefs(s.spec.taskTemplate),
    config: (s) => configRefs(s.spec.taskTemplate),
    claim: serviceClaims,
  },
  tasks: {
    serviceId: (t) => t.serviceId || undefined,
    nodeId: (t) => t.nodeId || undefined,
    slot: (t) => (t.serviceId ? slotKey(t.serviceId, t.slot, t.nodeId) : undefined),
    desiredState: (t) => t.desiredState,
    taskState: (t) => t.status.state,
    network: taskNetworks,
    secret: (t) => secretRefs(t.spec),
    config: (t) => configRefs(t.spec),
    claim: taskClaims,
  },
  networks: { name: (n) => lower(n.spec.name), claim: networkClaims },
  clusters: { name: (c) => lower(c.spec.name) },
  secrets: { name: (s) => lower(s.spec.name) },
  configs: { name: (c) => lower(c.spec.name) },
}

/** Tables whose names are unique (case-insensitively), as in swarm. Node names are not. */
export const UNIQUE_NAMES: ReadonlySet<Table> = new Set<Table>([
  'services',
  'networks',
  'clusters',
  'secrets',
  'configs',
])

/**
 * Whether a task still holds the networks, secrets and configs it references: it is meant to run, or it has
 * not yet reached a terminal state. Old shutdown tasks kept as history do not block a removal.
 */
export function taskHoldsReferences(t: Task): boolean {
  return (
    t.desiredState === 'running' ||
    t.desiredState === 'ready' ||
    t.desiredState === 'complete' ||
    taskStateRank(t.status.state) < COMPLETE_RANK
  )
}
const COMPLETE_RANK = taskStateRank('complete')

export function hasKey(keys: IndexKeys, key: string): boolean {
  if (keys === undefined) return false
  if (typeof keys === 'string') return keys === key
  return keys.includes(key)
}

/**
 * One secondary index (or the id-prefix index), kept lazily. It is built by one scan of the table on its first
 * lookup and then kept in step with every write; once more writes since its last lookup moved objects between
 * its keys than the table holds objects (at least {@link MIN_WRITES_BEFORE_DROP}), it is dropped, and the next
 * lookup builds it again. Keeping it costs at least a rebuild by then, so a lookup never costs more than the
 * upkeep it saved (amortized), and a burst of writes nobody reads by that index (the scheduler assigning 100k
 * tasks: the per-state buckets hold every task) pays no index upkeep at all. A write that leaves an object's
 * keys (a status report, for all but the per-state index) costs two key computations and does not count.
 * A `kept` index is never dropped: its first lookup must be quick whenever it comes.
 */
class LazyIndex<O> {
  map: Map<string, Bucket> | null = null
  writes = 0
  constructor(
    readonly name: IndexName | 'prefix',
    readonly fn: KeyFn<O>,
    readonly kept = false,
  ) {}
}

/**
 * Indexes never dropped. The tasks' per-node index is read when an agent's stream starts: a follower reads
 * nothing by it while status reports pour in, and the agents of a failed manager then all come to it at
 * once; rebuilding it over 300,000 tasks held the follower's loop 1.2 s in the middle of the election.
 */
const KEPT: Partial<Record<Table, ReadonlySet<IndexName>>> = { tasks: new Set(['nodeId']) }

/** An index is dropped after this many unread writes even on a small table (rebuilding small ones is cheap). */
const MIN_WRITES_BEFORE_DROP = 1024

const idPrefix = (o: { id: string }): string => o.id.slice(0, 2)

/** One table: the primary map, a prefix index on ids, and the secondary indexes (all built lazily). */
export class TableState<O extends { id: string }> {
  readonly objects = new Map<string, O>()
  /** Ids bucketed by their first two characters, for prefix search. */
  private readonly prefixes: LazyIndex<O>
  private readonly byName = new Map<IndexName, LazyIndex<O>>()
  private readonly all: LazyIndex<O>[]

  constructor(defs: Partial<Record<IndexName, KeyFn<O>>>, kept: ReadonlySet<IndexName> = new Set()) {
    this.prefixes = new LazyIndex<O>('prefix', idPrefix)
    this.all = [this.prefixes]
    for (const [name, fn] of Object.entries(defs) as [IndexName, KeyFn<O>][]) {
      const index = new LazyIndex<O>(name, fn, kept.has(name))
      this.byName.set(name, index)
      this.all.push(index)
    }
  }

  keysOf(index: IndexName, o: O): IndexKeys {
    const def = this.byName.get(index)
    return def ? def.fn(o) : undefined
  }

  hasIndex(index: IndexName): boolean {
    return this.byName.has(index)
  }

  /** The built index (built now if it is not), as key to bucket; counts as a lookup. */
  index(name: IndexName): ReadonlyMap<string, Bucket> {
    const index = this.byName.get(name)
    if (!index) throw new TypeError(`no ${name} index`)
    return this.built(index)
  }

  private built(index: LazyIndex<O>): Map<string, Bucket> {
    index.writes = 0
    if (index.map !== null) return index.map
    const map = new Map<string, Bucket>()
    const fn = index.fn
    for (const [id, o] of this.objects) {
      const keys = fn(o)
      if (keys === undefined) continue
      if (typeof keys === 'string') addKey(map, keys, id)
      else for (const k of keys) addKey(map, k, id)
    }
    index.map = map
    return map
  }

  /** Ids under `key` in `index` (empty when none). */
  lookup(index: IndexName, key: string): Iterable<string> {
    const def = this.byName.get(index)
    if (!def) return NONE
    return idsOf(this.built(def).get(key))
  }

  idsWithPrefix(prefix: string): string[] {
    const prefixes = this.built(this.prefixes)
    const out: string[] = []
    if (prefix.length >= 2) {
      for (const id of idsOf(prefixes.get(prefix.slice(0, 2)))) if (id.startsWith(prefix)) out.push(id)
      return out
    }
    for (const [head, bucket] of prefixes) {
      if (!head.startsWith(prefix)) continue
      for (const id of idsOf(bucket)) out.push(id)
    }
    return out
  }

  /** Replaces (or inserts, or with `next` undefined removes) an object, keeping every built index in step. */
  put(id: string, prev: O | undefined, next: O | undefined): void {
    if (next) this.objects.set(id, next)
    else this.objects.delete(id)
    const limit = Math.max(this.objects.size, MIN_WRITES_BEFORE_DROP)
    // The keys `prev` was filed under are computed again rather than kept per object: the key functions are
    // pure and objects frozen, and a kept array per object cost more (allocation, GC, a map insert) than this.
    for (let i = 0; i < this.all.length; i++) {
      const def = this.all[i]!
      const index = def.map
      if (index === null) continue
      const fn = def.fn
      const before = prev ? fn(prev) : undefined
      const after = next ? fn(next) : undefined
      if (before === after) continue
      if (++def.writes > limit && !def.kept) {
        def.map = null
        continue
      }
      if (typeof before === 'string' && typeof after === 'string') {
        removeKey(index, before, id)
        addKey(index, after, id)
        continue
      }
      if (before !== undefined) {
        if (typeof before === 'string') {
          if (!hasKey(after, before)) removeKey(index, before, id)
        } else for (const k of before) if (!hasKey(after, k)) removeKey(index, k, id)
      }
      if (after !== undefined) {
        if (typeof after === 'string') {
          if (!hasKey(before, after)) addKey(index, after, id)
        } else for (const k of after) if (!hasKey(before, k)) addKey(index, k, id)
      }
    }
  }

  clear(): void {
    this.objects.clear()
    for (const index of this.all) {
      index.map = null
      index.writes = 0
    }
  }
}

/**
 * The ids under one index key: a lone id is kept as the string itself, more in a Set. Most keys of a large
 * table hold one object (a task's slot, a node's name), and a Set per key would cost an allocation each.
 */
export type Bucket = string | Set<string>

/** The ids of a bucket (none for `undefined`). */
export function idsOf(bucket: Bucket | undefined): Iterable<string> {
  if (bucket === undefined) return NONE
  return typeof bucket === 'string' ? [bucket] : bucket
}

const NONE: readonly string[] = Object.freeze([])

function addKey(index: Map<string, Bucket>, key: string, id: string): void {
  const bucket = index.get(key)
  if (bucket === undefined) index.set(key, id)
  else if (typeof bucket !== 'string') bucket.add(id)
  else if (bucket !== id) index.set(key, new Set([bucket, id]))
}

function removeKey(index: Map<string, Bucket>, key: string, id: string): void {
  const bucket = index.get(key)
  if (bucket === undefined) return
  if (typeof bucket === 'string') {
    if (bucket === id) index.delete(key)
    return
  }
  bucket.delete(id)
  if (bucket.size === 1) index.set(key, bucket.values().next().value as string)
  else if (bucket.size === 0) index.delete(key)
}
