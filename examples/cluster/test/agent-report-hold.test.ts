// The agent's status reports: the states a task only passes through (accepted, preparing, starting) may wait
// for the next one, so that a task that starts quickly is reported in one call; running and every end leave
// at once; a state that lasts is reported once the hold is over.
import { afterEach, describe, expect, it } from 'vitest'
import {
  Agent,
  SIMULATE_LABELS,
  type SimulatedExecutor,
  simulatedExecutor,
  type TaskStatusUpdate,
} from '../src/index.js'
import { fakeDispatcher, task, testNodeInfo } from './agent-fakes.js'
import { waitFor } from './helpers.js'

describe('Agent status reports', () => {
  let agent: Agent | undefined
  let executor: SimulatedExecutor | undefined
  afterEach(async () => {
    await agent?.stop()
    await executor?.close()
    agent = undefined
    executor = undefined
  })

  /** An agent on a simulated executor, with every status call recorded (its updates, and when). */
  async function start(stepMs: number, reportHoldMs?: number) {
    const d = fakeDispatcher()
    const calls: { at: number; updates: TaskStatusUpdate[] }[] = []
    const updateStatus = d.api.updateStatus
    d.api.updateStatus = (id, updates) => {
      calls.push({ at: Date.now(), updates: [...updates] })
      return updateStatus(id, updates)
    }
    executor = simulatedExecutor({ hostname: 'n1', addr: '127.0.0.1', stepMs, serveTasks: false })
    agent = new Agent({
      nodeId: 'node1',
      dispatcher: d.api,
      info: testNodeInfo('n1'),
      addr: '127.0.0.1',
      executor,
      ...(reportHoldMs !== undefined ? { reportHoldMs } : {}),
    })
    await agent.start()
    return { d, calls }
  }

  it('reports a task that starts within the hold in one call, every state in order', async () => {
    const { d, calls } = await start(10)
    d.assign([task('t1')])
    await waitFor(() => d.state('t1')?.state === 'running', 't1 running')
    expect(d.states('t1')).toEqual(['accepted', 'preparing', 'starting', 'running'])
    expect(calls.map((c) => c.updates.map((u) => u.state))).toEqual([
      ['accepted', 'preparing', 'starting', 'running'],
    ])
  })

  it('sends running and ends at once, with the states held before them', async () => {
    // A hold far longer than the test: only a state that must leave at once can bring the reports.
    const { d, calls } = await start(10, 600_000)
    const started = Date.now()
    d.assign([
      task('ok'),
      task('bad', { labels: { [SIMULATE_LABELS.prepareError]: 'no such image' } }, { slot: 2 }),
    ])
    await waitFor(
      () => d.state('ok')?.state === 'running' && d.state('bad')?.state === 'rejected',
      'running and rejected',
      5000,
    )
    expect(Date.now() - started).toBeLessThan(5000)
    expect(d.states('ok')).toEqual(['accepted', 'preparing', 'starting', 'running'])
    expect(d.states('bad')).toEqual(['accepted', 'preparing', 'rejected'])
    expect(calls.length).toBeLessThanOrEqual(2)
  })

  it('reports a state that lasts once the hold is over', async () => {
    // Preparing takes a minute: accepted and preparing go after the hold, not with running.
    const { d, calls } = await start(60_000, 100)
    const started = Date.now()
    d.assign([task('slow')])
    await waitFor(() => d.state('slow')?.state === 'preparing', 'preparing reported', 5000)
    expect(calls.map((c) => c.updates.map((u) => u.state))).toEqual([['accepted', 'preparing']])
    expect(calls[0]!.at - started).toBeGreaterThanOrEqual(100)
  })

  it('sends each report at once with reportHoldMs 0', async () => {
    const { d, calls } = await start(50, 0)
    d.assign([task('t1')])
    await waitFor(() => d.state('t1')?.state === 'running', 't1 running')
    expect(d.states('t1')).toEqual(['accepted', 'preparing', 'starting', 'running'])
    // accepted and preparing leave together, starting after a step, running after another.
    expect(calls.length).toBe(3)
  })

  it('refuses a negative hold', () => {
    const d = fakeDispatcher()
    expect(
      () =>
        new Agent({
          nodeId: 'n',
          dispatcher: d.api,
          info: testNodeInfo('n1'),
          addr: '127.0.0.1',
          reportHoldMs: -1,
        }),
    ).toThrow(/reportHoldMs/)
  })
})
