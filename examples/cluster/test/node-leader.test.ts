// `docker node ls` names the leader raft knows now, as swarm's control API fills `ManagerStatus.Leader` in
// from the raft members at each request. The flag the new leader records in the store is written only once
// its duties have started (a read index, the scheduler's and orchestrators' rebuild, a commit): a second or
// more after the election at 50,000 tasks, during which `node ls` named the dead leader.
import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { nodeRoutes } from '../src/api/nodes.js'
import type { RouteContext } from '../src/api/route.js'

function manager(id: string, raftId: string, leader: boolean) {
  return {
    id,
    spec: { labels: {}, role: 'manager', availability: 'drain' },
    role: 'manager',
    description: { hostname: id, engine: { labels: {} } },
    status: { state: 'ready', addr: '127.0.0.1' },
    managerStatus: { raftId, addr: `127.0.0.1:${raftId}`, leader, reachability: 'reachable' },
  } as never
}

describe('node ls and node inspect on a manager', () => {
  it('mark the leader raft knows now, not the one last recorded in the store', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('nodes', manager('m1', '1', true))
      tx.create('nodes', manager('m2', '2', false))
      tx.create('nodes', {
        id: 'w1',
        spec: { labels: {}, role: 'worker', availability: 'active' },
        role: 'worker',
        description: { hostname: 'w1', engine: { labels: {} } },
        status: { state: 'ready', addr: '127.0.0.2' },
      } as never)
    })
    const raft = { leaderId: '2' as string | null }
    const ctx: RouteContext = {
      d: undefined as never,
      view: (fn) => store.view(fn),
      update: (fn) => store.update(fn),
      mgr: () => ({ raft, store }) as never,
    }
    const [list, inspect] = nodeRoutes(ctx)
    const leaders = async () => {
      const reply = await list![2]({ body: undefined, query: new URLSearchParams(), params: [] })
      return (JSON.parse(reply.body!.bytes.toString()) as any[]).map((n) => [n.ID, n.ManagerStatus?.Leader])
    }
    expect(await leaders()).toEqual(
      expect.arrayContaining([
        ['m1', false],
        ['m2', true],
        ['w1', undefined],
      ]),
    )
    const one = await inspect![2]({ body: undefined, query: new URLSearchParams(), params: ['m2'] })
    expect((one.json as any).ManagerStatus.Leader).toBe(true)
    // The stored flag is left as it is, and the cached JSON of the node too.
    raft.leaderId = '1'
    expect(await leaders()).toEqual(
      expect.arrayContaining([
        ['m1', true],
        ['m2', false],
      ]),
    )
    expect(store.view((tx) => tx.get('nodes', 'm1')!.managerStatus!.leader)).toBe(true)
  })
})
