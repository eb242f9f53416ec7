import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ClusterStore,
  type Proposer,
  TASK_STATES,
  type Table,
  type TaskState,
  type Tx,
  taskStateRank,
} from '../src/index.js'
import { network, node, secret, service, task } from './fixtures.js'

// Transactions and indexes checked against a naive model: plain maps, every rule and query a full scan.

const SLOW = process.env.SWARMKIT_SLOW === '1'
const IDS = ['a', 'b', 'ab']
const NAMES = ['x', 'X', 'y', 'z']
const TABLES_USED = ['services', 'tasks', 'networks', 'secrets', 'nodes'] as const
type T = (typeof TABLES_USED)[number]

type Op =
  | {
      kind: 'create'
      table: T
      id: string
      name: string
      nets: string[]
      secs: string[]
      svc: string
      slot: number
      state: TaskState
    }
  | {
      kind: 'update'
      table: T
      id: string
      name: string
      nets: string[]
      secs: string[]
      stale: boolean
      state: TaskState
      desired: 'running' | 'shutdown'
    }
  | { kind: 'delete'; table: T; id: string }
  | { kind: 'abort' }

const sub: fc.Arbitrary<string[]> = fc.oneof(
  fc.constant<string[]>([]),
  fc.subarray(['a', 'b'], { minLength: 1 }),
  fc.subarray(IDS, { maxLength: 2 }),
)
const maybe: fc.Arbitrary<string[]> = fc.oneof(fc.constant<string[]>([]), sub)
const state = fc.constantFrom<TaskState>('new', 'pending', 'running', 'complete', 'shutdown')
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      table: fc.constantFrom(...TABLES_USED),
      id: fc.constantFrom(...IDS),
      name: fc.constantFrom(...NAMES),
      nets: maybe,
      secs: maybe,
      svc: fc.constantFrom(...IDS),
      slot: fc.integer({ min: 0, max: 2 }),
      state,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      table: fc.constantFrom(...TABLES_USED),
      id: fc.constantFrom(...IDS),
      name: fc.constantFrom(...NAMES),
      nets: sub,
      secs: maybe,
      stale: fc.boolean(),
      state,
      desired: fc.constantFrom('running' as const, 'shutdown' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      table: fc.constantFrom<T>('networks', 'secrets', ...TABLES_USED),
      id: fc.constantFrom(...IDS),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'abort' as const }) },
)
const txsArb = fc.array(fc.oneof(fc.tuple(opArb), fc.array(opArb, { minLength: 1, maxLength: 3 })), {
  minLength: 10,
  maxLength: 60,
})

function build(op: Extract<Op, { kind: 'create' }>): any {
  switch (op.table) {
    case 'services':
      return service(op.id, op.name, { networks: op.nets, secrets: op.secs })
    case 'tasks': {
      const t = task(op.id, op.svc, op.slot, op.slot ? '' : 'n', { networks: op.nets, secrets: op.secs })
      return { ...t, status: { ...t.status, state: op.state } }
    }
    case 'networks':
      return network(op.id, op.name)
    case 'secrets':
      return secret(op.id, op.name)
    case 'nodes':
      return node(op.id, op.name)
  }
}

function modify(cur: any, op: Extract<Op, { kind: 'update' }>): any {
  const meta = { ...cur.meta, version: op.stale ? cur.meta.version - 1 : cur.meta.version }
  switch (op.table) {
    case 'services': {
      const fresh = service(cur.id, op.name, { networks: op.nets, secrets: op.secs })
      return { ...cur, meta, spec: fresh.spec }
    }
    case 'tasks':
      return { ...cur, meta, desiredState: op.desired, status: { ...cur.status, state: op.state } }
    case 'nodes':
      return { ...cur, meta, description: { ...cur.description, hostname: op.name } }
    default:
      return { ...cur, meta, spec: { ...cur.spec, name: op.name } }
  }
}

class Abort extends Error {}

/** The naive model: the same rules, by brute force. */
class Model {
  tables = new Map<T, Map<string, any>>(TABLES_USED.map((t) => [t, new Map()]))
  version = 0

  run(ops: Op[]): string {
    const work = new Map([...this.tables].map(([t, m]) => [t, new Map(m)]))
    const touched = new Map<string, 'create' | 'update' | 'delete'>()
    const names = (t: T, o: any): string[] =>
      t === 'nodes'
        ? [o.description.hostname.toLowerCase()]
        : t === 'tasks'
          ? []
          : [o.spec.name.toLowerCase()]
    const refs = (o: any, kind: 'networks' | 'secrets'): string[] =>
      kind === 'networks'
        ? [
            ...(o.spec.taskTemplate?.networks ?? o.spec.networks ?? []).map((n: any) => n.target),
            ...(o.networks ?? []).map((n: any) => n.networkId),
          ]
        : (o.spec.taskTemplate?.containerSpec ?? o.spec.containerSpec).secrets.map((s: any) => s.secretId)
    const live = (t: any) =>
      t.desiredState === 'running' ||
      t.desiredState === 'ready' ||
      taskStateRank(t.status.state) < taskStateRank('complete')
    const check = (t: T, o: any) => {
      if (t === 'services' || t === 'networks' || t === 'secrets') {
        for (const other of work.get(t)!.values()) {
          if (other.id !== o.id && names(t, other)[0] === names(t, o)[0]) return 'NAME_CONFLICT'
        }
      }
      if (t === 'services') {
        for (const n of refs(o, 'networks')) if (!work.get('networks')!.has(n)) return 'INVALID_ARGUMENT'
        for (const s of refs(o, 'secrets')) if (!work.get('secrets')!.has(s)) return 'INVALID_ARGUMENT'
      }
      return null
    }
    for (const op of ops) {
      if (op.kind === 'abort') return 'ABORT'
      const m = work.get(op.table)!
      const k = `${op.table}/${op.id}`
      if (op.kind === 'create') {
        if (m.has(op.id) || touched.get(k) === 'delete') return 'EXISTS'
        const o = { ...build(op), meta: { version: 0 } }
        if (op.table === 'services') o.specVersion = { index: 0 }
        const err = check(op.table, o)
        if (err) return err
        m.set(op.id, o)
        if (!touched.has(k)) touched.set(k, 'create')
      } else if (op.kind === 'update') {
        const cur = m.get(op.id)
        if (!cur) return 'NOT_FOUND'
        const o = modify(cur, op)
        if (o.meta.version !== cur.meta.version) return 'SEQUENCE'
        if (op.table === 'tasks' && taskStateRank(o.status.state) < taskStateRank(cur.status.state))
          return 'INVALID_ARGUMENT'
        const err = check(op.table, o)
        if (err) return err
        m.set(op.id, o)
        if (!touched.has(k)) touched.set(k, 'update')
      } else {
        const cur = m.get(op.id)
        if (!cur) return 'NOT_FOUND'
        if (op.table === 'networks' || op.table === 'secrets') {
          const kind = op.table
          for (const s of work.get('services')!.values()) if (refs(s, kind).includes(op.id)) return 'IN_USE'
          // Only a network is held by live tasks as well (swarmkit checks a secret against services only).
          if (kind === 'networks')
            for (const t of work.get('tasks')!.values())
              if (live(t) && refs(t, kind).includes(op.id)) return 'IN_USE'
        }
        m.delete(op.id)
        if (touched.get(k) === 'create') touched.delete(k)
        else touched.set(k, 'delete')
      }
    }
    if (touched.size === 0) return 'OK'
    this.version++
    for (const [k, what] of touched) {
      const [t, id] = k.split('/') as [T, string]
      if (what === 'delete') continue
      const o = work.get(t)!.get(id)!
      const prev = this.tables.get(t)!.get(id)
      o.meta = { version: this.version, createdAt: prev ? prev.meta.createdAt : 1000, updatedAt: 1000 }
      if (t === 'services' && o.specVersion.index === 0) o.specVersion = { index: this.version }
    }
    this.tables = work
    return 'OK'
  }
}

function runTx(ops: Op[]) {
  return (tx: Tx) => {
    for (const op of ops) {
      if (op.kind === 'abort') throw new Abort()
      if (op.kind === 'create') tx.create(op.table, build(op))
      else if (op.kind === 'update') {
        const cur = tx.get(op.table, op.id)
        if (!cur) {
          const o = build({ ...op, kind: 'create', svc: 'a', slot: 1 })
          tx.update(op.table, { ...o, meta: { version: 1, createdAt: 0, updatedAt: 0 } })
        } else tx.update(op.table, modify(cur, op))
      } else tx.delete(op.table, op.id)
    }
  }
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'OK'
  } catch (err) {
    if (err instanceof Abort) return 'ABORT'
    return (err as { code?: string }).code ?? String(err)
  }
}

function dump(s: ClusterStore): Record<string, any[]> {
  return s.view((tx) =>
    Object.fromEntries(
      TABLES_USED.map((t) => [t, tx.find(t as Table).sort((a, b) => (a.id < b.id ? -1 : 1))]),
    ),
  )
}

function checkIndexes(s: ClusterStore, m: Model): void {
  const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort()
  const all = (t: T) => [...m.tables.get(t)!.values()]
  s.view((tx) => {
    for (const id of IDS) {
      expect(ids(tx.find('tasks', { serviceId: id }))).toEqual(
        ids(all('tasks').filter((t) => t.serviceId === id)),
      )
      expect(ids(tx.find('services', { referencedNetworkId: id }))).toEqual(
        ids(all('services').filter((x) => x.spec.taskTemplate.networks.some((n: any) => n.target === id))),
      )
      expect(ids(tx.find('tasks', { referencedSecretId: id }))).toEqual(
        ids(all('tasks').filter((x) => x.spec.containerSpec.secrets.some((n: any) => n.secretId === id))),
      )
      expect(ids(tx.find('tasks', { slot: { serviceId: id, slot: 1 } }))).toEqual(
        ids(all('tasks').filter((x) => x.serviceId === id && x.slot === 1)),
      )
      for (const t of TABLES_USED) {
        expect(ids(tx.find(t, { idPrefix: id }))).toEqual(ids(all(t).filter((x) => x.id.startsWith(id))))
      }
    }
    for (const name of NAMES) {
      for (const t of ['services', 'networks', 'secrets'] as const) {
        expect(ids(tx.find(t, { name }))).toEqual(
          ids(all(t).filter((x) => x.spec.name.toLowerCase() === name.toLowerCase())),
        )
      }
      expect(ids(tx.find('nodes', { name }))).toEqual(
        ids(all('nodes').filter((x) => x.description.hostname.toLowerCase() === name.toLowerCase())),
      )
    }
    for (const st of TASK_STATES) {
      expect(ids(tx.find('tasks', { taskState: st }))).toEqual(
        ids(all('tasks').filter((x) => x.status.state === st)),
      )
    }
    expect(ids(tx.find('tasks', { desiredState: 'shutdown' }))).toEqual(
      ids(all('tasks').filter((x) => x.desiredState === 'shutdown')),
    )
  })
}

/** An in-process "log": every proposal is appended and applied to every member in order. */
function replicated(n: number) {
  const members: ClusterStore[] = []
  let index = 0
  const proposer: Proposer = async (cmd) => {
    index++
    for (const m of members) m.apply(cmd, index)
  }
  for (let i = 0; i < n; i++) members.push(new ClusterStore({ proposer, clock: () => 1000 }))
  return members
}

describe('ClusterStore against a naive model', () => {
  it('agrees on every outcome, object and index', async () => {
    await fc.assert(
      fc.asyncProperty(txsArb, async (txs) => {
        const store = new ClusterStore({ clock: () => 1000 })
        const model = new Model()
        for (const ops of txs) {
          const got = await outcome(store.update(runTx(ops)))
          const want = model.run(ops)
          expect(got).toBe(want)
          expect(store.version).toBe(model.version)
        }
        const m = Object.fromEntries(
          TABLES_USED.map((t) => [
            t,
            [...model.tables.get(t)!.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
          ]),
        )
        expect(dump(store)).toEqual(m)
        checkIndexes(store, model)
      }),
      { seed: 42, numRuns: SLOW ? 3000 : 250, endOnFailure: true },
    )
  })

  it('replicated through a log, every member reaches the same state as a local store', async () => {
    await fc.assert(
      fc.asyncProperty(txsArb, async (txs) => {
        const local = new ClusterStore({ clock: () => 1000 })
        const [a, b] = replicated(2) as [ClusterStore, ClusterStore]
        for (const ops of txs) {
          const l = await outcome(local.update(runTx(ops)))
          const r = await outcome(a.update(runTx(ops)))
          expect(r).toBe(l)
        }
        const want = dump(local)
        // Versions are log indexes when replicated; compare everything else.
        const strip = (d: Record<string, any[]>) =>
          JSON.stringify(d, (k, v) => (k === 'meta' || k === 'specVersion' ? undefined : v))
        expect(strip(dump(a))).toBe(strip(want))
        expect(dump(b)).toEqual(dump(a))
        const c = new ClusterStore()
        c.restore(a.snapshot())
        expect(dump(c)).toEqual(dump(a))
        expect(a.version).toBe(local.version)
      }),
      { seed: 7, numRuns: SLOW ? 2000 : 150, endOnFailure: true },
    )
  })
})
