import type { TaskSpec } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrchestrator, rollbackService, updateService } from '../src/index.js'
import { serviceSpec, taskSpec } from './fixtures.js'
import { countBy, type Harness, harness, seeded } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

const S = 1e9 // one second in nanoseconds

describe('replicated orchestrator', () => {
  it('runs slots 1..N spread over the nodes', async () => {
    h = await harness()
    await h.addNodes(3)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 6 } } }))
    await h.settle()
    const running = h.running(s.id)
    expect(running.map((t) => t.slot).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
    expect([...countBy(running, (t) => t.nodeId).values()]).toEqual([2, 2, 2])
  })

  it('scales up into free slots and down from the most loaded nodes', async () => {
    h = await harness()
    const [a, b] = await h.addNodes(2)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 2 } } }))
    await h.settle()
    // a third node joins; scaling to 5 fills slots 3..5, the new node first
    const [c] = await h.addNodes(1)
    await updateService(h.store, s.id, { ...h.getService(s.id).spec, mode: { replicated: { replicas: 5 } } })
    await h.settle()
    expect(
      h
        .running(s.id)
        .map((t) => t.slot)
        .sort(),
    ).toEqual([1, 2, 3, 4, 5])
    expect(h.getService(s.id).updateStatus).toBeUndefined() // scaling is not an update
    const before = countBy(h.running(s.id), (t) => t.nodeId)
    expect([before.get(a!), before.get(b!), before.get(c!)].sort()).toEqual([1, 2, 2])
    await updateService(h.store, s.id, { ...h.getService(s.id).spec, mode: { replicated: { replicas: 3 } } })
    await h.settle()
    const after = countBy(h.running(s.id), (t) => t.nodeId)
    expect([...after.values()]).toEqual([1, 1, 1])
    // removed tasks are shut down and then deleted by the reaper
    expect(h.tasks(s.id)).toHaveLength(3)
  })

  it('restarts a failed task after the restart delay, once the old one stopped', async () => {
    h = await harness()
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('web', { taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 10 * S } }) }),
    )
    await h.settle()
    const [first] = h.running(s.id)
    await h.exec.exit(first!.id, 'failed')
    await h.settle()
    const replacement = h.tasks(s.id).find((t) => t.id !== first!.id)!
    expect(replacement).toMatchObject({ slot: 1, desiredState: 'ready' })
    expect(h.running(s.id)).toHaveLength(0)
    await h.advance(9_000)
    expect(h.running(s.id)).toHaveLength(0)
    await h.advance(1_000)
    expect(h.running(s.id).map((t) => t.id)).toEqual([replacement.id])
  })

  it('restarts a replacement that failed during its restart delay only once that delay passed', async () => {
    // A worker prepares a replacement while it waits (desired `ready`); with its engine away, preparing fails
    // at once. Restarting such a task at once would be a tight loop: a task every few milliseconds, the
    // history reaped, max attempts used up in an instant. As swarm: no restart before the delay elapsed.
    h = await harness()
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('web', {
        taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 10 * S, maxAttempts: 3 } }),
      }),
    )
    await h.settle()
    const [first] = h.running(s.id)
    await h.exec.exit(first!.id, 'failed')
    await h.settle()
    const reject = async (id: string) => {
      await h!.store.update((tx) => {
        const t = tx.get('tasks', id)!
        tx.update('tasks', {
          ...t,
          status: { timestamp: h!.clock.now(), state: 'rejected', message: 'preparing', err: 'engine away' },
        })
      })
      await h!.settle()
    }
    const waiting = () => h!.tasks(s.id).filter((t) => t.desiredState === 'ready')
    const [r1] = waiting()
    expect(r1).toBeDefined()
    await reject(r1!.id)
    expect(h.tasks(s.id)).toHaveLength(2)
    await h.advance(9_000)
    expect(h.tasks(s.id)).toHaveLength(2)
    await h.advance(1_000)
    // the delay passed: r1 is restarted, with a delay of its own
    expect(h.tasks(s.id)).toHaveLength(3)
    const [r2] = waiting()
    expect(r2!.id).not.toBe(r1!.id)
    await reject(r2!.id)
    await h.advance(9_000)
    expect(h.tasks(s.id)).toHaveLength(3)
    await h.advance(1_000)
    const [r3] = waiting()
    expect(h.tasks(s.id)).toHaveLength(4)
    // the engine is back: the third restart runs
    await h.advance(10_000)
    expect(h.running(s.id).map((t) => t.id)).toEqual([r3!.id])
  })

  it('follows the restart condition and max attempts', async () => {
    h = await harness()
    await h.addNodes(1)
    const none = await h.service(
      serviceSpec('none', { taskTemplate: taskSpec({ restartPolicy: { condition: 'none' } }) }),
    )
    const onFailure = await h.service(
      serviceSpec('onf', {
        taskTemplate: taskSpec({ restartPolicy: { condition: 'on-failure', delay: 0 } }),
      }),
    )
    const limited = await h.service(
      serviceSpec('lim', {
        taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 0, maxAttempts: 2 } }),
      }),
    )
    await h.settle()
    await h.exec.exit(h.running(none.id)[0]!.id, 'failed')
    await h.exec.exit(h.running(onFailure.id)[0]!.id, 'complete')
    await h.settle()
    expect(h.tasks(none.id)).toHaveLength(1)
    expect(h.tasks(onFailure.id)).toHaveLength(1)
    for (let i = 0; i < 3; i++) {
      const r = h.running(limited.id)
      if (r[0]) await h.exec.exit(r[0].id, 'failed')
      await h.advance(1)
    }
    expect(h.tasks(limited.id)).toHaveLength(3) // the first task and two restarts
    expect(h.running(limited.id)).toHaveLength(0)
  })

  it('reschedules the tasks of a node that goes down or is drained', async () => {
    h = await harness()
    const [a, b, c] = await h.addNodes(3)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 6 } } }))
    await h.settle()
    await h.setNode(a!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.settle()
    expect(countBy(h.running(s.id), (t) => t.nodeId)).toEqual(
      new Map([
        [b!, 3],
        [c!, 3],
      ]),
    )
    await h.setNode(b!, (n) => ({ ...n, spec: { ...n.spec, availability: 'drain' } }))
    await h.settle()
    expect(countBy(h.running(s.id), (t) => t.nodeId)).toEqual(new Map([[c!, 6]]))
    expect(h.tasks(s.id).filter((t) => t.nodeId === b && t.status.state === 'running')).toHaveLength(0)
  })

  it('starts a replacement only once the task it replaces has stopped', async () => {
    h = await harness()
    const [a] = await h.addNodes(1)
    const s = await h.service(
      serviceSpec('web', { taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 0 } }) }),
    )
    await h.settle()
    const [old] = h.running(s.id)
    await h.exec.stop() // the worker goes quiet: the old task keeps running
    await h.addNodes(1)
    await h.setNode(a!, (n) => ({ ...n, spec: { ...n.spec, availability: 'drain' } }))
    await h.advance(60_000)
    const replacement = h.tasks(s.id).find((t) => t.id !== old!.id)!
    expect(replacement).toMatchObject({ desiredState: 'ready' })
    expect(replacement.status.state).toBe('assigned')
    h.exec.start() // the worker stops the old task; then the replacement starts
    await h.settle()
    expect(h.running(s.id).map((t) => t.id)).toEqual([replacement.id])
  })

  it('does not start new tasks on a paused node', async () => {
    h = await harness()
    const [a, b] = await h.addNodes(2)
    await h.setNode(a!, (n) => ({ ...n, spec: { ...n.spec, availability: 'pause' } }))
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 4 } } }))
    await h.settle()
    expect(countBy(h.running(s.id), (t) => t.nodeId)).toEqual(new Map([[b!, 4]]))
  })

  it('moves tasks off a node that no longer meets their constraints', async () => {
    h = await harness()
    const [a] = await h.addNodes(1, { labels: { disk: 'ssd' } })
    const [b] = await h.addNodes(1, { labels: { disk: 'ssd' } })
    const s = await h.service(
      serviceSpec('db', {
        mode: { replicated: { replicas: 2 } },
        taskTemplate: taskSpec({
          placement: { constraints: ['node.labels.disk==ssd'] },
          restartPolicy: { condition: 'any', delay: 0 },
        }),
      }),
    )
    await h.settle()
    await h.setNode(a!, (n) => ({ ...n, spec: { ...n.spec, labels: { disk: 'hdd' } } }))
    await h.settle()
    expect(h.running(s.id).map((t) => t.nodeId)).toEqual([b, b])
    const rejected = h.tasks(s.id).find((t) => t.nodeId === a)
    expect(rejected?.status).toMatchObject({
      state: 'rejected',
      message: 'task rejected by constraint enforcer',
      err: 'assigned node no longer meets constraints',
    })
  })

  it('rejects the newest tasks of a node whose resources shrank, and places them elsewhere', async () => {
    h = await harness()
    const [a] = await h.addNodes(1, { cpu: 4e9 })
    const s = await h.service(
      serviceSpec('web', {
        mode: { replicated: { replicas: 4 } },
        taskTemplate: taskSpec({
          resources: { reservations: { nanoCPUs: 1e9, memoryBytes: 0 } },
          restartPolicy: { condition: 'any', delay: 0 },
        }),
      }),
    )
    await h.settle()
    expect(h.running(s.id)).toHaveLength(4)
    const [b] = await h.addNodes(1, { cpu: 4e9 })
    await h.setNode(a!, (n) => ({
      ...n,
      description: { ...n.description!, resources: { ...n.description!.resources, nanoCPUs: 2e9 } },
    }))
    await h.advance(1)
    expect(countBy(h.running(s.id), (t) => t.nodeId)).toEqual(
      new Map([
        [a!, 2],
        [b!, 2],
      ]),
    )
    expect(h.tasks(s.id).filter((t) => t.status.state === 'rejected')).toHaveLength(2)
  })

  it('keeps 5 finished tasks per slot (configurable)', async () => {
    h = await harness()
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('crash', { taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 0 } }) }),
    )
    await h.settle()
    for (let i = 0; i < 8; i++) {
      await h.exec.exit(h.running(s.id)[0]!.id, 'failed')
      await h.advance(1)
    }
    const tasks = h.tasks(s.id)
    expect(tasks.filter((t) => t.status.state === 'failed')).toHaveLength(5)
    expect(h.running(s.id)).toHaveLength(1)
  })

  /** A one-replica service whose task fails `times` in a row: its failed tasks kept, and how many run. */
  async function failRepeatedly(
    taskHistory: number,
    restartPolicy: TaskSpec['restartPolicy'],
    times: number,
  ) {
    h = await harness({ taskHistory })
    await h.addNodes(1)
    const s = await h.service(serviceSpec('crash', { taskTemplate: taskSpec({ restartPolicy }) }))
    await h.settle()
    for (let i = 0; i < times; i++) {
      await h.exec.exit(h.running(s.id)[0]!.id, 'failed')
      await h.advance(1)
    }
    const kept = h.tasks(s.id).filter((t) => t.status.state === 'failed').length
    const running = h.running(s.id).length
    await h.stop()
    h = undefined
    return { kept, running }
  }

  it('keeps as many finished tasks per slot as configured', async () => {
    expect((await failRepeatedly(2, { condition: 'any', delay: 0 }, 4)).kept).toBe(2)
  })

  it('never reaps with a negative limit, and keeps max attempts + 1 of a slot with a restart limit', async () => {
    expect(await failRepeatedly(-1, { condition: 'any', delay: 0 }, 7)).toEqual({ kept: 7, running: 1 })
    expect(await failRepeatedly(1, { condition: 'any', delay: 0, maxAttempts: 3 }, 4)).toEqual({
      kept: 4,
      running: 0,
    })
  })

  it('removes the tasks of a deleted service', async () => {
    h = await harness()
    await h.addNodes(2)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 3 } } }))
    await h.settle()
    await h.store.update((tx) => tx.delete('services', s.id))
    await h.settle()
    expect(h.tasks(s.id)).toHaveLength(0)
  })
})

describe('global orchestrator', () => {
  it('runs one task per eligible node and follows joins, drains, label changes and failures', async () => {
    h = await harness()
    const [a, b] = await h.addNodes(2, { labels: { role: 'edge' } })
    const [c] = await h.addNodes(1, { labels: { role: 'core' } })
    const s = await h.service(
      serviceSpec('agent', {
        mode: { global: {} },
        taskTemplate: taskSpec({ placement: { constraints: ['node.labels.role==edge'] } }),
      }),
    )
    await h.settle()
    const on = () =>
      h!
        .running(s.id)
        .map((t) => t.nodeId)
        .sort()
    expect(on()).toEqual([a, b])
    const [d] = await h.addNodes(1, { labels: { role: 'edge' } })
    await h.settle()
    expect(on()).toEqual([a, b, d])
    await h.setNode(c!, (n) => ({ ...n, spec: { ...n.spec, labels: { role: 'edge' } } }))
    await h.setNode(a!, (n) => ({ ...n, spec: { ...n.spec, labels: { role: 'core' } } }))
    await h.settle()
    expect(on()).toEqual([b, c, d])
    await h.setNode(b!, (n) => ({ ...n, spec: { ...n.spec, availability: 'drain' } }))
    await h.setNode(d!, (n) => ({ ...n, status: { ...n.status, state: 'down' } }))
    await h.settle()
    expect(on()).toEqual([c])
    expect(h.tasks(s.id).every((t) => t.slot === 0)).toBe(true)
  })
})

describe('global orchestrator restarts', () => {
  it('restarts a failed global task on its own node, and adds none to a paused node', async () => {
    h = await harness()
    const [a, b] = await h.addNodes(2)
    const s = await h.service(
      serviceSpec('agent', {
        mode: { global: {} },
        taskTemplate: taskSpec({ restartPolicy: { condition: 'any', delay: 1 * S } }),
      }),
    )
    await h.settle()
    const onA = h.running(s.id).find((t) => t.nodeId === a)!
    await h.exec.exit(onA.id, 'failed')
    await h.advance(1_000)
    const again = h.running(s.id).find((t) => t.nodeId === a)
    expect(again?.id).not.toBe(onA.id)
    await h.setNode(b!, (n) => ({ ...n, spec: { ...n.spec, availability: 'pause' } }))
    const [c] = await h.addNodes(1, { availability: 'pause' })
    await h.settle()
    // b keeps its task; c, paused from the start, gets none
    expect(
      h
        .running(s.id)
        .map((t) => t.nodeId)
        .sort(),
    ).toEqual([a, b])
    expect(h.tasks(s.id).some((t) => t.nodeId === c)).toBe(false)
  })
})

describe('rolling update', () => {
  async function webWith(h: Harness, replicas: number, update: Parameters<typeof serviceSpec>[1]) {
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas } }, ...update }))
    await h.settle()
    return s
  }

  it('updates parallelism slots at a time with a delay, and completes', async () => {
    h = await harness()
    await h.addNodes(3)
    const s = await webWith(h, 4, { updateConfig: { parallelism: 2, delay: 10 * S, monitor: 1 * S } })
    const v1 = h.getService(s.id).specVersion.index
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
    })
    await h.settle()
    expect(h.getService(s.id).updateStatus).toMatchObject({
      state: 'updating',
      message: 'update in progress',
    })
    const v2 = h.getService(s.id).specVersion.index
    const atVersion = (v: number) => h!.running(s.id).filter((t) => t.specVersion?.index === v).length
    expect(atVersion(v2)).toBe(2)
    expect(atVersion(v1)).toBe(2)
    await h.advance(10_000)
    expect(atVersion(v2)).toBe(4)
    await h.advance(2_000)
    expect(h.getService(s.id).updateStatus).toMatchObject({ state: 'completed', message: 'update completed' })
  })

  it('is taken over by a new orchestrator halfway through', async () => {
    h = await harness()
    await h.addNodes(2)
    const s = await webWith(h, 4, { updateConfig: { parallelism: 1, delay: 10 * S, monitor: 0 } })
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
    })
    await h.advance(10_000)
    const startedAt = h.getService(s.id).updateStatus?.startedAt
    await h.orchestrator.stop() // the leader changes
    const next = createOrchestrator({ store: h.store, clock: h.clock, random: seeded(99) })
    next.start()
    try {
      await h.advance(60_000)
      expect(h.getService(s.id).updateStatus).toMatchObject({ state: 'completed', startedAt })
      expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual([
        'nginx:2',
        'nginx:2',
        'nginx:2',
        'nginx:2',
      ])
    } finally {
      await next.stop()
    }
  })

  it('starts the new task before stopping the old one with start-first', async () => {
    h = await harness()
    await h.addNodes(1)
    const s = await webWith(h, 1, { updateConfig: { parallelism: 1, order: 'start-first', monitor: 0 } })
    const [old] = h.running(s.id)
    let both = false
    const w = h.store.watch({ table: 'tasks' })
    void (async () => {
      for await (const _ of w) if (h!.running(s.id).length === 2) both = true
    })()
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
    })
    await h.advance(1)
    w.close()
    expect(both).toBe(true)
    expect(h.running(s.id).map((t) => t.id)).not.toContain(old!.id)
    expect(h.running(s.id)).toHaveLength(1)
  })

  it('does not restart tasks when only the placement changed and their nodes still qualify', async () => {
    h = await harness()
    await h.addNodes(2, { labels: { zone: 'east' } })
    const s = await webWith(h, 2, { updateConfig: { parallelism: 1, monitor: 0 } })
    const before = h
      .running(s.id)
      .map((t) => t.id)
      .sort()
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ placement: { constraints: ['node.labels.zone==east'] } }),
    })
    await h.advance(10_000)
    expect(
      h
        .running(s.id)
        .map((t) => t.id)
        .sort(),
    ).toEqual(before)
    expect(h.getService(s.id).updateStatus).toBeUndefined()
  })

  it('falls back to stop-first when no node can run both tasks', async () => {
    h = await harness()
    await h.addNodes(1)
    const s = await webWith(h, 1, {
      updateConfig: { parallelism: 1, order: 'start-first', monitor: 0 },
      taskTemplate: taskSpec({ placement: { maxReplicas: 1 } }),
    })
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' }, placement: { maxReplicas: 1 } }),
    })
    await h.advance(10_000)
    expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual(['nginx:2'])
    expect(h.getService(s.id).updateStatus?.state).toBe('completed')
  })

  it('pauses on failure, as swarm words it', async () => {
    h = await harness({ behavior: (t) => (t.spec.containerSpec.image === 'bad' ? 'fail' : 'run') })
    await h.addNodes(2)
    const s = await webWith(h, 4, { updateConfig: { parallelism: 1, failureAction: 'pause' } })
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'bad' } }),
    })
    await h.advance(1)
    const st = h.getService(s.id).updateStatus
    expect(st?.state).toBe('paused')
    expect(st?.message).toMatch(/^update paused due to failure or early termination of task [0-9a-z]{25}$/)
    // Updating the service again (here: a fixed image) clears the pause and starts a new update.
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
    })
    await h.advance(60_000)
    expect(h.getService(s.id).updateStatus?.state).toBe('completed')
    expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual([
      'nginx:2',
      'nginx:2',
      'nginx:2',
      'nginx:2',
    ])
  })

  it('rolls back when failures exceed the ratio, and completes the rollback', async () => {
    h = await harness({ behavior: (t) => (t.spec.containerSpec.image === 'bad' ? 'fail' : 'run') })
    await h.addNodes(2)
    const s = await webWith(h, 4, {
      updateConfig: { parallelism: 1, failureAction: 'rollback', maxFailureRatio: 0.25 },
      rollbackConfig: { parallelism: 0 },
    })
    const v1 = h.getService(s.id).specVersion.index
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({
        containerSpec: { image: 'bad' },
        restartPolicy: { condition: 'any', delay: 0 },
      }),
    })
    await h.advance(60_000)
    const svc = h.getService(s.id)
    expect(svc.updateStatus).toMatchObject({ state: 'rollback_completed', message: 'rollback completed' })
    expect(svc.specVersion.index).toBe(v1)
    expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual([
      'nginx:alpine',
      'nginx:alpine',
      'nginx:alpine',
      'nginx:alpine',
    ])
  })

  it('rolls back by hand to the previous spec', async () => {
    h = await harness()
    await h.addNodes(2)
    const s = await webWith(h, 2, { updateConfig: { parallelism: 0, monitor: 0 } })
    await updateService(h.store, s.id, {
      ...h.getService(s.id).spec,
      taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
    })
    await h.advance(1)
    expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual(['nginx:2', 'nginx:2'])
    await rollbackService(h.store, s.id, { now: h.clock.now() })
    expect(h.getService(s.id).updateStatus).toMatchObject({
      state: 'rollback_started',
      message: 'manually requested rollback',
    })
    await h.advance(20_000) // swarm's default rollback config: one task at a time, 5 s monitor
    expect(h.getService(s.id).updateStatus?.state).toBe('rollback_completed')
    expect(h.running(s.id).map((t) => t.spec.containerSpec.image)).toEqual(['nginx:alpine', 'nginx:alpine'])
    await expect(rollbackService(h.store, 'nope')).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })
})
