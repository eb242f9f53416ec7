import { clusterStore, StoreError, type Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrchestrator, createScheduler, manualClock, type Scheduler } from '../src/index.js'
import { fresh, node, serviceSpec, task, taskSpec, until } from './fixtures.js'

let running: Scheduler[] = []
afterEach(async () => {
  for (const s of running) await s.stop()
  running = []
})

function setup(nodes = 3) {
  const clock = manualClock()
  const store = clusterStore({ clock: clock.now })
  const scheduler = createScheduler({ store, clock })
  running.push(scheduler)
  return {
    store,
    scheduler,
    clock,
    async addNodes(n = nodes, over: Parameters<typeof node>[1] = {}) {
      await store.update((tx) => {
        for (let i = 0; i < n; i++) tx.create('nodes', fresh(node(`n${i}`, over)))
      })
    },
    tasks: (): Task[] => store.view((tx) => tx.find('tasks')),
  }
}

describe('Scheduler', () => {
  it('assigns pending tasks created before and after it starts', async () => {
    const h = setup()
    await h.addNodes()
    await h.store.update((tx) => {
      for (let i = 0; i < 3; i++) tx.create('tasks', fresh(task(`a${i}`, 's', { slot: i + 1 })))
    })
    h.scheduler.start()
    await until(() => h.tasks().every((t) => t.status.state === 'assigned'))
    await h.store.update((tx) => {
      for (let i = 0; i < 3; i++) tx.create('tasks', fresh(task(`b${i}`, 's', { slot: i + 4 })))
    })
    await until(() => h.tasks().every((t) => t.status.state === 'assigned'))
    const per = new Map<string, number>()
    for (const t of h.tasks()) per.set(t.nodeId, (per.get(t.nodeId) ?? 0) + 1)
    expect([...per.values()]).toEqual([2, 2, 2])
    expect(h.tasks()[0]?.status.message).toBe('scheduler assigned task to node')
  })

  it('leaves an unschedulable task pending with the explanation, and places it once a node fits', async () => {
    const h = setup()
    await h.addNodes(2, { labels: { zone: 'west' } })
    const spec = taskSpec({ placement: { constraints: ['node.labels.zone==east'] } })
    await h.store.update((tx) => tx.create('tasks', fresh(task('t', 's', { spec }))))
    h.scheduler.start()
    await until(() => h.tasks()[0]?.status.err !== undefined)
    expect(h.tasks()[0]?.status).toMatchObject({
      state: 'pending',
      err: 'no suitable node (scheduling constraints not satisfied on 2 nodes)',
    })
    await h.store.update((tx) => tx.create('nodes', fresh(node('east', { labels: { zone: 'east' } }))))
    await until(() => h.tasks()[0]?.status.state === 'assigned')
    expect(h.tasks()[0]?.nodeId).toBe('east')
  })

  it('retries a task when resources are freed', async () => {
    const h = setup()
    await h.addNodes(1, { cpu: 1e9 })
    const spec = taskSpec({ resources: { reservations: { nanoCPUs: 1e9, memoryBytes: 0 } } })
    await h.store.update((tx) => {
      tx.create('tasks', fresh(task('t1', 's', { spec })))
      tx.create('tasks', fresh(task('t2', 's', { spec, slot: 2 })))
    })
    h.scheduler.start()
    await until(() => h.tasks().some((t) => t.status.err !== undefined))
    const [done] = h.tasks().filter((t) => t.status.state === 'assigned')
    expect(done).toBeDefined()
    await h.store.update((tx) => {
      const cur = tx.get('tasks', done!.id)!
      tx.update('tasks', { ...cur, status: { ...cur.status, state: 'failed' } })
    })
    await until(() => h.tasks().every((t) => t.status.state !== 'pending'))
  })

  it('never assigns a task twice, even with two schedulers racing', async () => {
    const h = setup()
    await h.addNodes(4)
    const second = createScheduler({ store: h.store, clock: h.clock })
    running.push(second)
    let writes = 0
    const w = h.store.watch({ table: 'tasks', action: 'update' })
    void (async () => {
      for await (const e of w)
        if (
          e.table === 'tasks' &&
          e.action === 'update' &&
          e.object.status.state === 'assigned' &&
          e.oldObject.status.state === 'pending'
        )
          writes++
    })()
    h.scheduler.start()
    second.start()
    await h.store.update((tx) => {
      for (let i = 0; i < 50; i++) tx.create('tasks', fresh(task(`t${i}`, 's', { slot: i + 1 })))
    })
    await until(() => h.tasks().every((t) => t.status.state === 'assigned'))
    await until(() => writes === 50)
    w.close()
    expect(writes).toBe(50)
  })

  it('checks a global task against its own node', async () => {
    const h = setup()
    await h.addNodes(2)
    await h.store.update((tx) => {
      tx.create('tasks', fresh(task('g0', 'g', { slot: 0, nodeId: 'n0' })))
      tx.create('tasks', fresh(task('g1', 'g', { slot: 0, nodeId: 'n1' })))
    })
    h.scheduler.start()
    await until(() => h.tasks().every((t) => t.status.state === 'assigned'))
    expect(
      h
        .tasks()
        .map((t) => t.nodeId)
        .sort(),
    ).toEqual(['n0', 'n1'])
  })

  it('validates its options', () => {
    expect(() => createScheduler({} as never)).toThrow(/options.store/)
    expect(() => createScheduler({ store: clusterStore(), commitSize: 0 })).toThrow(RangeError)
  })

  it('settles once nothing more can be placed', async () => {
    const h = setup()
    await h.addNodes(1)
    h.scheduler.start()
    await h.store.update((tx) => tx.create('tasks', fresh(task('x', 's'))))
    await until(() => h.tasks()[0]?.status.state === 'assigned')
    await h.scheduler.settled()
    expect(h.scheduler.pendingCount).toBe(0)
  })

  it('retries after a failed commit (e.g. no raft quorum), and says so', async () => {
    const clock = manualClock()
    const real = clusterStore({ clock: clock.now })
    let failures = 1
    const store = {
      view: real.view.bind(real),
      watch: real.watch.bind(real),
      update: ((fn: never) =>
        failures-- > 0
          ? Promise.reject(new StoreError('PROPOSAL_FAILED', 'the transaction was not committed: no quorum'))
          : real.update(fn)) as typeof real.update,
    }
    await real.update((tx) => {
      tx.create('nodes', fresh(node('n0')))
      tx.create('tasks', fresh(task('t', 's')))
    })
    const scheduler = createScheduler({ store, clock })
    running.push(scheduler)
    const errors: Error[] = []
    scheduler.on('error', (e) => errors.push(e))
    scheduler.start()
    await until(() => errors.length === 1)
    expect(errors[0]?.message).toMatch(/no quorum/)
    expect(real.view((tx) => tx.get('tasks', 't'))?.status.state).toBe('pending')
    clock.advance(1000)
    await until(() => real.view((tx) => tx.get('tasks', 't'))?.status.state === 'assigned')
  })

  it('lets the orchestrator retry a failed commit as well', async () => {
    const clock = manualClock()
    const real = clusterStore({ clock: clock.now })
    let failures = 1
    const store = {
      view: real.view.bind(real),
      watch: real.watch.bind(real),
      update: ((fn: never) =>
        failures-- > 0
          ? Promise.reject(new StoreError('PROPOSAL_FAILED', 'no quorum'))
          : real.update(fn)) as typeof real.update,
    }
    await real.update((tx) =>
      tx.create('services', {
        id: 'svc',
        spec: serviceSpec('web', { mode: { replicated: { replicas: 2 } } }),
      }),
    )
    const orchestrator = createOrchestrator({ store, clock })
    const errors: Error[] = []
    orchestrator.on('error', (e) => errors.push(e))
    orchestrator.start()
    await until(() => errors.length === 1)
    clock.advance(1000)
    await until(() => real.view((tx) => tx.find('tasks')).length === 2)
    await orchestrator.stop()
  })

  it('reports a closed store instead of crashing', async () => {
    const store = clusterStore()
    store.close()
    const scheduler = createScheduler({ store })
    const errors: Error[] = []
    scheduler.on('error', (e) => errors.push(e))
    scheduler.start()
    await until(() => !scheduler.running)
    await scheduler.stop()
    expect(errors.length).toBeLessThanOrEqual(1)
  })
})
