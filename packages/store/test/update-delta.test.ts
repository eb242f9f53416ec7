import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ClusterStore, type Proposer, type Task } from '../src/index.js'
import { delta, undelta } from '../src/internal/delta.js'
import { task } from './fixtures.js'

/** A replicated store and a second member, recording every command's size. */
function replicated() {
  let index = 0
  const sizes: number[] = []
  const stores: ClusterStore[] = []
  const proposer: Proposer = async (cmd) => {
    await Promise.resolve()
    sizes.push(cmd.length)
    index++
    for (const s of stores) s.apply(cmd, index)
    return { index }
  }
  stores.push(new ClusterStore({ proposer }), new ClusterStore())
  return { leader: stores[0]!, follower: stores[1]!, sizes, next: () => index + 1 }
}

const running = (t: Task): Task => ({
  ...t,
  status: { timestamp: 2, state: 'running', message: 'started' },
})

describe('updates are sent as what changed', () => {
  it('sends a status change of a task as its status, and every member rebuilds the whole task', async () => {
    const { leader, follower, sizes } = replicated()
    const big = {
      ...task('t1', 's1', 1),
      spec: {
        containerSpec: { image: 'nginx:alpine', env: Array.from({ length: 50 }, (_, i) => `VAR${i}=x`) },
      },
    }
    await leader.update((tx) => tx.create('tasks', big))
    let written: Task | undefined
    await leader.update((tx) => {
      written = tx.update('tasks', running(tx.get('tasks', 't1')!))
    })
    // The create carried the spec; the update does not.
    expect(sizes[1]!).toBeLessThan(sizes[0]! / 4)
    for (const s of [leader, follower]) {
      const t = s.view((tx) => tx.get('tasks', 't1'))!
      expect(JSON.stringify({ ...t, meta: undefined })).toBe(JSON.stringify({ ...written, meta: undefined }))
      expect(t.status.state).toBe('running')
      expect(Object.isFrozen(t)).toBe(true)
    }
  })

  it('refuses a delta whose base changed before it applied, as a whole update would be', async () => {
    const { leader, follower } = replicated()
    await leader.update((tx) => tx.create('tasks', task('t1', 's1', 1)))
    // Two writers read the same version; the second's delta reaches a task the first has changed.
    const stale = leader.view((tx) => tx.get('tasks', 't1'))!
    await leader.update((tx) => tx.update('tasks', { ...stale, desiredState: 'shutdown' }))
    await expect(
      leader.update((tx) => tx.update('tasks', running(stale)), { attempts: 1 }),
    ).rejects.toMatchObject({
      code: 'SEQUENCE',
    })
    for (const s of [leader, follower]) {
      const t = s.view((tx) => tx.get('tasks', 't1'))!
      expect(t.desiredState).toBe('shutdown')
      expect(t.status.state).toBe('new')
    }
  })

  it('keeps removed and added fields, and the order of the fields', () => {
    const base = { id: 'a', meta: { version: 3 }, spec: { x: 1 }, labels: { l: '1' }, status: 's' }
    const next = { id: 'a', meta: { version: 4 }, spec: base.spec, status: 't', endpoint: { p: 1 } }
    const d = delta(base, next)!
    expect(Object.keys(d.changed)).toEqual(['meta', 'status', 'endpoint'])
    const out = undelta(base, JSON.parse(JSON.stringify(d.changed)), d.kept)
    expect(JSON.stringify(out)).toBe(JSON.stringify(next))
    expect(out.spec).toBe(base.spec)
    // Reordered fields are sent whole.
    expect(
      delta(base, { spec: base.spec, id: 'a', meta: {}, labels: base.labels, status: 's' }),
    ).toBeUndefined()
    // Nothing kept: sent whole.
    expect(delta(base, { id: 'b' })).toBeUndefined()
  })

  it('rebuilds exactly what was written, for any update of any object (property)', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.dictionary(fc.string(), fc.string()),
    )
    const obj = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'meta'), value)
    fc.assert(
      fc.property(
        obj,
        fc.array(fc.tuple(fc.constantFrom('keep', 'change', 'drop'), value)),
        fc.dictionary(fc.constantFrom('x', 'y', 'a'), value),
        (base, ops, added) => {
          const next: Record<string, unknown> = {}
          Object.keys(base).forEach((k, i) => {
            const [op, v] = ops[i] ?? ['keep', null]
            if (op === 'keep') next[k] = base[k]
            else if (op === 'change') next[k] = v
          })
          Object.assign(next, added)
          const d = delta(base, next)
          if (d === undefined) return
          const out = undelta(base, JSON.parse(JSON.stringify(d.changed)), d.kept)
          expect(JSON.stringify(out)).toBe(JSON.stringify(next))
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('commands', () => {
  it('own their bytes (raft keeps them; a view would keep the packer buffer it points into)', async () => {
    const seen: Uint8Array[] = []
    let index = 0
    let store: ClusterStore | undefined
    const proposer: Proposer = async (cmd) => {
      seen.push(cmd)
      store!.apply(cmd, ++index)
      return { index }
    }
    store = new ClusterStore({ proposer })
    for (let i = 1; i <= 3; i++) await store.update((tx) => tx.create('tasks', task(`t${i}`, 's1', i)))
    for (const cmd of seen) expect(cmd.buffer.byteLength).toBe(cmd.length)
  })
})
