import { describe, expect, it } from 'vitest'
import { ClusterStore, type Proposer, type Task } from '../src/index.js'
import { type Action, encodeCommand, Op } from '../src/internal/codec.js'
import { task } from './fixtures.js'

/** A store holding task t1 (running), and a second member restored from its snapshot. */
async function members(): Promise<ClusterStore[]> {
  let index = 0
  let leader: ClusterStore | undefined
  const proposer: Proposer = async (cmd) => {
    leader!.apply(cmd, ++index)
    return { index }
  }
  leader = new ClusterStore({ proposer })
  await leader.update((tx) => tx.create('tasks', task('t1', 's1', 1, 'n1')))
  await leader.update((tx) => {
    const t = tx.get('tasks', 't1')!
    tx.update('tasks', { ...t, status: { timestamp: 1, state: 'running', message: 'started' } })
  })
  const restored = new ClusterStore()
  restored.restore(leader.snapshot())
  return [leader, restored]
}

const deepFrozen = (v: unknown): boolean =>
  v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v).every(deepFrozen))

let seq = 0
/** `next` as a command the way a proposer sends it: as a delta of `base`, or whole (no base known). */
function command(base: Task, next: Record<string, unknown>, asDelta: boolean): Uint8Array {
  const action: Action = {
    op: Op.Update,
    table: 'tasks',
    id: base.id,
    baseVersion: base.meta.version,
    object: next,
    ...(asDelta ? { base } : {}),
  }
  return encodeCommand({ kind: 'tx', proposer: 'other', seq: ++seq, time: 9, actions: [action] })
}

const CASES: [string, (t: Task) => Record<string, unknown>, string | null][] = [
  ['a status change', (t) => ({ ...t, status: { timestamp: 2, state: 'complete', message: 'done' } }), null],
  ['a new field', (t) => ({ ...t, labels: { a: 'b' }, endpoint: { spec: { ports: [{ n: 1 }] } } }), null],
  ['an unknown task state', (t) => ({ ...t, status: { ...t.status, state: 'bogus' } }), 'INVALID_ARGUMENT'],
  ['a state moving back', (t) => ({ ...t, status: { ...t.status, state: 'assigned' } }), 'INVALID_ARGUMENT'],
  ['a spec without a container', (t) => ({ ...t, spec: { networks: [] } }), 'INVALID_ARGUMENT'],
  ['a spec of another shape', (t) => ({ ...t, spec: { ...t.spec, networks: 'x' } }), 'INVALID_ARGUMENT'],
  ['a network without an id', (t) => ({ ...t, networks: [{ addresses: [] }] }), 'INVALID_ARGUMENT'],
  ['a negative slot', (t) => ({ ...t, slot: -1 }), 'INVALID_ARGUMENT'],
  ['another id', (t) => ({ ...t, id: 't2' }), 'CORRUPT'],
  ['an id with a space', (t) => ({ ...t, id: 't 1' }), 'INVALID_ARGUMENT'],
  ['a missing status', ({ status: _, ...t }) => t, 'INVALID_ARGUMENT'],
]

describe('applying an update command', () => {
  for (const [what, change, code] of CASES) {
    it(`${code ? 'refuses' : 'takes'} ${what} alike as a delta and whole, on every member`, async () => {
      for (const asDelta of [true, false]) {
        for (const s of await members()) {
          const base = s.view((tx) => tx.get('tasks', 't1'))!
          const r = s.apply(command(base, change(base), asDelta), s.version + 1)
          if (code === null) {
            expect(r).toMatchObject({ ok: true })
            const now = s.view((tx) => tx.get('tasks', 't1'))!
            expect(JSON.stringify({ ...now, meta: 0 })).toBe(JSON.stringify({ ...change(base), meta: 0 }))
            if (asDelta) expect(now.spec).toBe(base.spec)
            expect(deepFrozen(now)).toBe(true)
          } else {
            expect(r).toMatchObject({ ok: false, code })
            expect(s.view((tx) => tx.get('tasks', 't1'))).toBe(base)
          }
        }
      }
    })
  }
})
