// A full pass over a large service (a new leader's first, at 150,000 slots) walks every slot before it
// decides what to update; committing only at its end held the new leader's first changes for seconds
// (issue #18: the first task assigned after a leader kill reached a worker 4.4 s after the kill). The walk
// now commits its complete steps as it goes, and a worker's progress on a task since the pass read it no
// longer fails the pass's commit.
import type { Service } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrchestrator, type SchedulerStore } from '../src/index.js'
import { Plan } from '../src/internal/plan.js'
import { type ReplicatedHost, reconcileReplicated } from '../src/internal/replicated.js'
import { RollingUpdates } from '../src/internal/rolling-update.js'
import { ServiceSlots } from '../src/internal/slot-index.js'
import { service, serviceSpec, task } from './fixtures.js'
import { type Harness, harness, seeded } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

describe('Plan.take', () => {
  const t = (id: string, version = 1) => task(id, 'svc', { meta: { version, createdAt: 0, updatedAt: 0 } })

  it('hands out the complete steps so far, and chunks() only what is left', () => {
    const plan = new Plan(100, 0, 4)
    const done: string[] = []
    for (let i = 0; i < 3; i++) {
      plan.setDesired(t(`a${i}`), 'shutdown')
      plan.setDesired(t(`b${i}`), 'shutdown')
      plan.after.push(() => done.push(`step ${i}`))
      plan.cut()
    }
    // A step in progress (no cut yet) is not handed out.
    plan.setDesired(t('c'), 'shutdown')
    expect(plan.takeable).toBe(6)
    const taken = plan.take()
    expect(taken.map((c) => c.ops.length)).toEqual([4, 2])
    expect(plan.takeable).toBe(0)
    expect(plan.take()).toEqual([])
    plan.cut()
    const rest = plan.chunks()
    expect(rest.map((c) => c.ops.length)).toEqual([1])
    for (const c of [...taken, ...rest]) for (const f of c.after) f()
    expect(done).toEqual(['step 0', 'step 1', 'step 2'])
    expect(plan.ops).toHaveLength(7)
  })

  it('gives a task changed again after its change was taken a new op, from the version that change wrote', () => {
    const plan = new Plan(100, 0, 10)
    const a = t('a', 7)
    plan.setDesired(a, 'running')
    plan.cut()
    const [chunk] = plan.take()
    const first = chunk!.ops[0] as Extract<Plan['ops'][number], { kind: 'task' }>
    first.written = 9
    plan.setDesired(a, 'shutdown')
    expect(plan.ops).toHaveLength(2)
    const second = plan.ops[1] as typeof first
    expect(second.version).toBe(9)
    expect(second.base).toBeUndefined()
    // Before it is taken, a second change composes into the first, as always.
    const b = t('b')
    plan.setDesired(b, 'running')
    plan.setDesired(b, 'shutdown')
    expect(plan.ops).toHaveLength(3)
  })
})

describe('a full pass over a replicated service', () => {
  /** A service of `n` slots, each holding one task replaced and waiting (desired `ready`) to be promoted. */
  function waitingSlots(n: number) {
    const svc: Service = service('svc', serviceSpec('web', { mode: { replicated: { replicas: n } } }))
    const state = new ServiceSlots()
    for (let slot = 1; slot <= n; slot++) {
      const tk = task(`t${slot}`, 'svc', {
        slot,
        nodeId: 'n1',
        desiredState: 'ready',
        status: { timestamp: 0, state: 'ready', message: '' },
      })
      state.slots.set(slot, new Map([[tk.id, tk]]))
    }
    let visited = 0
    const commits: { visited: number; ops: number }[] = []
    const host: ReplicatedHost = {
      supervise: () => {
        visited++
        return undefined
      },
      promote: (_svc, t, plan) => plan.setDesired(t, 'running'),
      shouldRestart: () => true,
      newTask: () => {
        throw new Error('no task is created here')
      },
      keep: () => 5,
      updates: new RollingUpdates({
        task: () => undefined,
        node: () => undefined,
        matcher: () => undefined,
        newTask: () => {
          throw new Error('no update here')
        },
        wake: () => {},
        delay: () => {},
        emit: () => {},
      }),
    }
    return { svc, state, host, commits, visited: () => visited }
  }

  it('commits its complete steps as it walks, a transaction at a time', async () => {
    const { svc, state, host, commits, visited } = waitingSlots(100)
    host.commitSoFar = async (_id, plan) => {
      const ops = plan.take().reduce((n, c) => n + c.ops.length, 0)
      commits.push({ visited: visited(), ops })
      return true
    }
    const plan = new Plan(1000, 0, 10)
    await reconcileReplicated(host, svc, 100, state, true, plan, 0)
    // Ten promotions a transaction, each committed once the walk had visited a few more slots than that.
    expect(commits.length).toBeGreaterThanOrEqual(9)
    expect(commits.every((c) => c.ops === 10)).toBe(true)
    expect(commits[0]!.visited).toBeLessThanOrEqual(11)
    expect(plan.chunks().reduce((n, c) => n + c.ops.length, 0) + commits.length * 10).toBe(100)
  })

  it('ends the walk where a commit during it failed', async () => {
    const { svc, state, host, visited } = waitingSlots(100)
    host.commitSoFar = async () => false
    const plan = new Plan(1000, 0, 10)
    const full = await reconcileReplicated(host, svc, 100, state, true, plan, 0)
    expect(full).toBe(true)
    expect(visited()).toBeLessThanOrEqual(11)
  })

  it('commits only at the end of an incremental pass', async () => {
    const { svc, state, host, commits } = waitingSlots(100)
    host.commitSoFar = async (_id, plan) => {
      commits.push({ visited: 0, ops: plan.take().length })
      return true
    }
    state.full = false
    for (let slot = 1; slot <= 100; slot++) state.dirty.add(slot)
    const plan = new Plan(1000, 0, 10)
    await reconcileReplicated(host, svc, 100, state, false, plan, 0)
    expect(commits).toEqual([])
    expect(plan.ops).toHaveLength(100)
  })
})

describe("the orchestrator's commits", () => {
  it("apply over a worker's progress on a task since the pass read it", async () => {
    h = await harness()
    await h.orchestrator.stop()
    await h.scheduler.stop()
    const [n] = await h.addNodes(1)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 1 } } }))
    // One task the orchestrator will stop (the service is scaled to 0), assigned and not yet running.
    await h.store.update((tx) =>
      tx.create('tasks', {
        ...task('t1', s.id, { nodeId: n!, status: { timestamp: 0, state: 'assigned', message: '' } }),
        specVersion: { index: h!.getService(s.id).specVersion.index },
      }),
    )
    await h.exec.stop()
    const cur = h.getService(s.id)
    await h.store.update((tx) =>
      tx.update('services', { ...cur, spec: { ...cur.spec, mode: { replicated: { replicas: 0 } } } }),
    )
    // The worker reports progress (assigned -> preparing) right as the orchestrator's pass writes.
    let raced = false
    const writer: Pick<SchedulerStore, 'update'> = {
      update: (async (fn: never) => {
        if (!raced) {
          raced = true
          await h!.store.update((tx) => {
            const t = tx.get('tasks', 't1')!
            tx.update('tasks', { ...t, status: { ...t.status, state: 'preparing' } })
          })
        }
        return h!.store.update(fn)
      }) as SchedulerStore['update'],
    }
    const errors: Error[] = []
    const orchestrator = createOrchestrator({
      store: h.store,
      clock: h.clock,
      random: seeded(9),
      standby: true,
    })
    orchestrator.on('error', (e) => errors.push(e))
    const passes: number[] = []
    orchestrator.on('pass:done', (p) => passes.push(p.changes))
    orchestrator.start()
    orchestrator.activate(writer)
    await h.settle()
    await orchestrator.stop()
    expect(errors).toEqual([])
    expect(raced).toBe(true)
    const t1 = h.store.view((tx) => tx.get('tasks', 't1'))!
    expect(t1.desiredState).toBe('remove')
    expect(t1.status.state).toBe('preparing')
    // The first pass did it: the progress did not fail its commit and leave it to another.
    expect(passes[0]).toBe(1)
  })
})
