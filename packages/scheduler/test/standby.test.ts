import { afterEach, describe, expect, it } from 'vitest'
import {
  createOrchestrator,
  createScheduler,
  isSchedulerError,
  type SchedulerStore,
  updateService,
} from '../src/index.js'
import { serviceSpec, taskSpec } from './fixtures.js'
import { type Harness, harness, seeded } from './harness.js'

// A manager that is not the leader keeps a scheduler and an orchestrator in standby: they follow every
// commit but act only once activated, so that a new leader reconciles at once instead of first loading
// every task (2.3 s of a new leader's CPU at 300,000 tasks, issue #18). Taking over from standby must end
// exactly where taking over with fresh ones does.

const S = 1e9
let h: Harness | undefined
const extra: { stop(): Promise<void> }[] = []
afterEach(async () => {
  for (const x of extra.splice(0)) await x.stop()
  await h?.stop()
  h = undefined
})

/** A write target that counts the transactions it commits (and refuses them while `open` is false). */
function countingWriter(store: SchedulerStore) {
  const w = {
    open: true,
    writes: 0,
    update: ((fn: never, options?: never) => {
      if (!w.open) throw new Error('a standby wrote to the store')
      w.writes++
      return store.update(fn, options)
    }) as SchedulerStore['update'],
  }
  return w
}

/**
 * A standby pair over `h`'s store whose writes go through `writer` (closed: a write is an error); `views`
 * counts the consistent views it reads (a start, or a reload of everything, reads one each).
 */
function standbyPair(h: Harness, seed: number, writer = countingWriter(h.store), views = { n: 0 }) {
  const errors: Error[] = []
  const store: SchedulerStore = {
    view: ((fn: never) => {
      views.n++
      return h.store.view(fn)
    }) as SchedulerStore['view'],
    watch: h.store.watch.bind(h.store),
    update: writer.update,
  }
  const scheduler = createScheduler({ store, clock: h.clock, standby: true })
  const orchestrator = createOrchestrator({
    store,
    clock: h.clock,
    random: seeded(seed),
    standby: true,
  })
  scheduler.on('error', (e) => errors.push(e))
  orchestrator.on('error', (e) => errors.push(e))
  scheduler.start()
  orchestrator.start()
  extra.push(scheduler, orchestrator)
  return { scheduler, orchestrator, errors }
}

describe('standby', () => {
  it('follows the store without writing, and acts once activated', async () => {
    h = await harness()
    // The harness's own pair stands for a leader that is gone before anything is created.
    await h.orchestrator.stop()
    await h.scheduler.stop()
    const writer = countingWriter(h.store)
    writer.open = false
    const pair = standbyPair(h, 2, writer)
    expect(pair.scheduler.standby).toBe(true)
    expect(pair.orchestrator.standby).toBe(true)
    await h.addNodes(2)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 4 } } }))
    await h.settle()
    expect(h.tasks(s.id)).toEqual([])
    await expect(pair.scheduler.settled()).rejects.toSatisfy((e) => isSchedulerError(e, 'STANDBY'))

    expect(pair.errors).toEqual([])
    writer.open = true
    const passes: { changes: number; busyMs: number }[] = []
    pair.orchestrator.on('pass:done', (p) => passes.push(p))
    pair.orchestrator.activate()
    pair.scheduler.activate()
    expect(pair.orchestrator.standby).toBe(false)
    await h.settle()
    // Each pass says what it wrote and its own time (the first one created the four tasks).
    expect(passes[0]?.changes).toBe(4)
    expect(passes.every((p) => p.busyMs >= 0 && Number.isFinite(p.busyMs))).toBe(true)
    expect(
      h
        .running(s.id)
        .map((t) => t.slot)
        .sort(),
    ).toEqual([1, 2, 3, 4])
    expect(writer.writes).toBeGreaterThan(0)
    expect(pair.errors).toEqual([])
  })

  it('takes over a rolling update half way, with restarts and a node lost while it stood by', async () => {
    h = await harness()
    const [, b] = await h.addNodes(3)
    const s = await h.service(
      serviceSpec('web', {
        mode: { replicated: { replicas: 6 } },
        updateConfig: { parallelism: 1, delay: 10 * S, monitor: 0 },
        taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 1 * S } }),
      }),
    )
    await h.settle()
    const writer = countingWriter(h.store)
    writer.open = false
    const pair = standbyPair(h, 3, writer)

    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({
        containerSpec: { image: 'nginx:2' },
        restartPolicy: { condition: 'any', delay: 1 * S },
      }),
    })
    await h.advance(10_000)
    const [failing] = h.running(s.id)
    await h.exec.exit(failing!.id, 'failed')
    await h.setNode(b!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.advance(2_000)
    const startedAt = h.getService(s.id).updateStatus?.startedAt
    expect(h.getService(s.id).updateStatus?.state).toBe('updating')

    // The leader changes: its pair stops, the standby pair acts from the state it followed.
    await h.orchestrator.stop()
    await h.scheduler.stop()
    expect(pair.errors).toEqual([])
    expect(writer.writes).toBe(0)
    // Activated with a writer of their own, as a leader scopes its writes to its term.
    const leaderWriter = countingWriter(h.store)
    pair.orchestrator.activate(leaderWriter)
    pair.scheduler.activate(leaderWriter)
    await h.advance(120_000)

    expect(pair.errors).toEqual([])
    expect(leaderWriter.writes).toBeGreaterThan(0)
    expect(writer.writes).toBe(0)
    expect(h.getService(s.id).updateStatus).toMatchObject({ state: 'completed', startedAt })
    const running = h.running(s.id)
    expect(running.map((t) => t.slot).sort()).toEqual([1, 2, 3, 4, 5, 6])
    expect(running.every((t) => t.spec.containerSpec.image === 'nginx:2')).toBe(true)
    expect(running.some((t) => t.nodeId === b)).toBe(false)
  })

  it('goes back to standby on a step-down, and leads again later without loading the store again', async () => {
    h = await harness()
    const [, b] = await h.addNodes(3)
    const restartPolicy = { condition: 'any' as const, delay: 1 * S }
    const s = await h.service(
      serviceSpec('web', {
        mode: { replicated: { replicas: 6 } },
        updateConfig: { parallelism: 1, delay: 10 * S, monitor: 0 },
        taskTemplate: taskSpec({ restartPolicy }),
      }),
    )
    await h.settle()
    const closed = countingWriter(h.store)
    closed.open = false
    const views = { n: 0 }
    const pair = standbyPair(h, 3, closed, views)
    await h.orchestrator.stop()
    await h.scheduler.stop()

    // Term 1: the pair leads, and the update begins.
    const term1 = countingWriter(h.store)
    pair.orchestrator.activate(term1)
    pair.scheduler.activate(term1)
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' }, restartPolicy }),
    })
    await h.advance(10_000)
    expect(term1.writes).toBeGreaterThan(0)

    // It steps down: from now on a write through term 1's writer would be a deposed leader's.
    await Promise.all([pair.orchestrator.deactivate(), pair.scheduler.deactivate()])
    term1.open = false
    expect(pair.orchestrator.standby).toBe(true)
    expect(pair.scheduler.standby).toBe(true)

    // Term 2: another manager's pair leads; a task fails and a node is lost meanwhile.
    const other = standbyPair(h, 4)
    other.orchestrator.activate()
    other.scheduler.activate()
    await h.advance(12_000)
    const [failing] = h.running(s.id)
    await h.exec.exit(failing!.id, 'failed')
    await h.setNode(b!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.advance(2_000)
    await other.orchestrator.stop()
    await other.scheduler.stop()
    expect(other.errors).toEqual([])

    // Term 3: the first pair leads again, from the state it kept following, without a new view.
    const viewsBefore = views.n
    const term3 = countingWriter(h.store)
    pair.orchestrator.activate(term3)
    pair.scheduler.activate(term3)
    await h.advance(120_000)

    expect(pair.errors).toEqual([])
    expect(views.n).toBe(viewsBefore)
    expect(term3.writes).toBeGreaterThan(0)
    expect(closed.writes).toBe(0)
    expect(h.getService(s.id).updateStatus?.state).toBe('completed')
    const running = h.running(s.id)
    expect(running.map((t) => t.slot).sort()).toEqual([1, 2, 3, 4, 5, 6])
    expect(running.every((t) => t.spec.containerSpec.image === 'nginx:2')).toBe(true)
    expect(running.some((t) => t.nodeId === b)).toBe(false)
  })

  it('leads again as a new leader would: failures an update counted in an earlier term are not counted again', async () => {
    h = await harness()
    await h.addNodes(3)
    const restartPolicy = { condition: 'any' as const, delay: 1 * S }
    const s = await h.service(
      serviceSpec('web', {
        mode: { replicated: { replicas: 6 } },
        updateConfig: {
          parallelism: 1,
          delay: 10 * S,
          monitor: 60 * S,
          maxFailureRatio: 0.4,
          failureAction: 'pause',
        },
        taskTemplate: taskSpec({ restartPolicy }),
      }),
    )
    await h.settle()
    const closed = countingWriter(h.store)
    closed.open = false
    const pair = standbyPair(h, 7, closed)
    await h.orchestrator.stop()
    await h.scheduler.stop()
    const lead = () => {
      const w = countingWriter(h!.store)
      pair.orchestrator.activate(w)
      pair.scheduler.activate(w)
      return w
    }
    /** Makes the update's newest task (the step just taken) fail once it runs. */
    const failStep = async () => {
      const step = h!
        .running(s.id)
        .filter((t) => t.spec.containerSpec.image === 'nginx:2')
        .sort((a, b) => b.meta.createdAt - a.meta.createdAt)[0]
      await h!.exec.exit(step!.id, 'failed')
    }
    const term1 = lead()
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' }, restartPolicy }),
    })
    await h.settle()
    await failStep()
    await h.advance(10_000)
    await failStep()
    await h.settle()
    // Two failures of six: under the ratio. The leader steps down and is elected again at once.
    expect(h.getService(s.id).updateStatus?.state).toBe('updating')
    await Promise.all([pair.orchestrator.deactivate(), pair.scheduler.deactivate()])
    term1.open = false
    lead()
    // A new leader's update counts from its own start: one failure of the four slots left is under the ratio
    // (counted with the earlier term's two, three of six would pause the update).
    await h.advance(10_000)
    await failStep()
    await h.advance(120_000)
    expect(pair.errors).toEqual([])
    expect(h.getService(s.id).updateStatus?.state).toBe('completed')
  })

  it('deactivate() waits for the pass in progress, and leaves no retry behind', async () => {
    h = await harness()
    await h.orchestrator.stop()
    await h.scheduler.stop()
    await h.addNodes(2)
    // The scheduler's commits hang until its term is over, then fail (a deposed leader's).
    let entered = 0
    let fail: (err: Error) => void = () => {}
    const gone = new Promise<never>((_, reject) => {
      fail = reject
    })
    gone.catch(() => {})
    const hanging = {
      update: (() => {
        entered++
        return gone
      }) as SchedulerStore['update'],
    }
    const closed = countingWriter(h.store)
    closed.open = false
    const pair = standbyPair(h, 5, closed)
    const term1 = countingWriter(h.store)
    pair.orchestrator.activate(term1)
    pair.scheduler.activate(hanging)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 3 } } }))
    for (let i = 0; i < 1000 && entered === 0; i++) await new Promise((r) => setImmediate(r))
    expect(entered).toBeGreaterThan(0)
    const waiting = pair.scheduler.settled()
    waiting.catch(() => {})

    let done = false
    const stepDown = Promise.all([pair.orchestrator.deactivate(), pair.scheduler.deactivate()]).then(() => {
      done = true
    })
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    expect(done).toBe(false)
    // Its last pass could still write through a new leader's writer: not until it has ended.
    expect(() => pair.scheduler.activate(countingWriter(h!.store))).toThrow(
      expect.objectContaining({ code: 'NOT_STANDBY' }),
    )
    fail(new Error('leadership of term 1 is over'))
    await stepDown
    term1.open = false
    await expect(waiting).rejects.toSatisfy((e) => isSchedulerError(e, 'STANDBY'))

    // Nothing retries in standby: time passes, nothing is written, the tasks stay pending.
    const calls = entered
    pair.errors.length = 0
    await h.advance(30_000)
    expect(entered).toBe(calls)
    expect(closed.writes).toBe(0)
    expect(pair.errors).toEqual([])
    expect(h.tasks(s.id).map((t) => t.status.state)).toEqual(['pending', 'pending', 'pending'])

    // Activated again, it places them.
    const term2 = countingWriter(h.store)
    pair.orchestrator.activate(term2)
    pair.scheduler.activate(term2)
    await h.advance(1_000)
    expect(h.running(s.id)).toHaveLength(3)
  })

  it('refuses deactivate() on one in standby or stopped', async () => {
    h = await harness()
    const pair = standbyPair(h, 6)
    await expect(pair.scheduler.deactivate()).rejects.toSatisfy((e) => isSchedulerError(e, 'STANDBY'))
    await expect(pair.orchestrator.deactivate()).rejects.toSatisfy((e) => isSchedulerError(e, 'STANDBY'))
    await h.orchestrator.stop()
    await expect(h.orchestrator.deactivate()).rejects.toSatisfy((e) => isSchedulerError(e, 'STOPPED'))
  })

  it('refuses activate() on one that acts or was stopped, and a bad writer or option', async () => {
    h = await harness()
    expect(() => h!.scheduler.activate()).toThrow(expect.objectContaining({ code: 'NOT_STANDBY' }))
    expect(() => h!.orchestrator.activate()).toThrow(expect.objectContaining({ code: 'NOT_STANDBY' }))
    const pair = standbyPair(h, 4)
    expect(() => pair.scheduler.activate({} as never)).toThrow(TypeError)
    expect(() => pair.orchestrator.activate(null as never)).toThrow(TypeError)
    pair.scheduler.activate()
    expect(() => pair.scheduler.activate()).toThrow(expect.objectContaining({ code: 'NOT_STANDBY' }))
    await pair.orchestrator.stop()
    expect(() => pair.orchestrator.activate()).toThrow(expect.objectContaining({ code: 'STOPPED' }))
    expect(() => createScheduler({ store: h!.store, standby: 'yes' as never })).toThrow(TypeError)
    expect(() => createOrchestrator({ store: h!.store, standby: 1 as never })).toThrow(TypeError)
  })
})
