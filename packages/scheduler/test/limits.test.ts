import { ClusterStore, isStoreError, type StoreEvent } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrchestrator, createService, manualClock, updateService } from '../src/index.js'
import { fresh, node, serviceSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

describe('spec limits', () => {
  it('the store refuses a service over its limits, on create and on update, naming the limit', async () => {
    const store = new ClusterStore({ limits: { maxReplicas: 100 } })
    const err = await createService(
      store,
      serviceSpec('web', { mode: { replicated: { replicas: 999_999_999 } } }),
    ).catch((e: unknown) => e)
    expect(isStoreError(err, 'INVALID_ARGUMENT')).toBe(true)
    expect((err as Error).message).toBe(
      'replicas 999999999 exceeds the limit of 100 tasks per service (maxReplicas)',
    )
    const s = await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 100 } } }))
    await expect(
      updateService(store, s.id, { ...s.spec, mode: { replicated: { replicas: 101 } } }),
    ).rejects.toThrow('replicas 101 exceeds the limit of 100 tasks per service (maxReplicas)')
    // A writer that goes around the scheduler's helpers meets the same check, inside its transaction.
    await expect(
      store.update((tx) =>
        tx.create('services', {
          id: 'job1',
          spec: serviceSpec('job', { mode: { replicatedJob: { maxConcurrent: 1, totalCompletions: 1e6 } } }),
        }),
      ),
    ).rejects.toThrow('total completions 1000000 exceeds the limit of 100 tasks per service (maxReplicas)')
    expect(() => new ClusterStore({ limits: { maxReplicas: 0 } })).toThrow(RangeError)
    store.close()
  })

  it('an over-limit spec already in the state (a log written before the limit) is left alone, not run', async () => {
    // A manager without the limit wrote it; a manager with the default limit restores that state.
    const old = new ClusterStore({ limits: { maxReplicas: Number.MAX_SAFE_INTEGER } })
    await old.update((tx) => tx.create('nodes', fresh(node('n1'))))
    await createService(old, serviceSpec('absurd', { mode: { replicated: { replicas: 999_999_999 } } }))
    await createService(old, serviceSpec('web', { mode: { replicated: { replicas: 2 } } }))
    const store = new ClusterStore()
    store.restore(old.snapshot())
    old.close()
    const errors: unknown[] = []
    const logged: string[] = []
    const orch = createOrchestrator({
      store,
      logger: (level, message, fields) => {
        if (level === 'error') logged.push(`${message}: ${String(fields?.error)}`)
      },
    })
    orch.on('error', (e) => errors.push(e))
    orch.start()
    const web = store.view((tx) => tx.lookup('services', 'web'))
    for (let i = 0; i < 1000 && store.view((tx) => tx.find('tasks', { serviceId: web.id })).length < 2; i++)
      await new Promise((r) => setImmediate(r))
    await orch.stop()
    const tasks = store.view((tx) => tx.find('tasks'))
    expect(tasks.map((t) => t.serviceId)).toEqual([web.id, web.id])
    expect(logged).toEqual([
      'service not reconciled: its spec exceeds the limits: replicas 999999999 exceeds the limit of 10000 tasks per service (maxReplicas)',
    ])
    expect(errors).toEqual([])
    store.close()
  })
})

describe('bounded reconciliation passes', () => {
  /**
   * The largest number of the orchestrator's task changes (creations, deletions, desired states) in one
   * commit while `run` goes on. (The scheduler and the test executor change other fields.)
   */
  async function largestCommit(store: ClusterStore, run: () => Promise<void>): Promise<number> {
    const perVersion = new Map<number, number>()
    const w = store.watch({ table: 'tasks', queueSize: 1_000_000 })
    const drain = (async () => {
      for await (const e of w as AsyncIterable<StoreEvent>) {
        if (e.table !== 'tasks') continue
        if (e.action === 'update' && e.object.desiredState === e.oldObject.desiredState) continue
        perVersion.set(e.version, (perVersion.get(e.version) ?? 0) + 1)
      }
    })()
    await run()
    w.close()
    await drain.catch(() => {})
    return Math.max(0, ...perVersion.values())
  }

  it('paces a scale-up in commits of commitSize, and the restarts of a failed node as well', async () => {
    h = await harness({ commitSize: 50 })
    const [a] = await h.addNodes(1)
    const s = await h.service(serviceSpec('big', { mode: { replicated: { replicas: 1000 } } }))
    const up = await largestCommit(h.store, () => h!.settle())
    expect(h.running(s.id)).toHaveLength(1000)
    expect(up).toBeLessThanOrEqual(50)
    // The node goes down with all 1000 tasks: 1000 restarts (2000 changes), never all in one command.
    const [b] = await h.addNodes(1)
    const down = await largestCommit(h.store, async () => {
      await h!.setNode(a!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
      await h!.settle()
    })
    expect(h.running(s.id).every((t) => t.nodeId === b)).toBe(true)
    expect(h.running(s.id)).toHaveLength(1000)
    expect(down).toBeLessThanOrEqual(50 + 2)
    // Scaling to 0 and an update with parallelism 0 (all at once) are bounded the same way.
    const all = await largestCommit(h.store, async () => {
      const cur = h!.getService(s.id)
      await updateService(h!.store, s.id, {
        ...cur.spec,
        taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
        updateConfig: { parallelism: 0 },
      })
      await h!.settle()
    })
    expect(all).toBeLessThanOrEqual(50 + 2)
    expect(h.running(s.id).every((t) => t.spec.forceUpdate === 1)).toBe(true)
    const zero = await largestCommit(h.store, async () => {
      const cur = h!.getService(s.id)
      await updateService(h!.store, s.id, { ...cur.spec, mode: { replicated: { replicas: 0 } } })
      await h!.settle()
    })
    expect(zero).toBeLessThanOrEqual(50 + 2)
    expect(h.tasks(s.id).filter((t) => t.desiredState === 'running')).toHaveLength(0)
  }, 120_000)

  it('paces a global service over many nodes, and its node failures', async () => {
    h = await harness({ commitSize: 50 })
    const nodes = await h.addNodes(600)
    const s = await h.service(serviceSpec('agent', { mode: { global: {} } }))
    const up = await largestCommit(h.store, () => h!.settle())
    expect(h.running(s.id)).toHaveLength(600)
    expect(up).toBeLessThanOrEqual(50)
    const down = await largestCommit(h.store, async () => {
      await h!.store.update((tx) => {
        for (const id of nodes.slice(0, 300)) {
          const n = tx.get('nodes', id)!
          tx.update('nodes', { ...n, status: { ...n.status, state: 'down' } })
        }
      })
      await h!.settle()
    })
    expect(down).toBeLessThanOrEqual(50)
    expect(h.running(s.id)).toHaveLength(300)
  }, 120_000)

  it('does not spin when the store refuses its commits (no quorum) while a plan has more to do', async () => {
    const store = new ClusterStore()
    await store.update((tx) => tx.create('nodes', fresh(node('n1'))))
    await createService(store, serviceSpec('big', { mode: { replicated: { replicas: 1000 } } }))
    let attempts = 0
    const broken = {
      view: store.view.bind(store),
      watch: store.watch.bind(store),
      update: (() => {
        attempts++
        return Promise.reject(new Error('no quorum'))
      }) as ClusterStore['update'],
    }
    const clock = manualClock()
    const orch = createOrchestrator({ store: broken, clock, commitSize: 50 })
    orch.on('error', () => {})
    orch.start()
    for (let i = 0; i < 500; i++) await new Promise((r) => setImmediate(r))
    // one attempt, then a retry a second later (on the clock), not a loop
    expect(attempts).toBe(1)
    clock.advance(1000)
    for (let i = 0; i < 500; i++) await new Promise((r) => setImmediate(r))
    expect(attempts).toBe(2)
    await orch.stop()
    store.close()
  })
})
