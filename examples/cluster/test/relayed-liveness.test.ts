// The leader's judgement of nodes whose heartbeats a follower relays (heartbeat-relay.ts). The leader hears
// such a node only when its relayer's call arrives; a relayer that is starved, or whose calls time out, is
// late with all of its nodes at once. In session 13's leader kill with a 3 s CheckQuorum window (run e-2),
// the leader stayed while its follower was starved and marked about 3,900 live nodes down because their
// heartbeats reached it late. The leader now knows which manager relays each node and judges the node by
// that manager's calls; a relayer that is gone still has its nodes marked down, within a bound.
// On a fake clock (the dispatcher's stall clock, its check timer): each test runs in milliseconds.
import { ClusterStore } from '@swarmkit/store'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Dispatcher } from '../src/index.js'
import { readyWorker } from './node-fixtures.js'

const P = 1000
const cleanups: (() => void)[] = []
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] })
})
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
  vi.useRealTimers()
})

async function cluster(ids: string[], raftHears: (id: string) => boolean = () => false) {
  const store = new ClusterStore()
  await store.update((tx) => {
    for (const id of ids) tx.create('nodes', readyWorker(id))
  })
  const downAt = new Map<string, number>()
  const start = performance.now()
  const watch = store.watch({
    table: 'nodes',
    filter: (e) => {
      if (e.object.status.state === 'down' && !downAt.has(e.object.id))
        downAt.set(e.object.id, performance.now() - start)
      return false
    },
  })
  const dispatcher = new Dispatcher({ store, heartbeatPeriodMs: P, raftHears })
  cleanups.push(() => {
    watch.close()
    dispatcher.close()
  })
  // Tracking started long ago: the new leader's grace is over before the tests' own timeline.
  dispatcher.startTracking()
  for (const id of ids) void dispatcher.heartbeat(id)
  return { store, dispatcher, downAt, start }
}

/** Moves the fake clock to `ms` after `start`, step by step (the dispatcher's checks run as they fall due). */
async function until(start: number, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(Math.max(0, start + ms - performance.now()))
}

describe('nodes whose heartbeats another manager relays', () => {
  it('are not marked down while their relayer, which raft hears, is late with its calls', async () => {
    const { dispatcher, downAt, start } = await cluster(['a', 'b', 'c'], (id) => id === 'm2')
    await until(start, 0.5 * P)
    dispatcher.heardElsewhere(['a', 'b'], 'm2')
    await until(start, 1.2 * P)
    dispatcher.heardElsewhere(['b'], 'm2')
    // The relayer is starved: its next call comes 4.3 periods later, with everything it heard meanwhile.
    // Node a was last heard 5 periods before it (the grace is 3), node c, heard here, is silent.
    await until(start, 5.5 * P)
    dispatcher.heardElsewhere(['a', 'b'], 'm2')
    await until(start, 8 * P)
    expect(downAt.has('a')).toBe(false)
    expect(downAt.has('b')).toBe(false)
    expect(downAt.get('c')).toBeGreaterThan(3 * P)
  })

  it('are marked down once their relayer has reported the whole grace without them', async () => {
    const { dispatcher, downAt, start } = await cluster(['a', 'b'])
    dispatcher.heardElsewhere(['a', 'b'], 'm2')
    // The relayer calls every fifth of a period; node a is not in any call after the first.
    for (let t = 0.2 * P; t <= 8 * P; t += 0.2 * P) {
      await until(start, t)
      dispatcher.heardElsewhere(['b'], 'm2')
    }
    expect(downAt.has('b')).toBe(false)
    // The bound: a grace period and a check period, and one relay interval.
    const at = downAt.get('a')
    expect(at).toBeGreaterThan(3 * P)
    expect(at).toBeLessThanOrEqual(4 * P + 0.2 * P)
  })

  it('are marked down when their relayer is gone (no call, raft does not hear it), within 4 periods of its last call', async () => {
    const { dispatcher, downAt, start } = await cluster(['a', 'b'])
    await until(start, 0.5 * P)
    dispatcher.heardElsewhere(['a', 'b'], 'm2')
    await until(start, 6 * P)
    for (const id of ['a', 'b']) {
      expect(downAt.get(id)).toBeGreaterThan(0.5 * P + 3 * P)
      expect(downAt.get(id)).toBeLessThanOrEqual(0.5 * P + 4 * P)
    }
  })

  it('are marked down when raft hears their relayer but its calls stop, within 7 periods of its last call', async () => {
    const { dispatcher, downAt, start } = await cluster(['a'], (id) => id === 'm2')
    await until(start, 0.5 * P)
    dispatcher.heardElsewhere(['a'], 'm2')
    await until(start, 10 * P)
    expect(downAt.get('a')).toBeGreaterThan(0.5 * P + 6 * P)
    expect(downAt.get('a')).toBeLessThanOrEqual(0.5 * P + 7 * P)
  })

  it('are judged by their new relayer, or as heard here, once they move', async () => {
    const { dispatcher, downAt, start } = await cluster(['a', 'b'], (id) => id === 'm2')
    await until(start, 0.5 * P)
    dispatcher.heardElsewhere(['a', 'b'], 'm2')
    // Both move away from m2 (raft still hears it, so m2's silence alone would hold them): a to m3, which
    // keeps relaying others, b to the leader itself; then both fall silent.
    await until(start, 0.7 * P)
    dispatcher.heardElsewhere(['a'], 'm3')
    void dispatcher.heartbeat('b')
    for (let t = 0.9 * P; t <= 6 * P; t += 0.2 * P) {
      await until(start, t)
      dispatcher.heardElsewhere(['x'], 'm3')
    }
    expect(downAt.get('a')).toBeLessThanOrEqual(0.7 * P + 4 * P + 0.2 * P)
    expect(downAt.get('b')).toBeLessThanOrEqual(0.7 * P + 4 * P)
  })
})

describe('the nodes a new leader has not heard from', () => {
  it('are those ready at its start without a heartbeat, relay or agent session here since', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      for (const id of ['direct', 'relayed', 'connected', 'silent']) tx.create('nodes', readyWorker(id))
    })
    const dispatcher = new Dispatcher({ store, heartbeatPeriodMs: P })
    cleanups.push(() => dispatcher.close())
    // Not leading yet: nothing to say.
    expect(dispatcher.unheard('silent')).toBe(false)
    void dispatcher.heartbeat('direct')
    dispatcher.startTracking(2)
    expect(dispatcher.unheard('direct')).toBe(true) // heard before this leadership: not since
    void dispatcher.heartbeat('direct')
    dispatcher.heardElsewhere(['relayed'], 'm2')
    dispatcher.sessions.set('connected', {} as never)
    expect(['direct', 'relayed', 'connected', 'silent'].filter((id) => dispatcher.unheard(id))).toEqual([
      'silent',
    ])
    // A node that joins during the leadership is not one the dead leader held.
    await store.update((tx) => tx.create('nodes', readyWorker('joined')))
    expect(dispatcher.unheard('joined')).toBe(false)
    dispatcher.stopTracking()
    expect(dispatcher.unheard('silent')).toBe(false)
  })
})
