// A restart delay's timer that fires a moment early must still start the replacement. Node runs timers by the
// event loop's cached time, which lags Date.now(): on a loaded machine a timer fires before its time by the
// wall clock, and the clock can pass that time between two reads in the same callback. The orchestrator then
// woke the service "now" without the slot waiting for that time; the slot kept its due time with no timer
// left to act on it, and the replacement stayed `ready` until something else reconciled every slot
// (examples/cluster swarm-update.test.ts's history test, 1 run in 14 under load).
import { clusterStore } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Clock,
  createOrchestrator,
  createScheduler,
  createService,
  createTestExecutor,
  type ManualClock,
  manualClock,
} from '../src/index.js'
import { fresh, node, serviceSpec, taskSpec } from './fixtures.js'

const MS = 1e6
const turn = () => new Promise<void>((r) => setImmediate(r))
const settle = async () => {
  for (let i = 0; i < 200; i++) await turn()
}

/**
 * The orchestrator's wall clock over `base` (the event loop's time): its first timer fires 1 ms before its
 * time by this clock, and the clock moves on 1 ms during that callback (its second read on) and stays 1 ms
 * ahead of `base` from then on.
 */
function earlyFirstTimer(base: ManualClock): Clock & { fired: boolean } {
  let reads: number | undefined
  let ahead = 0
  const c = {
    fired: false,
    now: () => {
      if (reads !== undefined && reads++ > 0) ahead = 1
      return base.now() + ahead
    },
    setTimer(ms: number, fn: () => void) {
      if (c.fired) return base.setTimer(ms, fn)
      return base.setTimer(Math.max(0, ms - 1), () => {
        if (c.fired) return fn()
        c.fired = true
        reads = 0
        try {
          fn()
        } finally {
          reads = undefined
        }
      })
    },
  }
  return c
}

const stops: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const s of stops.splice(0)) await s()
})

/** A node, the orchestrator on `earlyFirstTimer`, the rest on the manual clock; `behavior` decides each run. */
async function cluster(behavior: () => 'fail' | 'run', replicas: number) {
  const base = manualClock()
  const clock = earlyFirstTimer(base)
  const store = clusterStore({ clock: base.now })
  const exec = createTestExecutor({ store, clock: base, behavior })
  const scheduler = createScheduler({ store, clock: base })
  const orchestrator = createOrchestrator({ store, clock })
  const errors: Error[] = []
  orchestrator.on('error', (e) => errors.push(e))
  for (const c of [exec, scheduler, orchestrator]) c.start()
  stops.push(async () => {
    await exec.stop()
    await orchestrator.stop()
    await scheduler.stop()
    store.close()
  })
  await store.update((tx) => tx.create('nodes', fresh(node('n1'))))
  const s = await createService(
    store,
    serviceSpec('crashy', {
      mode: { replicated: { replicas } },
      taskTemplate: taskSpec({
        restartPolicy: { condition: 'on-failure', delay: 100 * MS, maxAttempts: 2 },
      }),
    }),
  )
  await settle()
  return {
    base,
    clock,
    exec,
    errors,
    tasks: () => store.view((tx) => tx.find('tasks', { serviceId: s.id })),
    /** Time passes, one timer at a time, then 10 s more. */
    async runTimers() {
      for (let i = 0; i < 50 && base.pendingTimers > 0; i++) {
        base.advance(Math.max(0, (base.nextTimer ?? base.now()) - base.now()))
        await settle()
      }
      base.advance(10_000)
      await settle()
    },
  }
}

describe('restart delay', () => {
  it('starts the replacement when its delay timer fires a moment early', async () => {
    let runs = 0
    const c = await cluster(() => (runs++ === 0 ? 'fail' : 'run'), 1)
    // The first task failed; its replacement waits for the restart delay.
    expect(
      c
        .tasks()
        .map((t) => t.desiredState)
        .sort(),
    ).toEqual(['ready', 'shutdown'])
    await c.runTimers()
    expect(c.clock.fired).toBe(true)
    expect(c.errors).toEqual([])
    const replacement = c.tasks().find((t) => t.desiredState !== 'shutdown')
    expect(replacement?.desiredState).toBe('running')
    expect(replacement?.status.state).toBe('running')
  })

  it('keeps a timer for a later slot when an early timer wakes the service for an earlier one', async () => {
    const c = await cluster(() => 'run', 2)
    const [a, b] = c.tasks().sort((x, y) => x.slot - y.slot)
    expect(c.tasks().every((t) => t.status.state === 'running')).toBe(true)
    // Slot 1's restart is due at T+100, slot 2's at T+150: the service's one timer is slot 1's.
    await c.exec.exit(a!.id, 'failed')
    await settle()
    c.base.advance(50)
    await c.exec.exit(b!.id, 'failed')
    await settle()
    await c.runTimers()
    expect(c.clock.fired).toBe(true)
    expect(c.errors).toEqual([])
    const up = c.tasks().filter((t) => t.desiredState !== 'shutdown')
    expect(up.map((t) => `${t.slot} ${t.desiredState} ${t.status.state}`).sort()).toEqual([
      '1 running running',
      '2 running running',
    ])
  })
})
