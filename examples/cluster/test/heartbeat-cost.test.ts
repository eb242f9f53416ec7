// What a heartbeat costs, counted rather than timed. Thousands of simulated workers share a worker host
// process: each agent's heartbeat had its own Node timer at a random phase, so a host and its manager woke
// once per heartbeat (bench/heartbeats: 0.4-0.5 ms of CPU per heartbeat on both sides together). The agents'
// heartbeats now run on a coarse grid (coarse-timer.ts) and leave together, a few turns of the event loop per
// grain instead of one per heartbeat. On the manager, a ready node's heartbeat is answered without a promise,
// with one answer object per store version and role.
import { ClusterStore } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { Agent } from '../src/agent.js'
import { COARSE_GRAIN_MS, coarseTimeout } from '../src/coarse-timer.js'
import { Dispatcher } from '../src/dispatcher.js'
import { fakeDispatcher } from './agent-fakes.js'
import { waitFor } from './helpers.js'

const stops: (() => unknown)[] = []
afterEach(async () => {
  for (const s of stops.splice(0)) await s()
})

/** A counter that moves once per turn of the event loop (the check phase runs once per turn). */
function loopTurns() {
  let turn = 0
  let on = true
  const tick = () => {
    turn++
    if (on) setImmediate(tick)
  }
  setImmediate(tick)
  stops.push(() => {
    on = false
  })
  return () => turn
}

describe('coarse timers', () => {
  it('run a callback no earlier than asked and at most a grain later, and not once cancelled', async () => {
    const asked = Date.now()
    const ran: number[] = []
    coarseTimeout(() => ran.push(Date.now()), 120)
    const cancelled = coarseTimeout(() => ran.push(-1), 120)
    cancelled.cancel()
    await waitFor(() => ran.length === 1, 'the callback ran')
    await new Promise((r) => setTimeout(r, 2 * COARSE_GRAIN_MS))
    expect(ran).toHaveLength(1)
    expect(ran[0]! - asked).toBeGreaterThanOrEqual(120)
    // (a loaded machine may run any timer late; the grid itself adds at most a grain)
  })

  it('runs the callbacks due in one grain in one turn of the event loop', async () => {
    const turn = loopTurns()
    const turns = new Set<number>()
    let ran = 0
    for (let i = 0; i < 500; i++)
      coarseTimeout(
        () => {
          turns.add(turn())
          ran++
        },
        200 + (i % 40),
      )
    await waitFor(() => ran === 500, 'every callback ran')
    // 40 distinct delays over 40 ms: one or two grains, never 40 turns.
    expect(turns.size).toBeLessThanOrEqual(2)
  })
})

describe('heartbeats of many agents in one process', () => {
  it('leave in a few turns of the event loop per grain, not one turn per heartbeat', async () => {
    const turn = loopTurns()
    const beats: number[] = []
    const agents: Agent[] = []
    for (let i = 0; i < 300; i++) {
      const fake = fakeDispatcher()
      const api = {
        ...fake.api,
        heartbeat: async () => {
          beats.push(turn())
          return { periodMs: 1000 }
        },
      }
      const agent = new Agent({ nodeId: `n${i}`, dispatcher: api, info: fakeInfo(i), addr: '127.0.0.1' })
      agents.push(agent)
      stops.push(() => agent.stop())
    }
    await Promise.all(agents.map((a) => a.start()))
    // The first heartbeat after a second, then every 1.0-1.1 s: about 600 heartbeats in 3 s.
    await waitFor(() => beats.length >= 600, '600 heartbeats', 20_000)
    const turns = new Set(beats).size
    // Each round spreads over a tenth of the period (the jitter), 100 ms here: on the grid that is at most
    // three grains a round. With a timer each (before) a round took a turn per millisecond of its spread.
    expect(turns).toBeLessThanOrEqual(10)
  }, 30_000)
})

describe('the heartbeat grain option', () => {
  it('refuses a grain below 1 ms when the agent is made, not in a timer later', () => {
    const { api } = fakeDispatcher()
    for (const heartbeatGrainMs of [0, -5, Number.NaN])
      expect(
        () =>
          new Agent({ nodeId: 'n', dispatcher: api, info: fakeInfo(0), addr: '127.0.0.1', heartbeatGrainMs }),
      ).toThrow(RangeError)
  })
})

describe('the dispatcher answering a heartbeat', () => {
  it('answers a ready node at once (no promise), with one answer object per store version and role', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      for (const id of ['w1', 'w2'])
        tx.create('nodes', {
          id,
          spec: { labels: {}, role: 'worker', availability: 'active' },
          role: 'worker',
          status: { state: 'ready', addr: '127.0.0.1' },
        } as never)
    })
    const d = new Dispatcher({ store })
    stops.push(() => d.close())
    const a = d.heard('w1')
    expect(a).not.toBeInstanceOf(Promise)
    expect(a).toEqual({ periodMs: 5000, managers: [], role: 'worker' })
    expect(d.heard('w2')).toBe(a)
    expect(await d.heartbeat('w2')).toBe(a)
    // A changed store answers anew.
    await store.update((tx) => {
      const n = tx.get('nodes', 'w2')!
      tx.update('nodes', { ...n, spec: { ...n.spec, labels: { x: 'y' } } })
    })
    expect(d.heard('w1')).not.toBe(a)
    expect(d.heard('w1')).toEqual(a)
  })

  it('makes a node marked down ready again before it answers', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('nodes', {
        id: 'w1',
        spec: { labels: {}, role: 'worker', availability: 'active' },
        role: 'worker',
        status: { state: 'down', addr: '127.0.0.1' },
      } as never)
    })
    const d = new Dispatcher({ store })
    stops.push(() => d.close())
    const answer = d.heard('w1')
    expect(answer).toBeInstanceOf(Promise)
    expect(await answer).toEqual({ periodMs: 5000, managers: [], role: 'worker' })
    expect(store.view((tx) => tx.get('nodes', 'w1')!.status.state)).toBe('ready')
  })
})

function fakeInfo(i: number) {
  return {
    hostname: `sim-${i}`,
    platform: { os: 'linux', architecture: 'x86_64' },
    resources: { nanoCPUs: 1e9, memoryBytes: 2 ** 30 },
    engineVersion: 'simulated',
  }
}
