import { ClusterStore, type NewObject, type Node, type Task } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { startTaskAddressAllocator } from '../src/task-addresses.js'

function node(id: string): NewObject<Node> {
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    status: { state: 'ready', addr: '127.0.0.1' },
  }
}

function task(i: number): NewObject<Task> {
  return {
    id: `t${i}`,
    serviceId: 'svc',
    slot: i + 1,
    nodeId: `n${i % 20}`,
    spec: { containerSpec: { image: 'busybox' } },
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state: 'running', message: 'started' },
    desiredState: 'running',
    networks: [],
  }
}

describe('startTaskAddressAllocator', () => {
  it.each(['full', 'incremental'] as const)(
    'lets the event loop run between two passes over the tasks, however many events come (%s passes)',
    async (passes) => {
      const store = new ClusterStore()
      await store.update((tx) => {
        for (let i = 0; i < 20; i++) tx.create('nodes', node(`n${i}`))
        for (let i = 0; i < 500; i++) tx.create('tasks', task(i))
      })
      // Event-loop turns, and the turn each read of the store happened in.
      let turns = 0
      let on = true
      const spin = () => {
        turns++
        if (on) setImmediate(spin)
      }
      setImmediate(spin)
      const readsPerTurn = new Map<number, number>()
      const counted = new Proxy(store, {
        get(target, key, receiver) {
          if (key === 'view') {
            return (fn: Parameters<ClusterStore['view']>[0]) => {
              readsPerTurn.set(turns, (readsPerTurn.get(turns) ?? 0) + 1)
              return target.view(fn)
            }
          }
          const v = Reflect.get(target, key, receiver)
          return typeof v === 'function' ? v.bind(target) : v
        },
      })
      const allocator = startTaskAddressAllocator({ store: counted, passes })
      try {
        // A stream of node changes (heartbeats marking nodes down and ready), each its own commit: every one
        // is news to the allocator (the nodes have no ingress address).
        for (let round = 0; round < 10; round++) {
          for (let i = 0; i < 20; i++) {
            await store.update((tx) => {
              const n = tx.get('nodes', `n${i}`)!
              tx.update('nodes', { ...n, status: { ...n.status, state: round % 2 ? 'ready' : 'down' } })
            })
          }
        }
        // The passes the burst left to do (it set `again`), in later turns: wait for one, for a while at most.
        const reads = () => [...readsPerTurn.values()].reduce((a, b) => a + b, 0)
        const before = reads()
        for (let i = 0; i < 200 && reads() === before; i++) await new Promise((r) => setTimeout(r, 10))
      } finally {
        allocator.stop()
        on = false
      }
      // One pass reads the store twice (task addresses, then ingress); never two passes in one turn.
      expect(Math.max(...readsPerTurn.values())).toBeLessThanOrEqual(2)
    },
  )
})
