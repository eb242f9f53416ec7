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

/** A standby pair over `h`'s store whose writes go through `writer` (closed: a write is an error). */
function standbyPair(h: Harness, seed: number, writer = countingWriter(h.store)) {
  const errors: Error[] = []
  const store: SchedulerStore = {
    view: h.store.view.bind(h.store),
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
    pair.orchestrator.activate()
    pair.scheduler.activate()
    expect(pair.orchestrator.standby).toBe(false)
    await h.settle()
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
