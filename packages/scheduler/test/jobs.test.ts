import type { ClusterStore, StoreEvent, Task } from '@swarmkit/store'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { serviceStatus, updateService } from '../src/index.js'
import { serviceSpec, taskSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

const S = 1e9

/** Follows every commit: the most tasks of service `name` running (desired up, not ended) at once. */
function watchConcurrency(store: ClusterStore, name: string): { max: () => number; stop: () => void } {
  const live = new Map<string, Task>()
  let max = 0
  let version = -1
  const count = () => {
    let n = 0
    for (const t of live.values())
      if (isDesiredUp(t) && !['complete', 'shutdown', 'failed', 'rejected'].includes(t.status.state)) n++
    max = Math.max(max, n)
  }
  const w = store.watch({ table: 'tasks', queueSize: 1_000_000 })
  void (async () => {
    for await (const e of w as AsyncIterable<StoreEvent<'tasks'>>) {
      if (e.object.serviceAnnotations.name !== name) continue
      // the state after each whole commit
      if (e.version !== version) count()
      version = e.version
      if (e.action === 'delete') live.delete(e.object.id)
      else live.set(e.object.id, e.object)
    }
  })().catch(() => {})
  return {
    max: () => {
      count()
      return max
    },
    stop: () => w.close(),
  }
}

const isDesiredUp = (t: Task) =>
  t.desiredState === 'complete' || t.desiredState === 'running' || t.desiredState === 'ready'

const complete = (t: Task) => t.status.state === 'complete'

describe('replicated jobs', () => {
  it('runs to total completions, at most max concurrent at once, and never restarts a completed task', async () => {
    h = await harness({ behavior: () => 'complete' })
    await h.addNodes(2)
    const cc = watchConcurrency(h.store, 'job')
    const s = await h.service(
      serviceSpec('job', { mode: { replicatedJob: { maxConcurrent: 2, totalCompletions: 5 } } }),
    )
    await h.settle()
    await h.advance(60_000)
    const tasks = h.tasks(s.id)
    expect(tasks.filter(complete)).toHaveLength(5)
    expect(tasks).toHaveLength(5)
    expect(tasks.every((t) => t.desiredState === 'complete' && t.jobIteration?.index === 0)).toBe(true)
    expect(tasks.map((t) => t.slot).sort()).toEqual([1, 2, 3, 4, 5])
    expect(cc.max()).toBe(2)
    expect(serviceStatus(h.getService(s.id), tasks)).toEqual({ running: 0, desired: 2, completed: 5 })
    cc.stop()
  })

  it('restarts a failed task by its restart policy, never past max attempts', async () => {
    h = await harness({ behavior: () => 'fail' })
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('job', {
        mode: { replicatedJob: { maxConcurrent: 1, totalCompletions: 1 } },
        taskTemplate: taskSpec({ restartPolicy: { condition: 'on-failure', delay: 1 * S, maxAttempts: 2 } }),
      }),
    )
    await h.advance(60_000)
    const tasks = h.tasks(s.id)
    // the first attempt and two restarts, all failed, all in slot 1; the job does not complete
    expect(tasks.map((t) => [t.slot, t.status.state, t.status.err])).toEqual([
      [1, 'failed', 'task: non-zero exit (1)'],
      [1, 'failed', 'task: non-zero exit (1)'],
      [1, 'failed', 'task: non-zero exit (1)'],
    ])
    expect(tasks.every((t) => t.desiredState === 'shutdown')).toBe(true)
  })

  it('runs again, as a new iteration, when the service is updated; tasks of the old run are retired', async () => {
    let outcome: 'run' | 'complete' = 'run'
    h = await harness({ behavior: () => outcome })
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('job', { mode: { replicatedJob: { maxConcurrent: 2, totalCompletions: 2 } } }),
    )
    await h.settle()
    expect(h.tasks(s.id).map((t) => t.status.state)).toEqual(['running', 'running'])
    outcome = 'complete'
    const updated = await updateService(h.store, s.id, h.getService(s.id).spec)
    expect(updated.jobStatus?.jobIteration.index).toBe(1)
    await h.settle()
    const tasks = h.tasks(s.id)
    const old = tasks.filter((t) => t.jobIteration?.index === 0)
    const now = tasks.filter((t) => t.jobIteration?.index === 1)
    expect(old).toEqual([]) // stopped with desired `remove`, then reaped
    expect(now.map((t) => t.status.state)).toEqual(['complete', 'complete'])
    expect(serviceStatus(h.getService(s.id), tasks).completed).toBe(2)
  })
})

describe('global jobs', () => {
  it('completes once on every eligible node, and on a node that joins later', async () => {
    h = await harness({ behavior: () => 'complete' })
    const [a] = await h.addNodes(3)
    await h.addNodes(1, { availability: 'drain' })
    const s = await h.service(serviceSpec('once', { mode: { globalJob: {} } }))
    await h.advance(30_000)
    expect(h.tasks(s.id).filter(complete)).toHaveLength(3)
    const [late] = await h.addNodes(1)
    await h.advance(30_000)
    const tasks = h.tasks(s.id)
    expect(tasks).toHaveLength(4)
    expect(tasks.every(complete)).toBe(true)
    expect(tasks.some((t) => t.nodeId === late)).toBe(true)
    // a node going down later changes nothing: its task completed
    await h.setNode(a!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.advance(30_000)
    expect(h.tasks(s.id)).toHaveLength(4)
  })

  it('stops the task of a node that goes down before it completed, without replacing it', async () => {
    h = await harness({ behavior: () => 'run' })
    const [a, b] = await h.addNodes(2)
    const s = await h.service(serviceSpec('once', { mode: { globalJob: {} } }))
    await h.settle()
    expect(h.running().length).toBe(0) // desired `complete`, not `running`
    expect(h.tasks(s.id).map((t) => t.status.state)).toEqual(['running', 'running'])
    await h.setNode(b!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.settle()
    const tasks = h.tasks(s.id)
    expect(tasks).toHaveLength(2)
    expect(tasks.find((t) => t.nodeId === b)?.desiredState).toBe('shutdown')
    expect(tasks.find((t) => t.nodeId === a)?.desiredState).toBe('complete')
  })
})

describe('job properties', () => {
  it('a replicated job never runs more than max concurrent, never exceeds its completions, and restarts no slot past max attempts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxConcurrent: fc.integer({ min: 1, max: 4 }),
          totalCompletions: fc.integer({ min: 0, max: 8 }),
          maxAttempts: fc.integer({ min: 0, max: 3 }),
          outcomes: fc.array(fc.constantFrom<'complete' | 'fail' | 'reject'>('complete', 'fail', 'reject'), {
            minLength: 1,
            maxLength: 20,
          }),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        async ({ maxConcurrent, totalCompletions, maxAttempts, outcomes, seed }) => {
          let i = 0
          const hh = await harness({ seed, behavior: () => outcomes[i++ % outcomes.length]! })
          try {
            await hh.addNodes(2)
            const cc = watchConcurrency(hh.store, 'job')
            const s = await hh.service(
              serviceSpec('job', {
                mode: { replicatedJob: { maxConcurrent, totalCompletions } },
                taskTemplate: taskSpec({
                  restartPolicy: { condition: 'on-failure', delay: 1 * S, maxAttempts },
                }),
              }),
            )
            await hh.advance(120_000)
            cc.stop()
            const tasks = hh.tasks(s.id)
            expect(cc.max()).toBeLessThanOrEqual(maxConcurrent)
            expect(tasks.filter(complete).length).toBeLessThanOrEqual(totalCompletions)
            const perSlot = new Map<number, number>()
            for (const t of tasks) perSlot.set(t.slot, (perSlot.get(t.slot) ?? 0) + 1)
            // (history is trimmed to 5 per slot; attempts are at most 1 + max attempts when limited)
            if (maxAttempts > 0)
              for (const n of perSlot.values()) expect(n).toBeLessThanOrEqual(1 + maxAttempts)
            // with unlimited attempts (0) every slot ends complete
            if (maxAttempts === 0 && outcomes.includes('complete'))
              expect(tasks.filter(complete).length).toBe(totalCompletions)
          } finally {
            await hh.stop()
          }
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})
