import { stateMachineCompliance } from '@swarmkit/raft/testing'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'
import { ClusterStore, isStoreError, type StoreEvent, type Watch } from '../src/index.js'
import { defaultSlicing, runSliced, type Slicing } from '../src/internal/slices.js'
import { OBJECTS_PER_STEP } from '../src/internal/snapshot-format.js'
import { TABLES } from '../src/types.js'
import { network, node, secret, service, task } from './fixtures.js'

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' })

// The store slices through the shared `defaultSlicing`; tests swap its clock and pause to count and to act
// between slices, and put them back.
const saved: Slicing = { ...defaultSlicing }
afterEach(() => Object.assign(defaultSlicing, saved))

/** Slices by step count alone (a clock that stands still), pausing through `pause`. */
function countSlices(maxSteps: number, pause: () => Promise<void> | void = () => {}): { pauses: number } {
  const seen = { pauses: 0 }
  Object.assign(defaultSlicing, {
    now: () => 0,
    maxSteps,
    pause: async () => {
      seen.pauses++
      await pause()
    },
  })
  return seen
}

/** A store that replicates through a log of its own: each command applies at the next index. */
function replicated(): ClusterStore {
  let index = 0
  const store: ClusterStore = new ClusterStore({
    proposer: async (command) => store.apply(command, ++index),
    clock: () => 1_700_000_000_000 + index,
  })
  return store
}

async function fill(store: ClusterStore, tasks: number, nodes = 20): Promise<void> {
  await store.update((tx) => {
    tx.create('networks', network('net1', 'appnet'))
    tx.create('secrets', {
      ...secret('sec1', 'db'),
      spec: { ...secret('sec1', 'db').spec, data: new Uint8Array([0, 1, 255]) },
    })
    tx.create('services', service('svc1', 'web', { networks: ['net1'], secrets: ['sec1'] }))
  })
  for (let i = 0; i < nodes; i += 100) {
    await store.update((tx) => {
      for (let j = i; j < Math.min(nodes, i + 100); j++) tx.create('nodes', node(`node${j}`))
    })
  }
  for (let i = 0; i < tasks; i += 200) {
    await store.update((tx) => {
      for (let j = i; j < Math.min(tasks, i + 200); j++)
        tx.create('tasks', task(`t${j}`, 'svc1', j + 1, `node${j % nodes}`, { networks: ['net1'] }))
    })
  }
}

async function take(w: Watch, n: number): Promise<StoreEvent[]> {
  const out: StoreEvent[] = []
  while (out.length < n) {
    const r = await w.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isStoreError(err, code as never), String(err)).toBe(true)
}

describe('ClusterStore.snapshotAsync', () => {
  it('writes format 1 as the whole-state encode did, byte for byte', async () => {
    const store = replicated()
    await fill(store, 700)
    const bytes = await store.snapshotAsync()
    // The whole-state encode of format 1, as the store wrote it before snapshots were sliced.
    const tables = TABLES.map((t) => store.view((tx) => tx.find(t, { all: true })))
    const proposers = (packr.unpack(bytes) as unknown[])[4]
    const reference = packr.pack(['swarmkit-store', 1, store.version, tables, proposers])
    expect(Buffer.from(bytes).equals(Buffer.from(reference))).toBe(true)
    expect(Buffer.from(store.snapshot()).equals(Buffer.from(bytes))).toBe(true)
  })

  it('holds the state as of the call while commits go on between its slices (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 400 }),
        fc.array(fc.tuple(fc.constantFrom('update', 'delete', 'create', 'node'), fc.nat()), {
          minLength: 1,
          maxLength: 30,
        }),
        async (tasks, ops) => {
          const store = replicated()
          await fill(store, tasks, 5)
          let created = 0
          const mutate = async (op: string, n: number) => {
            const ids = store.view((tx) => tx.find('tasks', { all: true }).map((t) => t.id))
            await store.update((tx) => {
              const id = ids.length ? ids[n % ids.length]! : undefined
              if (op === 'update' && id) {
                const t = tx.get('tasks', id)!
                tx.update('tasks', { ...t, status: { ...t.status, state: 'running', message: `m${n}` } })
              } else if (op === 'delete' && id) tx.delete('tasks', id)
              else if (op === 'node') tx.create('nodes', node(`extra${created++}`))
              else tx.create('tasks', task(`new${created++}`, 'svc1', 1000 + n))
            })
          }
          let next = 0
          countSlices(1, async () => {
            if (next < ops.length) {
              const [op, n] = ops[next++]!
              await mutate(op, n)
            }
          })
          const expected = store.snapshot()
          const version = store.version
          const pending = store.snapshotAsync()
          const got = await pending
          expect(store.version).toBeGreaterThan(version)
          expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true)
        },
      ),
      { seed: 18_07, numRuns: 25 },
    )
  })

  it('lets the event loop run at least once per 16 steps of 128 objects', async () => {
    const store = replicated()
    await fill(store, 20_000, 100)
    const seen = countSlices(16)
    await store.snapshotAsync()
    const objects = 20_000 + 100 + 3
    expect(seen.pauses).toBeGreaterThanOrEqual(Math.floor(objects / (OBJECTS_PER_STEP * 16)))
  })

  it('lets other callbacks run while it encodes (the real event loop)', async () => {
    const store = replicated()
    await fill(store, 20_000, 100)
    let turns = 0
    let on = true
    const spin = () => {
      turns++
      if (on) setImmediate(spin)
    }
    setImmediate(spin)
    const startTurns = turns
    await store.snapshotAsync()
    on = false
    // At most 16 steps of 128 objects between two turns, whatever the clock says.
    expect(turns - startTurns).toBeGreaterThanOrEqual(Math.floor(20_000 / (OBJECTS_PER_STEP * 16)))
  })

  it('rejects with ABORTED when its signal aborts', async () => {
    const store = replicated()
    await fill(store, 1_000)
    const ac = new AbortController()
    countSlices(1, () => ac.abort())
    await rejectsWith(store.snapshotAsync({ signal: ac.signal }), 'ABORTED')
  })
})

describe('runSliced', () => {
  it('never runs more than maxSteps steps between two pauses', async () => {
    let run = 0
    let most = 0
    function* steps(): Generator<void, number> {
      for (let i = 0; i < 1000; i++) {
        run++
        yield
      }
      return 7
    }
    const r = await runSliced(steps(), {
      now: () => 0,
      sliceMs: 1e9,
      maxSteps: 16,
      pause: async () => {
        most = Math.max(most, run)
        run = 0
      },
    })
    expect(r).toBe(7)
    expect(Math.max(most, run)).toBe(16)
  })
})

describe('ClusterStore.restoreAsync', () => {
  it('builds the tables aside, then installs them and tells the watches the differences at once', async () => {
    const source = replicated()
    await fill(source, 1_000, 30)
    // Source moves on: some tasks updated, one deleted.
    await source.update((tx) => {
      for (const id of ['t1', 't2', 't3']) {
        const t = tx.get('tasks', id)!
        tx.update('tasks', { ...t, desiredState: 'shutdown' })
      }
      tx.delete('tasks', 't4')
    })
    const snap = await source.snapshotAsync()

    // Two targets with the same older state plus an object the snapshot does not have.
    const make = async () => {
      const s = replicated()
      await fill(s, 1_000, 30)
      await s.update((tx) => tx.create('nodes', node('gone')))
      return s
    }
    const sync = await make()
    const target = await make()
    const wSync = sync.watch()
    const w = target.watch()
    const oldVersion = target.version
    let checks = 0
    countSlices(2, () => {
      // Between slices, readers see the old state and nothing has been delivered.
      expect(target.version).toBe(oldVersion)
      expect(target.view((tx) => tx.get('nodes', 'gone'))).toBeDefined()
      expect(w.pending).toBe(0)
      checks++
    })
    await target.restoreAsync(snap)
    expect(checks).toBeGreaterThan(5)
    sync.restore(snap)

    expect(Buffer.from(target.snapshot()).equals(Buffer.from(snap))).toBe(true)
    expect(target.version).toBe(source.version)
    expect(target.view((tx) => tx.get('secrets', 'sec1'))!.spec.data).toEqual(new Uint8Array([0, 1, 255]))
    expect(target.view((tx) => tx.find('tasks', { nodeId: 'node3' }).length)).toBe(
      source.view((tx) => tx.find('tasks', { nodeId: 'node3' }).length),
    )
    const expected = await take(wSync, wSync.pending)
    const got = await take(w, w.pending)
    expect(got.length).toBe(expected.length)
    expect(got.map((e) => `${e.action}:${e.table}:${e.object.id}:${e.version}`)).toEqual(
      expected.map((e) => `${e.action}:${e.table}:${e.object.id}:${e.version}`),
    )
    // Every object of the source is new to a store restored from scratch, 3 changed, 1 gone, 1 extra.
    expect(got.filter((e) => e.action === 'update').map((e) => e.object.id)).toEqual(['t1', 't2', 't3'])
    expect(
      got
        .filter((e) => e.action === 'delete')
        .map((e) => e.object.id)
        .sort(),
    ).toEqual(['gone', 't4'])
    // The store goes on from the snapshot's version.
    await target.update((tx) => tx.create('nodes', node('after')))
    expect((await take(w, 1))[0]).toMatchObject({ action: 'create', version: source.version + 1 })
  })

  it('refuses raft applies while it runs, and a local store commits after it', async () => {
    const source = new ClusterStore()
    await fill(source, 600)
    const snap = source.snapshot()

    const follower = replicated()
    let applyError: unknown
    countSlices(1, () => {
      try {
        follower.apply(new Uint8Array(0), 1_000_000)
      } catch (err) {
        applyError = err
      }
    })
    await follower.restoreAsync(snap)
    expect(String(applyError)).toMatch(/restoreAsync is under way/)

    const local = new ClusterStore()
    let write: Promise<unknown> | undefined
    countSlices(1, () => {
      write ??= local.update((tx) => tx.create('nodes', node('late')))
    })
    await local.restoreAsync(snap)
    // The write waited for the restore, and committed on top of it (before it, the restore would have
    // replaced it).
    await write
    expect(local.view((tx) => tx.get('nodes', 'late'))?.meta.version).toBe(source.version + 1)
    expect(local.view((tx) => tx.find('tasks', { all: true }).length)).toBe(600)
  })

  it('rejects a damaged, foreign or newer snapshot, or an abort, and changes nothing', async () => {
    const source = new ClusterStore()
    await fill(source, 300)
    const snap = source.snapshot()
    const target = new ClusterStore()
    await target.update((tx) => tx.create('nodes', node('keep')))
    const unchanged = target.snapshot()

    await rejectsWith(target.restoreAsync(snap.subarray(0, snap.length - 7)), 'CORRUPT')
    await rejectsWith(target.restoreAsync(snap.subarray(0, snap.length >> 1)), 'CORRUPT')
    const trailing = new Uint8Array(snap.length + 1)
    trailing.set(snap)
    await rejectsWith(target.restoreAsync(trailing), 'CORRUPT')
    await rejectsWith(target.restoreAsync(packr.pack(['another-kind', 1, 1, [], {}])), 'CORRUPT')
    await rejectsWith(target.restoreAsync(new Uint8Array([1, 2, 3])), 'CORRUPT')
    const newer = packr.pack(['swarmkit-store', 2, 5, TABLES.map(() => []), {}])
    await rejectsWith(target.restoreAsync(newer), 'UNSUPPORTED')
    expect(() => target.restore(newer)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }))
    const bad = packr.pack([
      'swarmkit-store',
      1,
      5,
      TABLES.map((t) => (t === 'nodes' ? [{ id: 'x' }] : [])),
      {},
    ])
    await rejectsWith(target.restoreAsync(bad), 'CORRUPT')
    const ac = new AbortController()
    countSlices(1, () => ac.abort())
    await rejectsWith(target.restoreAsync(snap, { signal: ac.signal }), 'ABORTED')
    expect(Buffer.from(target.snapshot()).equals(Buffer.from(unchanged))).toBe(true)
    // Still usable.
    Object.assign(defaultSlicing, saved)
    await target.restoreAsync(snap)
    expect(target.view((tx) => tx.find('tasks', { all: true }).length)).toBe(300)
  })
})

stateMachineCompliance('ClusterStore.stateMachine()', {
  create: () => new ClusterStore().stateMachine(),
  commands: async () => {
    const commands: Uint8Array[] = []
    const store: ClusterStore = new ClusterStore({
      proposer: async (command) => {
        commands.push(command)
        return store.apply(command, commands.length)
      },
      clock: () => 1_700_000_000_000,
      random: (n) => new Uint8Array(n).fill(commands.length + 1),
    })
    await store.update((tx) => tx.create('nodes', node('node1')))
    await store.update((tx) => tx.create('networks', network('net1', 'appnet')))
    await store.update((tx) => tx.create('services', service('svc1', 'web', { networks: ['net1'] })))
    await store.update((tx) => tx.create('secrets', secret('sec1', 'db')))
    await store.update((tx) => tx.delete('secrets', 'sec1'))
    return commands
  },
})
