// A follower's workers' heartbeats reach the leader together (heartbeat-relay.ts): one call per interval
// carries every node heard meanwhile, a call may take a whole heartbeat period, and the nodes of a failed
// call go again with the next one. One call per heartbeat (a thousand a second at 5,000 nodes) timed out
// at 2 s on a busy leader, and nodes whose heartbeats kept arriving at a follower were marked down.
import type { Node } from '@swarmkit/store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { heartbeatRelay } from '../src/heartbeat-relay.js'
import type { ClusterNode } from '../src/index.js'
import { remoteDispatcher } from '../src/remote-dispatcher.js'
import { closeNodes, node, ok, waitFor } from './helpers.js'

describe('the heartbeat relay', () => {
  it('hands on every node heard during an interval in one call, each node once', async () => {
    const calls: { ids: readonly string[]; timeoutMs: number }[] = []
    const relay = heartbeatRelay({
      send: async (ids, timeoutMs) => {
        calls.push({ ids, timeoutMs })
      },
      periodMs: () => 5000,
      intervalMs: () => 20,
    })
    for (let round = 0; round < 3; round++) for (let i = 0; i < 500; i++) relay.seen(`n${i}`)
    await waitFor(() => calls.length === 1 && relay.pending === 0, 'one call')
    expect(calls[0]!.ids.length).toBe(500)
    expect(new Set(calls[0]!.ids).size).toBe(500)
    // The bound follows the heartbeat period (not a fixed 2 s).
    expect(calls[0]!.timeoutMs).toBe(5000)
    relay.close()
  })

  it('sends the nodes of a failed call again with the next one, one call in flight at a time', async () => {
    const calls: { ids: string[]; answer: (ok: boolean) => void }[] = []
    let inFlight = 0
    let most = 0
    const relay = heartbeatRelay({
      send: (ids) =>
        new Promise<void>((resolve, reject) => {
          most = Math.max(most, ++inFlight)
          calls.push({
            ids: [...ids].sort(),
            answer: (ok) => {
              inFlight--
              if (ok) resolve()
              else reject(new Error('leader busy'))
            },
          })
        }),
      periodMs: () => 1000,
      intervalMs: () => 5,
    })
    relay.seen('a')
    await waitFor(() => calls.length === 1, 'first call')
    relay.seen('b') // heard while the first call is in flight
    calls[0]!.answer(false)
    await waitFor(() => calls.length === 2, 'second call')
    calls[1]!.answer(false)
    await waitFor(() => calls.length === 3, 'third call')
    calls[2]!.answer(true)
    await waitFor(() => relay.pending === 0 && inFlight === 0, 'all handed on')
    expect(calls.map((c) => c.ids)).toEqual([['a'], ['a', 'b'], ['a', 'b']])
    expect(most).toBe(1)
    relay.close()
  })
})

describe('the heartbeat relay on a change of leader', () => {
  it('hands on again every node heard within the window, and forgets the older ones', async () => {
    const calls: string[][] = []
    let t = 0
    const relay = heartbeatRelay({
      send: async (ids) => {
        calls.push([...ids].sort())
      },
      periodMs: () => 1000,
      intervalMs: () => 5,
      now: () => t,
    })
    relay.seen('old')
    t = 2000
    relay.seen('a')
    relay.seen('b')
    await waitFor(() => calls.length === 1 && relay.pending === 0, 'the first call')
    // A new leader: it has heard none of them.
    t = 3000
    relay.handOnRecent(1500)
    await waitFor(() => calls.length === 2 && relay.pending === 0, 'the second call')
    expect(calls).toEqual([
      ['a', 'b', 'old'],
      ['a', 'b'],
    ])
    relay.handOnRecent(10_000)
    await waitFor(() => calls.length === 3, 'the third call')
    expect(calls[2]).toEqual(['a', 'b'])
    relay.close()
  })
})

describe("a worker's heartbeat bound", () => {
  it('follows the heartbeat period its manager gives, never under 2 s', async () => {
    const bounds: number[] = []
    let period = 5000
    const client = {
      call: async (_method: string, _params: unknown, options?: { timeoutMs?: number }) => {
        bounds.push(options?.timeoutMs ?? -1)
        return { periodMs: period }
      },
    }
    const d = remoteDispatcher(() => client as never)
    await d.heartbeat('n')
    await d.heartbeat('n')
    period = 1000
    await d.heartbeat('n')
    await d.heartbeat('n')
    // A loaded manager that answers in 3 s is not taken for gone at the default 5 s period.
    expect(bounds).toEqual([5000, 5000, 5000, 2000])
  })
})

describe('heartbeats heard by a follower, on the leader (in-process managers)', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let m3: ClusterNode
  beforeAll(async () => {
    ;[m1, m2, m3] = await Promise.all([node('mgr1'), node('mgr2'), node('mgr3')])
    await ok(m1, ['swarm', 'init'])
    const token = (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim()
    for (const m of [m2, m3]) await ok(m, ['swarm', 'join', '--token', token, m1.daemon.manager!.joinAddr])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 3, 'three voters')
  })
  afterAll(() => closeNodes(m1, m2, m3))

  it('reach the leader in a few calls, not one per heartbeat, and keep the nodes ready', async () => {
    const leader = [m1, m2, m3].find((m) => m.daemon.manager!.isLeader)!.daemon.manager!
    const follower = [m1, m2, m3].find((m) => !m.daemon.manager!.isLeader)!.daemon.manager!
    const ids = Array.from({ length: 300 }, (_, i) => `relayed${String(i).padStart(18, '0')}`)
    const worker = (id: string): Omit<Node, 'meta'> => ({
      id,
      spec: { labels: {}, role: 'worker', availability: 'active' },
      role: 'worker',
      status: { state: 'ready', addr: '127.0.0.1' },
    })
    await leader.store.update((tx) => {
      for (const id of ids) tx.create('nodes', worker(id))
    })
    await follower.store.waitForVersion(leader.store.version)
    // Every way forwarded heartbeats reach the leader's dispatcher, counted per call.
    const d = leader.dispatcher as unknown as Record<string, (...a: unknown[]) => unknown>
    let calls = 0
    const heard = new Set<string>()
    const relayers = new Set<unknown>()
    for (const name of ['heartbeat', 'heardElsewhere']) {
      const real = d[name]
      if (typeof real !== 'function') continue
      d[name] = (arg: unknown, ...rest: unknown[]) => {
        calls++
        if (name === 'heardElsewhere') relayers.add(rest[0])
        for (const id of Array.isArray(arg) ? arg : [arg])
          if (ids.includes(id as string)) heard.add(id as string)
        return real.call(leader.dispatcher, arg, ...rest)
      }
    }
    const period = follower.dispatcher.periodMs
    const started = Date.now()
    // Every node heartbeats at the follower each period, for five periods (a node is down after three).
    for (let round = 0; round < 5; round++) {
      await Promise.all(ids.map((id) => follower.dispatcher.heartbeat(id)))
      if (round === 0) await waitFor(() => heard.size === ids.length, 'every heartbeat on the leader')
      await new Promise((r) => setTimeout(r, Math.max(0, started + (round + 1) * period - Date.now())))
    }
    // One call per relay interval (a fifth of the period), not 1,500.
    expect(calls).toBeLessThan(40)
    const down = leader.store.view((tx) => ids.filter((id) => tx.get('nodes', id)?.status.state !== 'ready'))
    expect(down).toEqual([])
    // The leader knows which manager relayed them (the caller's certificate): it judges them by its calls.
    expect(relayers.has(follower.nodeId)).toBe(true)
    expect(relayers.has(undefined)).toBe(false)
  })
})
