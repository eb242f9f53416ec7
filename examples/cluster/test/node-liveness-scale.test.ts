// Thousands of nodes going silent, or coming back, at once: each change is split into transactions that
// fit a raft entry. At 5,000 nodes one transaction marking them all down was refused as too large (2 MB
// against the store's 1.5 MiB) on every check, so silent nodes were never marked down.
import { ClusterStore, type Node } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { Dispatcher } from '../src/index.js'
import { waitFor } from './helpers.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

/** A store whose commits go through a proposer, with its limit on a transaction's size (a raft entry). */
function replicatedStore(): ClusterStore {
  let index = 0
  const store: ClusterStore = new ClusterStore({
    proposer: async (cmd) => {
      store.apply(cmd, ++index)
    },
  })
  return store
}

/** A node object about as large as a real one with a few labels (about 1 KB encoded). */
function node(id: string): Omit<Node, 'meta'> {
  return {
    id,
    spec: { labels: { note: 'x'.repeat(800) }, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: `host-${id}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: 8e9, memoryBytes: 32 * 2 ** 30 },
      engine: { engineVersion: 'simulated', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr: '127.0.0.1' },
  }
}

describe('node liveness at thousands of nodes', () => {
  it('marks 3,000 silent nodes down, and makes them ready again, in transactions that fit', async () => {
    const store = replicatedStore()
    const ids = Array.from({ length: 3000 }, (_, i) => `n${i}`)
    for (let i = 0; i < ids.length; i += 500)
      await store.update((tx) => {
        for (const id of ids.slice(i, i + 500)) tx.create('nodes', node(id))
      })
    const dispatcher = new Dispatcher({ store, heartbeatPeriodMs: 50 })
    cleanups.push(() => dispatcher.close())
    const state = (s: string) =>
      store.view((tx) => tx.find('nodes').filter((n) => n.status.state === s).length)
    await waitFor(
      () => state('down') === ids.length,
      'every silent node down',
      30_000,
      () => `${state('down')} down`,
    )
    const before = store.version
    await Promise.all(ids.map((id) => dispatcher.heartbeat(id)))
    expect(state('ready')).toBe(ids.length)
    // A few transactions of a few hundred nodes each, not one per node.
    expect(store.version - before).toBeLessThanOrEqual(30)
  }, 90_000)
})
