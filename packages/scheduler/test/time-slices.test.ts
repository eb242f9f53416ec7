// Long work runs in time slices: a manager's raft heartbeats share the event loop with the orchestrator and
// scheduler, and a reset or a run of events over tens of thousands of tasks that never yields stalls the
// loop past the election timeout (issue #18). Each handler here takes a known time per item (a busy wait),
// so the work spans many slices whatever the machine: the test checks that the loop lets other callbacks
// run in between, not how fast anything is.
import { clusterStore, type Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createScheduler } from '../src/index.js'
import { WatchLoop } from '../src/internal/loop.js'
import { progressOnly } from '../src/internal/task-state.js'
import { TimeSlice } from '../src/internal/time-slice.js'
import { fresh, node, task } from './fixtures.js'

const busy = (ms: number) => {
  const end = performance.now() + ms
  while (performance.now() < end);
}

const loops: WatchLoop[] = []
afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop()
})

describe('TimeSlice', () => {
  it('is due once its budget is spent, and starts again after yielding to the event loop', async () => {
    const slice = new TimeSlice(5)
    let calls = 0
    while (!slice.due()) {
      calls++
      busy(0.1)
    }
    expect(calls).toBeGreaterThan(0)
    let ran = false
    setImmediate(() => {
      ran = true
    })
    await slice.yield()
    expect(ran).toBe(true)
    expect(slice.due()).toBe(false)
  })
})

describe('SliceMeter', () => {
  it("takes its budget from the job's meter when the meter has one", () => {
    // (The orchestrator's first pass after activation runs in longer slices than the rest.)
    expect(new TimeSlice(10, { busyMs: 0, budgetMs: 50 }).budgetMs).toBe(50)
    expect(new TimeSlice(10, { busyMs: 0 }).budgetMs).toBe(10)
    expect(new TimeSlice().budgetMs).toBe(10)
  })

  it('adds the time a sliced job ran, not the time others ran between its slices', async () => {
    const meter = { busyMs: 0 }
    const slice = new TimeSlice(10, meter)
    while (!slice.due()) busy(0.5)
    // Another callback takes 100 ms while the job waits for its next slice.
    setImmediate(() => busy(100))
    await slice.yield()
    expect(meter.busyMs).toBeGreaterThanOrEqual(10)
    expect(meter.busyMs).toBeLessThan(100)
  })
})

describe('WatchLoop', () => {
  it('lets the event loop run between slices of a long reset and of a long run of events', async () => {
    const store = clusterStore()
    await store.update((tx) => {
      for (let i = 0; i < 200; i++) tx.create('tasks', fresh(task(`t${i}`, 'svc')))
    })
    let reset = 0
    let events = 0
    const loop = new WatchLoop(
      store,
      ['tasks'],
      {
        reset: (tx) => {
          const tasks = tx.find('tasks')
          return (function* () {
            for (const _ of tasks) {
              busy(0.5)
              reset++
              yield
            }
          })()
        },
        event: () => {
          busy(0.5)
          events++
        },
        idle: async () => {},
      },
      1_000_000,
      () => {},
      (err) => {
        throw err
      },
    )
    loops.push(loop)
    // 200 items of 0.5 ms: 100 ms of work, ten slices of 10 ms; a callback queued now runs within the first.
    let resetSeen = -1
    setImmediate(() => {
      resetSeen = reset
    })
    loop.start()
    await until(() => reset === 200)
    expect(resetSeen).toBeGreaterThanOrEqual(0)
    expect(resetSeen).toBeLessThan(200)
    await store.update((tx) => {
      for (let i = 200; i < 400; i++) tx.create('tasks', fresh(task(`t${i}`, 'svc')))
    })
    let eventsSeen = -1
    setImmediate(() => {
      eventsSeen = events
    })
    await until(() => events === 200)
    expect(eventsSeen).toBeGreaterThanOrEqual(0)
    expect(eventsSeen).toBeLessThan(200)
  })
})

describe('Scheduler passes', () => {
  it('place at most commitSize new tasks each, and come back at once for the rest', async () => {
    const store = clusterStore()
    await store.update((tx) => {
      for (let i = 0; i < 10; i++) tx.create('nodes', fresh(node(`n${i}`)))
      for (let i = 0; i < 1000; i++) tx.create('tasks', fresh(task(`t${i}`, 'svc', { slot: i + 1 })))
    })
    const scheduler = createScheduler({ store, commitSize: 100 })
    const passes: number[] = []
    scheduler.on('pass:done', (s) => passes.push(s.assigned))
    scheduler.start()
    try {
      await scheduler.settled()
      const assigned = store.view((tx) => tx.find('tasks', undefined, (t) => t.status.state === 'assigned'))
      expect(assigned).toHaveLength(1000)
      expect(Math.max(...passes)).toBeLessThanOrEqual(100)
      expect(passes.reduce((a, b) => a + b, 0)).toBe(1000)
    } finally {
      await scheduler.stop()
    }
  })
})

describe('progressOnly', () => {
  const t = (over: Partial<Task> = {}): Task =>
    task('t1', 'svc', { nodeId: 'n1', status: { timestamp: 0, state: 'assigned', message: '' }, ...over })

  it('holds for a worker reporting its way towards running, and for nothing else', () => {
    const a = t()
    const at = (state: Task['status']['state'], over: Partial<Task> = {}) =>
      ({ ...a, ...over, status: { ...a.status, state } }) as Task
    expect(progressOnly(a, at('preparing'))).toBe(true)
    expect(progressOnly(at('preparing'), at('starting'))).toBe(true)
    expect(progressOnly(at('starting'), at('running'))).toBe(false)
    expect(progressOnly(at('starting'), at('failed'))).toBe(false)
    expect(progressOnly(at('pending'), at('assigned'))).toBe(false)
    expect(progressOnly(a, at('preparing', { desiredState: 'shutdown' }))).toBe(false)
    expect(progressOnly(a, at('preparing', { nodeId: 'n2' }))).toBe(false)
    expect(progressOnly(a, at('preparing', { spec: { ...a.spec } }))).toBe(false)
  })
})

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
}
