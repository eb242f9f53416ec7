// Passes that give a node several tasks at once (issue #18): `passPerNode` places more per pass in a large
// cluster and writes a node's tasks of a pass in one transaction; the pass waits for pending tasks while
// they keep coming (`passWaitGapMs`) or while more are on their way (`passWaitWhile`), at most
// `passWaitMaxMs`; the orchestrator creates `createsPerPass` per pass in transactions of `createCommitSize`
// and says while it commits them (`creating`).
import { clusterStore, type StoreEvent, type Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createOrchestrator,
  createScheduler,
  createService,
  manualClock,
  type Orchestrator,
  type Scheduler,
  type SchedulerOptions,
} from '../src/index.js'
import { fresh, node, serviceSpec, task, until } from './fixtures.js'

let running: (Scheduler | Orchestrator)[] = []
afterEach(async () => {
  for (const s of running) await s.stop()
  running = []
})

function setup(options: Omit<SchedulerOptions, 'store' | 'clock'> = {}) {
  const clock = manualClock()
  const store = clusterStore({ clock: clock.now })
  const scheduler = createScheduler({ store, clock, ...options })
  running.push(scheduler)
  const passes: number[] = []
  scheduler.on('pass:done', (p) => passes.push(p.assigned))
  /** Per commit (store version): node -> tasks assigned to it in that commit. */
  const commits = new Map<number, Map<string, number>>()
  const w = store.watch({ table: 'tasks', queueSize: 1_000_000 })
  void (async () => {
    for await (const e of w as AsyncIterable<StoreEvent<'tasks'>>) {
      if (e.action !== 'update' || e.object.status.state !== 'assigned') continue
      let m = commits.get(e.version)
      if (!m) commits.set(e.version, (m = new Map()))
      m.set(e.object.nodeId, (m.get(e.object.nodeId) ?? 0) + 1)
    }
  })().catch(() => {})
  let seq = 0
  return {
    store,
    scheduler,
    clock,
    passes,
    commits,
    close: () => w.close(),
    async addNodes(n: number) {
      await store.update((tx) => {
        for (let i = 0; i < n; i++) tx.create('nodes', fresh(node(`n${i}`)))
      })
    },
    async addTasks(n: number) {
      await store.update((tx) => {
        for (let i = 0; i < n; i++) {
          const s = ++seq
          tx.create('tasks', fresh(task(`t${s}`, 's', { slot: s })))
        }
      })
    },
    tasks: (): Task[] => store.view((tx) => tx.find('tasks')),
    assigned(): boolean {
      const all = store.view((tx) => tx.find('tasks'))
      return all.length > 0 && all.every((t) => t.status.state === 'assigned')
    },
  }
}

describe('scheduler passes that give a node several tasks at once', () => {
  it("writes a node's tasks of one pass in one transaction, passPerNode tasks per node per pass", async () => {
    const h = setup({ commitSize: 10, passPerNode: 5 })
    await h.addNodes(10)
    await h.addTasks(50)
    h.scheduler.start()
    // Placed in slices of commitSize (the event loop free between them).
    const placer = h.scheduler.placer
    const slices: number[] = []
    const place = placer.place.bind(placer)
    placer.place = (tasks, now) => {
      slices.push(tasks.length)
      return place(tasks, now)
    }
    await until(() => h.assigned())
    expect(slices).toEqual([10, 10, 10, 10, 10])
    // One pass of 50 (5 per node on 10 nodes), written as 5 transactions of 10: each holds 2 nodes' 5 tasks.
    expect(h.passes).toEqual([50])
    expect(h.commits.size).toBe(5)
    for (const m of h.commits.values()) expect([...m.values()]).toEqual([5, 5])
    const per = new Map<string, number>()
    for (const t of h.tasks()) per.set(t.nodeId, (per.get(t.nodeId) ?? 0) + 1)
    expect([...per.values()]).toEqual(new Array(10).fill(5))
    h.close()
  })

  it('places commitSize per pass without passPerNode, one task per node per commit', async () => {
    const h = setup({ commitSize: 10 })
    await h.addNodes(10)
    await h.addTasks(50)
    h.scheduler.start()
    await until(() => h.assigned())
    expect(h.passes).toEqual([10, 10, 10, 10, 10])
    for (const m of h.commits.values()) expect([...m.values()]).toEqual(new Array(10).fill(1))
    h.close()
  })

  it('waits for pending tasks while passWaitWhile says more are coming, at most passWaitMaxMs', async () => {
    let coming = true
    const h = setup({ commitSize: 100, passWaitWhile: () => coming, passWaitMaxMs: 1000 })
    await h.addNodes(3)
    h.scheduler.start()
    for (let i = 0; i < 3; i++) {
      await h.addTasks(5)
      await until(() => h.scheduler.pendingCount === 5 * (i + 1))
      h.clock.advance(100)
    }
    expect(h.passes).toEqual([])
    coming = false
    h.clock.advance(50)
    await until(() => h.assigned())
    expect(h.passes).toEqual([15])
    // Still "coming", but the first pending task waited passWaitMaxMs: placed anyway.
    coming = true
    await h.addTasks(3)
    await until(() => h.scheduler.pendingCount === 3)
    h.clock.advance(950)
    expect(h.passes).toEqual([15])
    h.clock.advance(50)
    await until(() => h.assigned())
    expect(h.passes).toEqual([15, 3])
    h.close()
  })

  it('waits while pending tasks keep coming (passWaitGapMs), not once they stop', async () => {
    const h = setup({ commitSize: 100, passWaitGapMs: 50 })
    await h.addNodes(3)
    h.scheduler.start()
    await h.addTasks(4)
    await until(() => h.scheduler.pendingCount === 4)
    h.clock.advance(40)
    await h.addTasks(4)
    await until(() => h.scheduler.pendingCount === 8)
    h.clock.advance(40)
    expect(h.passes).toEqual([])
    h.clock.advance(10)
    await until(() => h.assigned())
    expect(h.passes).toEqual([8])
    h.close()
  })

  it('does not wait when a pass can place all it may, or someone waits for settled()', async () => {
    const h = setup({ commitSize: 6, passWaitWhile: () => true, passWaitMaxMs: 60_000 })
    await h.addNodes(3)
    h.scheduler.start()
    await h.addTasks(6)
    await until(() => h.assigned())
    expect(h.passes).toEqual([6])
    await h.addTasks(2)
    await until(() => h.scheduler.pendingCount === 2)
    await h.scheduler.settled()
    expect(h.assigned()).toBe(true)
    expect(h.passes).toEqual([6, 2])
    h.close()
  })

  it('validates the options', () => {
    const store = clusterStore()
    expect(() => createScheduler({ store, passPerNode: -1 })).toThrow(/passPerNode/)
    expect(() => createScheduler({ store, passWaitGapMs: Number.NaN })).toThrow(/passWaitGapMs/)
    expect(() => createScheduler({ store, passWaitMaxMs: -1 })).toThrow(/passWaitMaxMs/)
    expect(() => createScheduler({ store, passWaitWhile: 1 as never })).toThrow(/passWaitWhile/)
    expect(() => createOrchestrator({ store, createsPerPass: 0 })).toThrow(/createsPerPass/)
    expect(() => createOrchestrator({ store, createCommitSize: 1.5 })).toThrow(/createCommitSize/)
  })
})

describe('orchestrator scale-up per pass', () => {
  it('creates createsPerPass tasks per pass in transactions of createCommitSize, creating while it commits', async () => {
    const clock = manualClock()
    const store = clusterStore({ clock: clock.now })
    // The orchestrator writes through a store that notes, in each transaction that creates tasks, whether
    // the orchestrator says it is creating.
    const seenCreating: boolean[] = []
    const noting = new Proxy(store, {
      get(target, key) {
        if (key === 'update')
          return (fn: Parameters<typeof store.update>[0]) =>
            target.update((tx) => {
              let creates = false
              const r = fn(
                new Proxy(tx, {
                  get(t, k) {
                    if (k === 'create') creates = true
                    const v = Reflect.get(t, k, t)
                    return typeof v === 'function' ? v.bind(t) : v
                  },
                }),
              )
              if (creates) seenCreating.push(orch.creating)
              return r
            })
        const v = Reflect.get(target, key, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    const orch = createOrchestrator({ store: noting, clock, createsPerPass: 40, createCommitSize: 15 })
    running.push(orch)
    const perVersion = new Map<number, number>()
    const w = store.watch({ table: 'tasks', queueSize: 1_000_000 })
    void (async () => {
      for await (const e of w as AsyncIterable<StoreEvent>) {
        if (e.action === 'create') perVersion.set(e.version, (perVersion.get(e.version) ?? 0) + 1)
      }
    })().catch(() => {})
    expect(orch.creating).toBe(false)
    orch.start()
    await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 100 } } }))
    await until(() => store.view((tx) => tx.find('tasks')).length === 100)
    await until(() => !orch.creating)
    // 40 per pass (100 = 40 + 40 + 20), each pass in transactions of at most 15.
    expect([...perVersion.values()]).toEqual([15, 15, 10, 15, 15, 10, 15, 5])
    expect(seenCreating).toEqual(new Array(8).fill(true))
    w.close()
  })
})
