// A service's VIPs are allocated inside the API transaction that writes the service, under the store's write
// lock. The IPAM they come from is rebuilt from the addresses held on the service's networks; reading them
// through every task of the swarm held that lock for the length of a walk over 150,000 tasks on each
// `service create` or `update`. Counting the tasks the allocation looks at is a structural check that it
// reads only the tasks on the service's networks, and the VIP must still avoid every address held there.
import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { allocateEndpoint } from '../src/allocator.js'
import { countingTasks, NET1, placedTask } from './store-fixtures.js'

describe('allocateEndpoint at scale', () => {
  it("reads only the tasks on the service's networks and avoids every address held there", async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('networks', NET1 as never)
      tx.create('nodes', {
        id: 'a',
        spec: { labels: {}, role: 'worker', availability: 'active' },
        role: 'worker',
        status: { state: 'ready', addr: '127.0.0.2' },
      })
      // Three tasks holding 10.9.1.2-4 on the network, and 5,000 on no network.
      for (let i = 1; i <= 3; i++) tx.create('tasks', placedTask(`w${i}`, 'a', i, 'net1'))
      for (let i = 0; i < 5000; i++) tx.create('tasks', placedTask(`t${i}`, 'a', i + 1))
    })
    const spec = {
      name: 'api',
      labels: {},
      taskTemplate: { containerSpec: { image: 'busybox' }, networks: [{ target: 'net1' }] },
      mode: { replicated: { replicas: 1 } },
    }
    let seen = 0
    let vip = ''
    await store.update((tx) => {
      const c = countingTasks(tx)
      const endpoint = allocateEndpoint(c.tx, 'svc-api', spec as never)
      seen = c.tasksSeen()
      vip = endpoint.virtualIPs[0]?.addr ?? ''
    })
    expect(seen).toBeLessThanOrEqual(3)
    expect(vip).toMatch(/^10\.9\.1\.\d+\/24$/)
    expect(['10.9.1.1/24', '10.9.1.2/24', '10.9.1.3/24', '10.9.1.4/24']).not.toContain(vip)
  })
})
