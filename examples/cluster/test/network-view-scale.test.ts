// The network index at scale. Every assignment stream that starts (hundreds at once after a leader kill,
// when the workers fail over and resubscribe) asks for its node's network view, and the index it is cut from
// is built again at each store version: a build that read every task of the swarm held a busy manager's
// event loop for 50-100 ms at 50,000 tasks, per resubscription. It reads only the tasks on overlay
// networks now (the store's per-network index), so counting the tasks it looks at is a structural check.
import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { networkIndex, nodeView } from '../src/network-view.js'
import { countingTasks, NET1, placedTask } from './store-fixtures.js'

describe('networkIndex at scale', () => {
  it('reads only the tasks on overlay networks, not every task of the swarm', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('networks', NET1 as never)
      for (const n of ['a', 'b'])
        tx.create('nodes', {
          id: n,
          spec: { labels: {}, role: 'worker', availability: 'active' },
          role: 'worker',
          status: { state: 'ready', addr: n === 'a' ? '127.0.0.2' : '127.0.0.3' },
        })
      tx.create('services', {
        id: 'svc-net',
        spec: {
          name: 'web',
          labels: {},
          taskTemplate: { containerSpec: { image: 'busybox' }, networks: [{ target: 'net1' }] },
          mode: { replicated: { replicas: 3 } },
        },
      } as never)
      for (let i = 0; i < 3; i++) tx.create('tasks', placedTask(`w${i}`, i === 0 ? 'a' : 'b', i + 1, 'net1'))
      // Tasks on no network, and one not placed yet: none of them belongs in any view.
      for (let i = 0; i < 5000; i++) tx.create('tasks', placedTask(`t${i}`, i % 2 ? 'a' : 'b', i + 1))
      tx.create('tasks', placedTask('unplaced', '', 4, 'net1'))
    })
    const seen = store.view((view) => {
      const c = countingTasks(view)
      networkIndex(c.tx)
      return c.tasksSeen()
    })
    expect(seen).toBeLessThanOrEqual(4)
    const index = store.view(networkIndex)
    expect(
      index.tasksOn
        .get('net1')
        ?.map((t) => t.id)
        .sort(),
    ).toEqual(['w0', 'w1', 'w2'])
    expect([...(index.netsOf.get('b') ?? [])]).toEqual(['net1'])
    const view = nodeView(index, 'a')
    expect(view.tasks.map((t) => t.id)).toEqual(['w0', 'w1', 'w2'])
    expect(view.nodes.map((n) => n.id)).toEqual(['a', 'b'])
  })
})
