import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { ClusterStore, type Proposer, type Task } from '../src/index.js'
import { type Action, type Command, decodeCommand, encodeCommand, Op } from '../src/internal/codec.js'
import { delta, MAX_DELTA_KEYS, undelta } from '../src/internal/delta.js'
import { task } from './fixtures.js'

/** A replicated store and a second member, recording every command's size. */
function replicated() {
  let index = 0
  const sizes: number[] = []
  const commands: Uint8Array[] = []
  const stores: ClusterStore[] = []
  const proposer: Proposer = async (cmd) => {
    await Promise.resolve()
    sizes.push(cmd.length)
    commands.push(cmd)
    index++
    for (const s of stores) s.apply(cmd, index)
    return { index }
  }
  stores.push(new ClusterStore({ proposer }), new ClusterStore())
  return { leader: stores[0]!, follower: stores[1]!, sizes, commands, next: () => index + 1 }
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

/** undelta as first written (one loop, key by key): the rebuild every member must keep agreeing with. */
function undeltaReference(
  base: Record<string, unknown>,
  changed: Record<string, unknown>,
  kept: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const baseKeys = Object.keys(base)
  for (let i = 0; i < baseKeys.length; i++) {
    const k = baseKeys[i]!
    if (i < MAX_DELTA_KEYS && kept & (1 << i)) out[k] = base[k]
    else if (Object.hasOwn(changed, k)) out[k] = changed[k]
  }
  for (const k in changed) if (!Object.hasOwn(base, k)) out[k] = changed[k]
  return out
}

/** Own keys, values and prototype: what two rebuilt objects must share. */
const shape = (o: Record<string, unknown>) => ({
  keys: Reflect.ownKeys(o),
  values: Reflect.ownKeys(o).map((k) => o[k as string]),
  proto: Object.getPrototypeOf(o),
})

describe('rebuilding an update', () => {
  it('agrees with the first rebuild for any base, mask and fields, also ones no encoder sends (property)', () => {
    const key = fc.constantFrom('a', 'b', 'c', 'meta', 'status', '1', '__proto__')
    const value = fc.constantFrom<unknown>('x', 2, null, undefined, { p: 1 })
    // JSON.parse makes own `__proto__` keys, as a decoder does.
    const obj = fc
      .dictionary(key, value, { maxKeys: 6 })
      .map((o) => JSON.parse(JSON.stringify(o, (_, v) => (v === undefined ? '$u' : v))))
    fc.assert(
      fc.property(obj, obj, fc.integer({ min: 0, max: 2 ** MAX_DELTA_KEYS - 1 }), (base, changed, mask) => {
        for (const kept of [mask, mask & 0b111, 2 ** Object.keys(base).length - 1]) {
          expect(shape(undelta(base, changed, kept))).toEqual(shape(undeltaReference(base, changed, kept)))
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('agrees with the first rebuild for a base of more fields than a mask holds', () => {
    const base = Object.fromEntries(Array.from({ length: MAX_DELTA_KEYS + 3 }, (_, i) => [`k${i}`, i]))
    const changed = Object.fromEntries(Object.keys(base).map((k) => [k, `${k}!`]))
    for (const kept of [0, 1, 2 ** MAX_DELTA_KEYS - 1]) {
      expect(shape(undelta(base, changed, kept))).toEqual(shape(undeltaReference(base, changed, kept)))
    }
  })
})

describe('decoding a delta', () => {
  it('takes a mask of kept fields only as an integer with some bit set below the most fields', () => {
    const packr = new Packr({
      useRecords: false,
      moreTypes: false,
      mapsAsObjects: true,
      int64AsType: 'number',
    })
    const decode = (kept: unknown) => () =>
      decodeCommand(packr.pack([1, 'p', 1, 5, [[Op.Update, 2, 't1', 3, { a: 1 }, kept]]]), 1 << 20)
    for (const kept of [1, 5, 2 ** MAX_DELTA_KEYS - 1]) expect(decode(kept)).not.toThrow()
    for (const kept of [
      0,
      -0,
      -1,
      1.5,
      2 ** MAX_DELTA_KEYS,
      2 ** 31,
      2 ** 32 + 1,
      Number.NaN,
      '1',
      null,
      true,
    ])
      expect(decode(kept)).toThrow(expect.objectContaining({ code: 'CORRUPT' }))
  })
})

describe('an update command', () => {
  it('leaves out the meta (every member sets it) and applies as the form that carried it', async () => {
    const { leader, follower, sizes, commands, next } = replicated()
    await leader.update((tx) => tx.create('tasks', task('t1', 's1', 1)))
    const base = leader.view((tx) => tx.get('tasks', 't1'))!
    const update = running(base)
    await leader.update((tx) => tx.update('tasks', update))
    const cmd = decodeCommand(commands[1]!, 1 << 20) as Command
    expect(cmd.actions[0]!.object).toEqual({ status: update.status })
    // The form written before: the proposer's meta among the changed fields, applied to a second follower.
    const old = new ClusterStore()
    old.apply(commands[0]!, 1)
    const withMeta = { meta: { version: 2, createdAt: 5, updatedAt: 6 }, status: update.status }
    const oldDelta = delta(base as never, { ...update, meta: withMeta.meta })!
    const keptMask = oldDelta.kept
    expect(Object.keys(oldDelta.changed).sort()).toEqual(['meta', 'status'])
    const packr = new Packr({
      useRecords: false,
      moreTypes: false,
      mapsAsObjects: true,
      int64AsType: 'number',
    })
    const oldForm = packr.pack([
      1,
      'old',
      1,
      cmd.time,
      [[Op.Update, 2, 't1', base.meta.version, withMeta, keptMask]],
    ])
    expect(old.apply(new Uint8Array(oldForm), 2)).toMatchObject({ ok: true })
    const got = [leader, follower, old].map((s) => JSON.stringify(s.view((tx) => tx.get('tasks', 't1'))))
    expect(got[1]).toBe(got[0])
    expect(got[2]).toBe(got[0])
    expect(sizes[1]!).toBeLessThan(oldForm.length)
    expect(next()).toBe(3)
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

describe('objects written together', () => {
  it('are sent as deltas of each other, and decoded equal to what was written', async () => {
    const { leader, follower, sizes } = replicated()
    const spec = {
      containerSpec: { image: 'nginx:alpine', env: Array.from({ length: 50 }, (_, i) => `VAR${i}=x`) },
    }
    await leader.update((tx) => tx.create('tasks', { ...task('t0', 's1', 0), spec }))
    const written: Task[] = []
    await leader.update((tx) => {
      for (let i = 1; i <= 50; i++) written.push(tx.create('tasks', { ...task(`t${i}`, 's1', i), spec }))
    })
    // 50 tasks in one command: the spec once, not 50 times.
    expect(sizes[1]!).toBeLessThan(sizes[0]! * 5)
    for (const s of [leader, follower]) {
      const got = s.view((tx) => written.map((w) => tx.get('tasks', w.id)!))
      got.forEach((t, i) => {
        expect(JSON.stringify({ ...t, meta: undefined })).toBe(
          JSON.stringify({ ...written[i], meta: undefined }),
        )
      })
      expect(got[7]!.spec).toBe(got[3]!.spec)
    }
  })

  it('round-trip through a command exactly, whatever they hold (property)', () => {
    // Few distinct values and keys in one order, so that objects are often alike (sent as deltas of each
    // other, in chains); sometimes in another order, or with undefined values.
    const value = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('x', 'y', 1, null, undefined, { p: 'q' }, { q: 'p' }, [1]) },
      { weight: 1, arbitrary: fc.string() },
      {
        weight: 1,
        arbitrary: fc.dictionary(fc.constantFrom('p', 'q', 'r'), fc.oneof(fc.string(), fc.integer())),
      },
    )
    const ordered = fc.record({ id: value, a: value, b: value, c: value, d: value }, { requiredKeys: [] })
    const obj = fc.oneof(
      { weight: 4, arbitrary: ordered },
      { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'id'), value) },
    )
    const action = fc.tuple(
      fc.constantFrom(Op.Create, Op.Update, Op.Delete),
      fc.constantFrom('tasks', 'nodes'),
      obj,
    )
    fc.assert(
      fc.property(fc.array(action, { maxLength: 12 }), (list) => {
        const actions: Action[] = list.map(([op, table, object], i) => ({
          op,
          table: table as 'tasks' | 'nodes',
          id: `x${i}`,
          baseVersion: op === Op.Create ? 0 : 3,
          object: op === Op.Delete ? null : object,
        }))
        const cmd = decodeCommand(
          encodeCommand({ kind: 'tx', proposer: 'p', seq: 1, time: 1, actions }),
          1 << 20,
        ) as Command
        expect(cmd.actions.map((a) => JSON.stringify([a.op, a.table, a.id, a.object]))).toEqual(
          actions.map((a) => JSON.stringify([a.op, a.table, a.id, a.object])),
        )
        // Keys with undefined values are kept as keys.
        cmd.actions.forEach((a, i) => {
          if (a.object) expect(Object.keys(a.object)).toEqual(Object.keys(actions[i]!.object!))
        })
      }),
      { numRuns: 500 },
    )
  })
})
