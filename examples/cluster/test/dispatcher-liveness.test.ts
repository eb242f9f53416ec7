// When the dispatcher marks a node down for missing heartbeats: not a manager whose raft member the leader
// still hears. Its process runs; its agent is between sessions (a promoted worker restarting as a manager),
// and moving its tasks would restart work that never stopped.
import { ClusterStore, type Node } from '@swarmkit/store'
import { afterEach, expect, it } from 'vitest'
import { Dispatcher } from '../src/index.js'
import { waitFor } from './helpers.js'

function manager(id: string): Omit<Node, 'meta'> {
  return {
    id,
    spec: { labels: {}, role: 'manager', availability: 'active' },
    role: 'manager',
    status: { state: 'ready', addr: '127.0.0.1' },
    managerStatus: { raftId: `r-${id}`, addr: '127.0.0.1:1', leader: false, reachability: 'reachable' },
  }
}

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

it('marks a silent node down, but not a manager whose raft member is heard', async () => {
  const store = new ClusterStore()
  await store.update((tx) => {
    tx.create('nodes', manager('heard'))
    tx.create('nodes', manager('silent'))
  })
  const dispatcher = new Dispatcher({ store, heartbeatPeriodMs: 20, raftHears: (id) => id === 'heard' })
  cleanups.push(() => dispatcher.close())
  // Both enter tracking at the same moment, so both are past their deadline at the same check.
  dispatcher.startTracking()
  const state = (id: string) => store.view((tx) => tx.get('nodes', id)?.status.state)
  await waitFor(() => state('silent') === 'down', 'the silent node down', 10_000)
  expect(state('heard')).toBe('ready')
})
