import { describe, expect, it } from 'vitest'
import {
  ClusterStore,
  clusterStore,
  isStoreError,
  MemoryStore,
  type MemoryStoreOptions,
  memoryStore,
  redactSecret,
  type StoreEvent,
  type Watch,
} from '../src/index.js'
import { config, network, node, secret, service, task } from './fixtures.js'

const clock = () => {
  let t = 1_700_000_000_000
  return () => ++t
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p
  } catch (err) {
    expect(isStoreError(err), String(err)).toBe(true)
    expect((err as { code: string }).code).toBe(code)
    if (message) expect((err as Error).message).toMatch(message)
    return
  }
  throw new Error(`expected a StoreError ${code}`)
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

describe('ClusterStore', () => {
  it('creates, reads and versions objects', async () => {
    const s = new ClusterStore({ clock: clock() })
    await s.update((tx) => {
      tx.create('networks', network('n1', 'appnet'))
      tx.create('services', service('s1', 'web', { networks: ['n1'] }))
    })
    expect(s.version).toBe(1)
    const svc = s.view((tx) => tx.get('services', 's1'))!
    expect(svc.meta.version).toBe(1)
    expect(svc.meta.createdAt).toBe(svc.meta.updatedAt)
    expect(svc.specVersion).toEqual({ index: 1 })
    expect(Object.isFrozen(svc) && Object.isFrozen(svc.spec.taskTemplate)).toBe(true)
    await s.update((tx) => {
      const cur = tx.get('services', 's1')!
      tx.update('services', { ...cur, spec: { ...cur.spec, labels: { a: 'b' } } })
    })
    const after = s.view((tx) => tx.get('services', 's1'))!
    expect(after.meta.version).toBe(2)
    expect(after.meta.createdAt).toBe(svc.meta.createdAt)
    expect(after.meta.updatedAt).toBeGreaterThan(svc.meta.updatedAt)
    expect(after.specVersion).toEqual({ index: 1 })
  })

  it('rejects a stale version with "update out of sequence" and changes nothing', async () => {
    const s = new ClusterStore()
    await s.update((tx) => tx.create('secrets', secret('x1', 'db')))
    const stale = s.view((tx) => tx.get('secrets', 'x1'))!
    await s.update((tx) => tx.update('secrets', { ...stale, spec: { ...stale.spec, labels: { v: '2' } } }))
    await rejectsWith(
      s.update((tx) => {
        tx.create('configs', config('c1', 'cfg'))
        tx.update('secrets', { ...stale, spec: { ...stale.spec, labels: { v: '3' } } })
      }),
      'SEQUENCE',
      /^update out of sequence$/,
    )
    expect(s.view((tx) => [tx.get('configs', 'c1'), tx.get('secrets', 'x1')!.spec.labels])).toEqual([
      undefined,
      { v: '2' },
    ])
  })

  it('keeps names unique where swarm does, case-insensitively', async () => {
    const s = new ClusterStore()
    await s.update((tx) => tx.create('services', service('s1', 'web')))
    await rejectsWith(
      s.update((tx) => tx.create('services', service('s2', 'WEB'))),
      'NAME_CONFLICT',
    )
    // Renaming in the same transaction frees the name.
    await s.update((tx) => {
      const cur = tx.get('services', 's1')!
      tx.update('services', { ...cur, spec: { ...cur.spec, name: 'old' } })
      tx.create('services', service('s2', 'web'))
    })
    expect(s.view((tx) => tx.lookup('services', 'web').id)).toBe('s2')
    // Node names are not unique.
    await s.update((tx) => {
      tx.create('nodes', node('n1', 'host'))
      tx.create('nodes', node('n2', 'host'))
    })
    expect(s.view((tx) => tx.find('nodes', { name: 'HOST' })).length).toBe(2)
    await rejectsWith(
      s.update((tx) => tx.create('services', service('s1', 'again'))),
      'EXISTS',
    )
  })

  it('lets a secret go that only a live task still names (swarmkit checks services only)', async () => {
    const s = new ClusterStore()
    await s.update((tx) => {
      tx.create('secrets', secret('x1', 'db'))
      tx.create('tasks', task('t1', 's1', 1, 'n1', { secrets: ['x1'] }))
    })
    await s.update((tx) => tx.delete('secrets', 'x1'))
    expect(s.view((tx) => tx.get('secrets', 'x1'))).toBeUndefined()
  })

  it('blocks removal of networks, secrets and configs in use', async () => {
    const s = new ClusterStore()
    await s.update((tx) => {
      tx.create('networks', network('n1', 'appnet'))
      tx.create('secrets', secret('x1', 'db'))
      tx.create('configs', config('c1', 'cfg'))
      tx.create('services', service('s1', 'web', { networks: ['n1'], secrets: ['x1'], configs: ['c1'] }))
    })
    await rejectsWith(
      s.update((tx) => tx.delete('networks', 'n1')),
      'IN_USE',
      /network appnet is in use by service web/,
    )
    await rejectsWith(
      s.update((tx) => tx.delete('secrets', 'x1')),
      'IN_USE',
    )
    await rejectsWith(
      s.update((tx) => tx.delete('configs', 'c1')),
      'IN_USE',
    )
    // A live task holds the network after its service is gone; a finished one does not.
    await s.update((tx) => {
      tx.create('tasks', task('t1', 's1', 1, 'n1', { networks: ['n1'] }))
      tx.delete('services', 's1')
    })
    await rejectsWith(
      s.update((tx) => tx.delete('networks', 'n1')),
      'IN_USE',
      /in use by task t1/,
    )
    await s.update((tx) => {
      const t = tx.get('tasks', 't1')!
      tx.update('tasks', { ...t, desiredState: 'shutdown', status: { ...t.status, state: 'shutdown' } })
    })
    await s.update((tx) => {
      tx.delete('networks', 'n1')
      tx.delete('secrets', 'x1')
      tx.delete('configs', 'c1')
    })
    expect(s.view((tx) => tx.find('networks').length)).toBe(0)
  })

  it('holds one cluster object, named default', async () => {
    const s = new ClusterStore()
    const cluster = (id: string, name: string) => ({
      id,
      spec: {
        name,
        labels: {},
        orchestration: { taskHistoryRetentionLimit: 5 },
        raft: {
          snapshotInterval: 10000,
          keepOldSnapshots: 0,
          logEntriesForSlowFollowers: 500,
          electionTick: 10,
          heartbeatTick: 1,
        },
        dispatcher: { heartbeatPeriod: 5e9 },
        caConfig: { nodeCertExpiry: 7776000000000000 },
        taskDefaults: {},
        encryptionConfig: { autoLockManagers: false },
      },
      rootCA: { caKey: '', caCert: '', caCertHash: '', joinTokens: { worker: 'w', manager: 'm' } },
      unlockKeys: [],
      defaultAddressPool: ['10.0.0.0/8'],
      subnetSize: 24,
      vxlanUdpPort: 4789,
    })
    await s.update((tx) => tx.create('clusters', cluster('c1', 'default')))
    await rejectsWith(
      s.update((tx) => tx.create('clusters', cluster('c2', 'default'))),
      'NAME_CONFLICT',
    )
    await rejectsWith(
      s.update((tx) => tx.create('clusters', cluster('c3', 'other'))),
      'INVALID_ARGUMENT',
      /default/,
    )
    expect(s.view((tx) => tx.lookup('clusters', 'default').id)).toBe('c1')
  })

  it('refuses services that reference missing objects', async () => {
    const s = new ClusterStore()
    await rejectsWith(
      s.update((tx) => tx.create('services', service('s1', 'web', { secrets: ['nope'] }))),
      'INVALID_ARGUMENT',
      /secret nope, which does not exist/,
    )
  })

  it('only moves task states forward', async () => {
    const s = new ClusterStore()
    await s.update((tx) =>
      tx.create('tasks', { ...task('t1', 's1', 1), status: { timestamp: 0, state: 'running', message: '' } }),
    )
    await rejectsWith(
      s.update((tx) => {
        const t = tx.get('tasks', 't1')!
        tx.update('tasks', { ...t, status: { ...t.status, state: 'pending' } })
      }),
      'INVALID_ARGUMENT',
      /cannot move back/,
    )
  })

  it('finds through every index', async () => {
    const s = new ClusterStore()
    await s.update((tx) => {
      tx.create('nodes', node('node1', 'h1', 'manager'))
      tx.create('nodes', node('node2', 'h2'))
      tx.create('networks', network('net1', 'appnet'))
      tx.create('secrets', secret('sec1', 'db'))
      tx.create('services', service('svc1', 'web', { networks: ['net1'], secrets: ['sec1'] }))
      tx.create('tasks', task('task1', 'svc1', 1, 'node1', { networks: ['net1'], secrets: ['sec1'] }))
      tx.create('tasks', task('task2', 'svc1', 2, 'node2'))
      tx.create('tasks', { ...task('task3', 'svc1', 2, 'node2'), desiredState: 'shutdown' })
    })
    const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort()
    s.view((tx) => {
      expect(ids(tx.find('tasks', { serviceId: 'svc1' }))).toEqual(['task1', 'task2', 'task3'])
      expect(ids(tx.find('tasks', { nodeId: 'node2' }))).toEqual(['task2', 'task3'])
      expect(ids(tx.find('tasks', { slot: { serviceId: 'svc1', slot: 2 } }))).toEqual(['task2', 'task3'])
      expect(ids(tx.find('tasks', { desiredState: 'shutdown' }))).toEqual(['task3'])
      expect(ids(tx.find('tasks', { taskState: 'new' }))).toEqual(['task1', 'task2', 'task3'])
      expect(ids(tx.find('nodes', { role: 'manager' }))).toEqual(['node1'])
      expect(ids(tx.find('nodes', { availability: 'active' }))).toEqual(['node1', 'node2'])
      expect(ids(tx.find('services', { referencedNetworkId: 'net1' }))).toEqual(['svc1'])
      expect(ids(tx.find('tasks', { referencedSecretId: 'sec1' }))).toEqual(['task1'])
      expect(ids(tx.find('tasks', { idPrefix: 'task' }))).toEqual(['task1', 'task2', 'task3'])
      expect(ids(tx.find('tasks', { idPrefix: 't' }))).toEqual(['task1', 'task2', 'task3'])
      expect(ids(tx.find('services', { namePrefix: 'W' }))).toEqual(['svc1'])
      expect(tx.lookup('services', 'svc').id).toBe('svc1')
      expect(tx.lookup('nodes', 'h2').id).toBe('node2')
      expect(() => tx.lookup('tasks', 'task')).toThrow(/ambiguous/)
      expect(() => tx.lookup('services', 'nope')).toThrow(/service nope not found/)
      expect(() => tx.find('services', { nodeId: 'x' })).toThrow(TypeError)
    })
  })

  it('answers index lookups like a scan across long runs of unread writes (indexes dropped and rebuilt)', async () => {
    // Indexes are built on first lookup and dropped after more unread writes than the table holds (at least
    // 1024): runs of 1..3000 writes between lookups cross that bound both ways.
    let seed = 7
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const s = new ClusterStore()
    const states = ['new', 'pending', 'assigned', 'running', 'complete'] as const
    const live = new Map<string, number>()
    let next = 0
    const check = () =>
      s.view((tx) => {
        const all = tx.find('tasks')
        const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort()
        const svc = `svc${rand(3)}`
        const nodeId = `node${rand(4)}`
        const state = states[rand(states.length)]!
        expect(ids(tx.find('tasks', { serviceId: svc }))).toEqual(ids(all.filter((t) => t.serviceId === svc)))
        expect(ids(tx.find('tasks', { nodeId }))).toEqual(ids(all.filter((t) => t.nodeId === nodeId)))
        expect(ids(tx.find('tasks', { taskState: state }))).toEqual(
          ids(all.filter((t) => t.status.state === state)),
        )
        expect(ids(tx.find('tasks', { desiredState: 'shutdown' }))).toEqual(
          ids(all.filter((t) => t.desiredState === 'shutdown')),
        )
        expect(ids(tx.find('tasks', { idPrefix: 'task1' }))).toEqual(
          ids(all.filter((t) => t.id.startsWith('task1'))),
        )
      })
    for (let round = 0; round < 12; round++) {
      const writes = [1, 10, 1000, 1100, 3000][rand(5)]!
      await s.update((tx) => {
        for (let i = 0; i < writes; i++) {
          const pick = rand(10)
          if (pick < 5 || live.size < 10) {
            const id = `task${next++}`
            tx.create('tasks', task(id, `svc${rand(3)}`, next, rand(2) ? `node${rand(4)}` : ''))
            live.set(id, 0)
          } else {
            const id = [...live.keys()][rand(Math.min(live.size, 50))]!
            const cur = tx.get('tasks', id)!
            if (pick < 7) {
              tx.delete('tasks', id)
              live.delete(id)
            } else {
              const at = Math.min((live.get(id) ?? 0) + 1, states.length - 1)
              live.set(id, at)
              tx.update('tasks', {
                ...cur,
                nodeId: `node${rand(4)}`,
                desiredState: rand(4) ? 'running' : 'shutdown',
                status: { ...cur.status, state: states[at]! },
              })
            }
          }
        }
      })
      if (rand(3) > 0) check()
    }
    check()
  })

  it('sets meta on write to the version the transaction commits at, and stores what it returned', async () => {
    let now = 1000
    const s = new ClusterStore({ clock: () => now })
    let created: unknown
    await s.update((tx) => {
      const t = tx.create('tasks', task('t1', 'svc1', 1))
      expect(t.meta).toEqual({ version: 1, createdAt: 1000, updatedAt: 1000 })
      created = t
    })
    const stored = s.view((tx) => tx.get('tasks', 't1'))!
    expect(stored).toBe(created)
    now = 2000
    await s.update((tx) => {
      const before = tx.get('tasks', 't1')!
      const after = tx.update('tasks', { ...before, desiredState: 'shutdown' })
      expect(after.meta).toEqual({ version: 2, createdAt: 1000, updatedAt: 2000 })
      // Once written, the object is at the new version: an update from the copy read before is out of sequence.
      expect(() => tx.update('tasks', { ...before, slot: 3 })).toThrow(/out of sequence/)
      tx.update('tasks', { ...after, slot: 4 })
    })
    expect(s.view((tx) => tx.get('tasks', 't1'))).toMatchObject({
      slot: 4,
      desiredState: 'shutdown',
      meta: { version: 2, createdAt: 1000, updatedAt: 2000 },
    })
  })

  it('lets a transaction read its own writes, and rolls all of it back on throw', async () => {
    const s = new ClusterStore()
    await s.update((tx) => tx.create('services', service('s1', 'web')))
    await expect(
      s.update((tx) => {
        tx.create('tasks', task('t1', 's1', 1))
        expect(tx.find('tasks', { serviceId: 's1' }).map((t) => t.id)).toEqual(['t1'])
        tx.delete('services', 's1')
        expect(tx.get('services', 's1')).toBeUndefined()
        expect(tx.find('services')).toEqual([])
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(s.version).toBe(1)
    expect(s.view((tx) => [tx.find('tasks').length, tx.find('services').length])).toEqual([0, 1])
  })

  it('copies what it stores and rejects what it cannot store', async () => {
    const s = new ClusterStore()
    const x = secret('x1', 'db')
    await s.update((tx) => tx.create('secrets', x))
    x.spec.data[0] = 0
    expect(s.view((tx) => tx.get('secrets', 'x1'))!.spec.data[0]).toBe('h'.charCodeAt(0))
    await expect(
      s.update((tx) =>
        tx.create('configs', {
          ...config('c1', 'c'),
          spec: { ...config('c1', 'c').spec, labels: new Map() as never },
        }),
      ),
    ).rejects.toThrow(TypeError)
    await rejectsWith(
      s.update((tx) => tx.create('secrets', secret('x2', 'big', 'x'.repeat(500 * 1024 + 1)))),
      'INVALID_ARGUMENT',
      /500 KiB/,
    )
    expect(() => s.update(undefined as never)).toThrow(TypeError)
    await expect(s.update((tx) => tx.find('bogus' as never))).rejects.toThrow(/table/)
  })

  it('hands out deep-frozen objects, and takes a stored object back unchanged as an update', async () => {
    const s = new ClusterStore()
    await s.update((tx) => tx.create('tasks', task('t1', 's1', 1)))
    const t = s.view((tx) => tx.get('tasks', 't1'))!
    expect(Object.isFrozen(t) && Object.isFrozen(t.meta) && Object.isFrozen(t.spec)).toBe(true)
    expect(Object.isFrozen(t.spec.containerSpec) && Object.isFrozen(t.status)).toBe(true)
    await s.update((tx) => tx.update('tasks', t))
    const t2 = s.view((tx) => tx.get('tasks', 't1'))!
    expect(t2.meta.version).toBe(2)
    expect(t.meta.version).toBe(1)
    // Unchanged parts are shared between versions, not copied.
    expect(t2.spec).toBe(t.spec)
  })

  it('redacts secret data', async () => {
    const s = new ClusterStore()
    await s.update((tx) => tx.create('secrets', secret('x1', 'db')))
    const r = redactSecret(s.view((tx) => tx.get('secrets', 'x1'))!)
    expect(r.spec).toEqual({ name: 'db', labels: {} })
    expect(JSON.stringify(r)).not.toContain('data')
  })

  it('commits batches in chunks and rolls back only a failing callback', async () => {
    const s = new ClusterStore({ maxChangesPerCommit: 50 })
    await s.update((tx) => tx.create('services', service('s1', 'web')))
    const r = await s.batch(async (b) => {
      for (let i = 0; i < 120; i++) {
        await b.update((tx) => {
          tx.create('tasks', task(`t${i}`, 's1', i + 1))
        })
      }
      await expect(
        b.update((tx) => {
          tx.create('tasks', task('bad1', 's1', 999))
          tx.create('tasks', task('t3', 's1', 3))
        }),
      ).rejects.toMatchObject({ code: 'EXISTS' })
    })
    expect(r).toMatchObject({ changes: 120, commits: 3, version: 4 })
    expect(r.errors.length).toBe(1)
    expect(s.view((tx) => [tx.find('tasks').length, tx.get('tasks', 'bad1')])).toEqual([120, undefined])
  })

  it('rolls back a failing batch callback in place: earlier changes commit as first made, in order', async () => {
    const s = new ClusterStore({ maxChangesPerCommit: 100 })
    await s.update((tx) => tx.create('services', service('s1', 'web')))
    const w = s.watch({ table: 'tasks' })
    await s.batch(async (b) => {
      await b.update((tx) => {
        tx.create('tasks', task('a', 's1', 1))
        tx.create('tasks', task('b', 's1', 2))
        tx.create('tasks', task('gone', 's1', 3))
        tx.delete('tasks', 'gone')
      })
      await expect(
        b.update((tx) => {
          tx.create('tasks', task('c', 's1', 4))
          const a = tx.get('tasks', 'a')!
          tx.update('tasks', { ...a, desiredState: 'shutdown' })
          tx.delete('tasks', 'b')
          tx.create('tasks', task('gone', 's1', 5))
          throw new Error('undo')
        }),
      ).rejects.toThrow('undo')
      await b.update((tx) => tx.create('tasks', task('d', 's1', 6)))
    })
    const events: StoreEvent[] = []
    for (let e = w.poll(); e; e = w.poll()) events.push(e)
    expect(events.map((e) => [e.action, e.object.id])).toEqual([
      ['create', 'a'],
      ['create', 'b'],
      ['create', 'd'],
    ])
    expect(events[0]!.object).toMatchObject({ desiredState: 'running', slot: 1 })
    expect(
      s.view((tx) =>
        tx
          .find('tasks')
          .map((t) => t.id)
          .sort(),
      ),
    ).toEqual(['a', 'b', 'd'])
  })

  it('serializes writers behind an open batch commit', async () => {
    const s = new ClusterStore()
    const order: string[] = []
    let u: Promise<void> | undefined
    const b = s.batch(async (batch) => {
      await batch.update((tx) => {
        tx.create('secrets', secret('a', 'a'))
        order.push('batch1')
      })
      u = s.update((tx) => {
        order.push('update')
        tx.create('secrets', secret('c', 'c'))
      })
      await new Promise((r) => setImmediate(r))
      await batch.update((tx) => {
        tx.create('secrets', secret('b', 'b'))
        order.push('batch2')
      })
    })
    await b
    await u
    expect(order).toEqual(['batch1', 'batch2', 'update'])
    expect(s.version).toBe(2)
  })
})

describe('MemoryStore (the deprecated name)', () => {
  it('is the same class as ClusterStore, so code written against it keeps working', async () => {
    const options: MemoryStoreOptions = { clock: clock() }
    const store: MemoryStore = new MemoryStore(options)
    expect(MemoryStore).toBe(ClusterStore)
    expect(store).toBeInstanceOf(ClusterStore)
    expect(memoryStore()).toBeInstanceOf(ClusterStore)
    expect(clusterStore()).toBeInstanceOf(MemoryStore)
    await store.update((tx) => tx.create('networks', network('n1', 'appnet')))
    expect(store.view((tx) => tx.lookup('networks', 'appnet')).id).toBe('n1')
  })
})

describe('waitForVersion', () => {
  it('resolves once the store reaches a version, and rejects on abort and close', async () => {
    const s = new ClusterStore()
    await s.waitForVersion(0)
    const order: string[] = []
    const at2 = s.waitForVersion(2).then(() => order.push(`2@${s.version}`))
    await s.update((tx) => tx.create('configs', config('c1', 'c1')))
    await s.update((tx) => tx.create('configs', config('c2', 'c2')))
    await at2
    expect(order).toEqual(['2@2'])
    const ac = new AbortController()
    const aborted = s.waitForVersion(9, { signal: ac.signal })
    ac.abort()
    await rejectsWith(aborted, 'ABORTED')
    const closed = s.waitForVersion(9)
    s.close()
    await rejectsWith(closed, 'CLOSED')
    expect(() => s.waitForVersion(-1)).toThrow(RangeError)
  })
})

describe('watch', () => {
  it('delivers events after commit, with the old object on update', async () => {
    const s = new ClusterStore()
    const w = s.watch()
    await s.update((tx) => tx.create('networks', network('n1', 'a')))
    await s.update((tx) => {
      const n = tx.get('networks', 'n1')!
      tx.update('networks', { ...n, spec: { ...n.spec, labels: { x: 'y' } } })
    })
    await s.update((tx) => tx.delete('networks', 'n1'))
    const ev = await take(w, 3)
    expect(ev.map((e) => [e.action, e.table, e.version])).toEqual([
      ['create', 'networks', 1],
      ['update', 'networks', 2],
      ['delete', 'networks', 3],
    ])
    const upd = ev[1]!
    expect(upd.action === 'update' && upd.oldObject.meta.version).toBe(1)
    w.close()
    expect(await w.next()).toEqual({ value: undefined, done: true })
  })

  it('hands out queued events without waiting through poll, in order with next', async () => {
    const s = new ClusterStore()
    const w = s.watch({ table: 'networks' })
    expect(w.poll()).toBeUndefined()
    await s.update((tx) => {
      tx.create('networks', network('n1', 'a'))
      tx.create('networks', network('n2', 'b'))
      tx.create('networks', network('n3', 'c'))
    })
    expect(w.pending).toBe(3)
    expect((await w.next()).value?.object.id).toBe('n1')
    expect(w.poll()?.object.id).toBe('n2')
    expect(w.lastVersion).toBe(1)
    expect((await w.next()).value?.object.id).toBe('n3')
    expect(w.poll()).toBeUndefined()
    w.close()
    expect(w.poll()).toBeUndefined()
  })

  it('filters by table, action and predicate', async () => {
    const s = new ClusterStore()
    // Typed by table: the filter sees tasks.
    const w = s.watch({
      table: 'tasks',
      action: ['update'],
      filter: (e) => e.object.id !== 'skip' && e.object.serviceId === 's1',
    })
    await s.update((tx) => {
      tx.create('services', service('s1', 'web'))
      tx.create('tasks', task('t1', 's1', 1))
      tx.create('tasks', task('skip', 's1', 2))
    })
    await s.update((tx) => {
      for (const id of ['t1', 'skip']) {
        const t = tx.get('tasks', id)!
        tx.update('tasks', { ...t, status: { ...t.status, state: 'pending' } })
      }
    })
    const [e] = await take(w, 1)
    expect([e!.action, e!.object.id]).toEqual(['update', 't1'])
    expect(w.pending).toBe(0)
  })

  it('resumes from a version and refuses one no longer held', async () => {
    const s = new ClusterStore({ historySize: 5 })
    for (let i = 0; i < 8; i++) await s.update((tx) => tx.create('configs', config(`c${i}`, `c${i}`)))
    const w = s.watch({ fromVersion: 5 })
    const ev = await take(w, 3)
    expect(ev.map((e) => e.version)).toEqual([6, 7, 8])
    expect(() => s.watch({ fromVersion: 2 })).toThrow(expect.objectContaining({ code: 'VERSION_COMPACTED' }))
    await s.update((tx) => tx.create('configs', config('c9', 'c9')))
    expect((await w.next()).value?.version).toBe(9)
  })

  it('drops a slow watcher with an error and never blocks writers', async () => {
    const s = new ClusterStore()
    const slow = s.watch({ queueSize: 10 })
    const fast = s.watch()
    for (let i = 0; i < 20; i++) await s.update((tx) => tx.create('configs', config(`c${i}`, `c${i}`)))
    expect(fast.pending).toBe(20)
    expect(slow.closed).toBe(true)
    await expect(slow.next()).rejects.toMatchObject({ code: 'WATCH_DROPPED' })
    expect(await slow.next()).toEqual({ value: undefined, done: true })
  })

  it('closes on abort and on store close', async () => {
    const s = new ClusterStore()
    const ac = new AbortController()
    const w1 = s.watch({ signal: ac.signal })
    const w2 = s.watch()
    const p = w1.next()
    ac.abort()
    expect(await p).toEqual({ value: undefined, done: true })
    s.close()
    expect(w2.closed).toBe(true)
    await rejectsWith(
      s.update(() => undefined),
      'CLOSED',
    )
  })
})

describe('snapshot and restore', () => {
  it('round-trips the state and reports differences to watchers', async () => {
    const a = new ClusterStore()
    await a.update((tx) => {
      tx.create('networks', network('n1', 'appnet'))
      tx.create('secrets', secret('x1', 'db'))
      tx.create('services', service('s1', 'web', { networks: ['n1'], secrets: ['x1'] }))
    })
    const snap = a.snapshot()
    const b = new ClusterStore()
    await b.update((tx) => tx.create('configs', config('c1', 'c')))
    const w = b.watch()
    b.restore(snap)
    expect(b.version).toBe(1)
    expect(b.view((tx) => tx.get('secrets', 'x1'))).toEqual(a.view((tx) => tx.get('secrets', 'x1')))
    expect(b.view((tx) => tx.get('secrets', 'x1'))!.spec.data.constructor).toBe(Uint8Array)
    expect(b.view((tx) => tx.lookup('services', 'web').id)).toBe('s1')
    const ev = await take(w, 4)
    expect(ev.map((e) => `${e.action}:${e.object.id}`).sort()).toEqual([
      'create:n1',
      'create:s1',
      'create:x1',
      'delete:c1',
    ])
    expect(() => b.restore(new Uint8Array([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'CORRUPT' }))
  })
})
