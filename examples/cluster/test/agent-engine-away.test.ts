// An agent whose engine goes away and comes back: what it could not stop or remove while the engine was
// away (the containers of tasks that failed, or that the managers reaped meanwhile) is stopped and removed
// once the engine answers again, without any new assignment to prompt it.
import { afterEach, describe, expect, it } from 'vitest'
import {
  Agent,
  type Controller,
  type Executor,
  ExecutorError,
  type SimulatedExecutor,
  simulatedExecutor,
} from '../src/index.js'
import { fakeDispatcher, task, testNodeInfo } from './agent-fakes.js'
import { waitFor } from './helpers.js'

const GONE = 'Cannot connect to the Docker daemon at unix:///test/docker.sock. Is the docker daemon running?'
const GATED = new Set(['inspect', 'prepare', 'start', 'shutdown', 'terminate', 'remove', 'logs'])

/**
 * The simulated executor behind an engine that can go away, as the Docker executor sees one: every call
 * fails with `ENGINE_UNAVAILABLE` and the waits under way break; the tasks themselves keep running.
 */
function engineThatGoesAway(inner: SimulatedExecutor) {
  let away = false
  const waits = new Set<() => void>()
  const gone = () => new ExecutorError('ENGINE_UNAVAILABLE', GONE)
  const gate = <T>(call: () => Promise<T>): Promise<T> => (away ? Promise.reject(gone()) : call())
  const wrap = (c: Controller): Controller =>
    new Proxy(c, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown
        if (typeof v !== 'function') return v
        const f = v as (...args: unknown[]) => Promise<unknown>
        if (prop === 'wait')
          return (...args: unknown[]) =>
            gate(
              () =>
                new Promise((resolve, reject) => {
                  const cut = () => reject(gone())
                  waits.add(cut)
                  f.apply(target, args)
                    .then(resolve, reject)
                    .finally(() => waits.delete(cut))
                }),
            )
        if (GATED.has(String(prop))) return (...args: unknown[]) => gate(() => f.apply(target, args))
        return f.bind(target)
      },
    })
  const executor: Executor = {
    kind: 'simulated',
    describe: (o) => gate(() => inner.describe(o)),
    controller: (t) => wrap(inner.controller(t)),
    adoptable: (id, o) => gate(() => inner.adoptable(id, o)),
    removeOrphan: (id, o) => gate(() => inner.removeOrphan(id, o)),
    close: () => inner.close(),
  }
  return {
    executor,
    goAway() {
      away = true
      for (const cut of waits) cut()
    },
    comeBack() {
      away = false
    },
  }
}

describe('Agent with an engine that goes away', () => {
  let agent: Agent | undefined
  let inner: SimulatedExecutor | undefined
  afterEach(async () => {
    await agent?.stop()
    await inner?.close()
    agent = undefined
  })

  async function start() {
    const d = fakeDispatcher()
    inner = simulatedExecutor({ hostname: 'n1', addr: '127.0.0.1', stepMs: 10 })
    const engine = engineThatGoesAway(inner)
    agent = new Agent({
      nodeId: 'node1',
      dispatcher: d.api,
      info: testNodeInfo('n1'),
      addr: '127.0.0.1',
      executor: engine.executor,
    })
    await agent.start()
    return { d, engine, inner }
  }

  /** What the (real, simulated) executor holds of a task. */
  const seen = async (sim: SimulatedExecutor, id: string) => (await sim.controller(task(id)).inspect()).state

  it('stops a failed task that still runs once the engine is back', async () => {
    const { d, engine, inner: sim } = await start()
    d.assign([task('a')])
    await waitFor(() => d.state('a')?.state === 'running', 'a running')
    engine.goAway()
    await waitFor(() => d.state('a')?.state === 'failed', 'a failed with the engine gone')
    expect(d.state('a')?.err).toBe(GONE)
    // The managers shut it down (and start its replacement elsewhere): stopping it fails for now.
    d.assign([task('a', {}, { state: 'failed', desiredState: 'shutdown' })])
    await waitFor(async () => (await seen(sim, 'a')) === 'running', 'a still running')
    engine.comeBack()
    await waitFor(async () => (await seen(sim, 'a')) === 'exited', 'a stopped', 15_000)
  })

  it('removes the tasks reaped while the engine was away once it is back', async () => {
    const { d, engine, inner: sim } = await start()
    d.assign([task('a'), task('b')])
    await waitFor(
      () => d.state('a')?.state === 'running' && d.state('b')?.state === 'running',
      'a, b running',
    )
    engine.goAway()
    await waitFor(() => d.state('a')?.state === 'failed', 'a failed with the engine gone')
    // The managers reaped `a` meanwhile: removing it fails for now.
    d.assign([task('b', {}, { state: 'failed', desiredState: 'shutdown' })])
    await waitFor(() => agent!.tasks().length === 1, 'a no longer held')
    expect(sim.taskIds().sort()).toEqual(['a', 'b'])
    engine.comeBack()
    await waitFor(() => sim.taskIds().join() === 'b', 'a removed', 15_000)
  })
})
