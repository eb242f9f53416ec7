// `docker node ls` at thousands of nodes: the answer was serialized whole at every request, 5 MB of JSON at
// 5,000 nodes, and in a 5,000 / 150,000 profile that one `JSON.stringify` held a manager's event loop for
// 250-570 ms at a time (more than the 300-600 ms election timeout on the leader). Each node's JSON text is
// kept with the node object now (objects are immutable: a changed node is a new object), so a request
// serializes only the nodes that changed since the last one. Counted, not timed: the characters
// `JSON.stringify` produced while a second `node ls` of unchanged nodes was answered.
import type { AddressInfo } from 'node:net'
import { ClusterStore } from '@swarmkit/store'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { engineApi } from '../src/api.js'
import type { Daemon } from '../src/daemon.js'

const servers: { close(): void }[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
  vi.restoreAllMocks()
})

function node(i: number) {
  return {
    id: `node${String(i).padStart(5, '0')}`,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: { hostname: `worker-${i}`, engine: { labels: { zone: 'a' } } },
    status: { state: 'ready', addr: '127.0.0.2' },
  } as never
}

describe('node ls at scale', () => {
  it('serializes only the nodes that changed since the last answer, and answers the same JSON', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('nodes', {
        id: 'm1',
        spec: { labels: {}, role: 'manager', availability: 'drain' },
        role: 'manager',
        description: { hostname: 'm1', engine: { labels: {} } },
        status: { state: 'ready', addr: '127.0.0.1' },
        managerStatus: { raftId: '1', addr: '127.0.0.1:2377', leader: false, reachability: 'reachable' },
      } as never)
      for (let i = 0; i < 2000; i++) tx.create('nodes', node(i))
    })
    const manager = { store, raft: { leaderId: '1' } }
    const daemon = {
      state: 'active',
      manager,
      requireManager: () => manager,
      options: {},
    } as unknown as Daemon
    const server = engineApi(daemon)
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.47/nodes`
    const first = await (await fetch(url)).text()
    const stringify = JSON.stringify
    let produced = 0
    vi.spyOn(JSON, 'stringify').mockImplementation((...args: Parameters<typeof JSON.stringify>) => {
      const out = stringify(...args)
      produced += out?.length ?? 0
      return out
    })
    const second = await (await fetch(url)).text()
    expect(second).toBe(first)
    expect(first.length).toBeGreaterThan(2000 * 200)
    expect(produced).toBeLessThan(2000)
    // One node changed: only it is serialized again, and the answer shows the change.
    await store.update((tx) => {
      const n = tx.get('nodes', 'node00007')!
      tx.update('nodes', { ...n, spec: { ...n.spec, availability: 'drain' } })
    })
    produced = 0
    const third = JSON.parse(await (await fetch(url)).text()) as any[]
    expect(produced).toBeLessThan(2000)
    expect(third.find((n) => n.ID === 'node00007').Spec.Availability).toBe('drain')
    // The leader as raft knows it (node-leader.test.ts), in the text too.
    expect(third.find((n) => n.ID === 'm1').ManagerStatus.Leader).toBe(true)
  })
})
