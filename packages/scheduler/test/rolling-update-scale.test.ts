// A rolling update of a large service (issue #18: 50,000 slots at parallelism 0 never converged on three
// managers, and the leader changed every few seconds). A pass over the service costs time in proportion to its
// tasks, so an update must take few passes, each bounded in what it writes per transaction; and the walk over
// every slot in flight must leave the event loop to the manager's raft heartbeats between time slices.
import type { Service, Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { updateService } from '../src/index.js'
import { PassPacing } from '../src/internal/pass-pacing.js'
import { Plan } from '../src/internal/plan.js'
import { RollingUpdates } from '../src/internal/rolling-update.js'
import { serviceSpec, task } from './fixtures.js'
import { type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

describe('Plan', () => {
  const t = (id: string) => task(id, 'svc')

  it('splits its changes into transactions only at cuts, each of at most maxTxOps changes', () => {
    const plan = new Plan(100, 0, 4)
    const order: string[] = []
    for (let i = 0; i < 5; i++) {
      // a step of two changes and its callback
      plan.setDesired(t(`a${i}`), 'shutdown')
      plan.setDesired(t(`b${i}`), 'shutdown')
      plan.after.push(() => order.push(`step ${i}`))
      plan.cut()
    }
    const chunks = plan.chunks()
    expect(chunks.map((c) => c.ops.length)).toEqual([4, 4, 2])
    expect(chunks.map((c) => c.after.length)).toEqual([2, 2, 1])
    for (const c of chunks) for (const f of c.after) f()
    expect(order).toEqual(['step 0', 'step 1', 'step 2', 'step 3', 'step 4'])
  })

  it('is full after maxTxOps changes without a cut, or maxOps with them', () => {
    const uncut = new Plan(100, 0, 4)
    for (let i = 0; i < 4; i++) uncut.setDesired(t(`u${i}`), 'shutdown')
    expect(uncut.full).toBe(true)
    expect(uncut.chunks().map((c) => c.ops.length)).toEqual([4])
    const cut = new Plan(10, 0, 4)
    for (let i = 0; i < 9; i++) {
      expect(cut.full).toBe(false)
      cut.setDesired(t(`c${i}`), 'shutdown')
      cut.cut()
    }
    cut.setDesired(t('last'), 'shutdown')
    expect(cut.full).toBe(true)
    expect(cut.more).toBe(true)
  })
})

describe('a rolling update at parallelism 0', () => {
  it('takes few orchestrator passes, each writing several transactions of at most commitSize changes', async () => {
    h = await harness({ commitSize: 50 })
    await h.addNodes(4)
    const s = await h.service(serviceSpec('big', { mode: { replicated: { replicas: 1000 } } }))
    await h.settle()
    expect(h.running(s.id)).toHaveLength(1000)
    const passes: number[] = []
    h.orchestrator.on('pass:done', ({ changes }) => {
      if (changes > 0) passes.push(changes)
    })
    const cur = h.getService(s.id)
    await updateService(h.store, s.id, {
      ...cur.spec,
      taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
      updateConfig: { parallelism: 0 },
    })
    await h.settle()
    const running = h.running(s.id)
    expect(running).toHaveLength(1000)
    expect(running.every((t) => t.spec.forceUpdate === 1)).toBe(true)
    expect(new Set(running.map((t) => t.slot)).size).toBe(1000)
    // 1000 slots: 1000 old tasks stopped, 1000 created, 1000 started: 3000 changes. At most commitSize per
    // pass, that was at least 60 passes over the whole service; the passes now carry several transactions.
    const total = passes.reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThanOrEqual(3000)
    expect(Math.max(...passes)).toBeGreaterThan(50)
    expect(passes.length).toBeLessThanOrEqual(30)
  }, 120_000)
  it('writes up to one change per 20 tasks a pass walks, in transactions of at most commitSize', async () => {
    // commitSize 5: five transactions (25 changes) per pass before; a pass over 1,000-2,000 tasks now
    // writes 50-100, so 3,000 changes take half the passes or fewer.
    h = await harness({ commitSize: 5 })
    await h.addNodes(4)
    const s = await h.service(serviceSpec('big', { mode: { replicated: { replicas: 1000 } } }))
    await h.settle()
    const passes: number[] = []
    h.orchestrator.on('pass:done', ({ changes }) => {
      if (changes > 0) passes.push(changes)
    })
    const perVersion = new Map<number, number>()
    const w = h.store.watch({ table: 'tasks', queueSize: 1_000_000 })
    const drain = (async () => {
      for await (const e of w) {
        if (e.table !== 'tasks') continue
        if (e.action === 'update' && e.object.desiredState === e.oldObject.desiredState) continue
        perVersion.set(e.version, (perVersion.get(e.version) ?? 0) + 1)
      }
    })()
    const cur = h.getService(s.id)
    await updateService(h.store, s.id, {
      ...cur.spec,
      taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
      updateConfig: { parallelism: 0 },
    })
    await h.settle()
    w.close()
    await drain.catch(() => {})
    expect(h.running(s.id).filter((t) => t.spec.forceUpdate === 1)).toHaveLength(1000)
    expect(Math.max(...perVersion.values())).toBeLessThanOrEqual(5 + 2)
    expect(Math.max(...passes)).toBeGreaterThanOrEqual(50)
    expect(passes.length).toBeLessThanOrEqual(70)
  }, 120_000)
})

describe('PassPacing', () => {
  it('rests a large service after each pass as long as the pass took, and calls it back', async () => {
    let now = 0
    const ready: string[] = []
    const pacing = new PassPacing(
      (id) => ready.push(id),
      10_000,
      () => now,
    )
    pacing.passed('small', 9_999, 500)
    expect(pacing.resting('small')).toBe(false)
    pacing.passed('big', 50_000, 5)
    expect(pacing.resting('big')).toBe(true)
    now = 3
    expect(pacing.resting('big')).toBe(true)
    // one callback, however often it was asked
    await new Promise((r) => setTimeout(r, 20))
    expect(ready).toEqual(['big'])
    now = 5
    expect(pacing.resting('big')).toBe(false)
    pacing.stop()
  })
})

describe('RollingUpdates', () => {
  it('lets the event loop run while it walks thousands of slots in flight', async () => {
    const n = 2000
    const tasks = new Map<string, Task>()
    let reads = 0
    const busy = (ms: number) => {
      const end = performance.now() + ms
      while (performance.now() < end);
    }
    const updates = new RollingUpdates({
      task: (id) => {
        // A known cost per task read, so the walk spans many time slices on any machine.
        reads++
        busy(0.05)
        return tasks.get(id)
      },
      node: () => undefined,
      matcher: () => undefined,
      newTask: (svc, slot, nodeId, _now, desired) => ({
        ...task(`new-${slot}`, svc.id, { slot, nodeId, desiredState: desired, specVersion: { index: 2 } }),
        spec: svc.spec.taskTemplate,
      }),
      wake: () => {},
      delay: () => {},
      emit: () => {},
    })
    const spec = serviceSpec('big', {
      mode: { replicated: { replicas: n } },
      updateConfig: { parallelism: 0 },
    })
    const svc: Service = {
      id: 'svc',
      meta: { version: 1, createdAt: 0, updatedAt: 0 },
      spec: { ...spec, taskTemplate: { ...spec.taskTemplate, forceUpdate: 1 } },
      specVersion: { index: 2 },
      endpoint: undefined,
    } as unknown as Service
    const slots = Array.from({ length: n }, (_, i) => {
      const old = task(`old-${i + 1}`, 'svc', {
        slot: i + 1,
        nodeId: 'n1',
        desiredState: 'running',
        status: { timestamp: 0, state: 'running', message: '' },
      })
      tasks.set(old.id, old)
      return { key: `s:${i + 1}`, slot: i + 1, nodeId: '', active: [old] }
    })
    // The first pass starts every slot's step (all in flight at parallelism 0)...
    const first = new Plan(1e9, 0)
    await updates.update(svc, slots, first, 0)
    for (const f of first.after) f()
    expect(updates.runs.get('svc')?.inFlight.size).toBe(n)
    // ...the next walks them all: a callback queued at its start runs before the walk ends.
    reads = 0
    let readsWhenRan = -1
    setImmediate(() => {
      readsWhenRan = reads
    })
    await updates.update(svc, slots, new Plan(1e9, 0), 1)
    expect(reads).toBeGreaterThanOrEqual(n)
    expect(readsWhenRan).toBeGreaterThanOrEqual(0)
    expect(readsWhenRan).toBeLessThan(n)
  })
})
