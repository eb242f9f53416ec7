// `docker info` on a manager reads a few rows, whatever the swarm's size. Its running-container count came
// from the store's tasks by node: a lookup through an index the store drops after enough writes nobody read
// it by, so under a create or an update an `info` rebuilt it over every task of the swarm (about 100 ms at
// 150,000 tasks) on the manager's event loop. The count is the node's own agent's now (moby's is its engine's
// containers), so `info` reads no task from the store at all.
import { ClusterStore, type ReadTx, type Table, type Task } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { infoJson } from '../src/api/system.js'
import type { Daemon } from '../src/daemon.js'

function task(id: string, nodeId: string, slot: number): Omit<Task, 'meta'> {
  return {
    id,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId: 'svc',
    slot,
    nodeId,
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state: 'running', message: 'started' },
    desiredState: 'running',
    networks: [],
  }
}

describe('info on a manager', () => {
  it('reads no task from the store, and counts its running containers from its own agent', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('nodes', {
        id: 'm1',
        spec: { labels: {}, role: 'manager', availability: 'drain' },
        role: 'manager',
        status: { state: 'ready', addr: '127.0.0.1' },
        managerStatus: { raftId: '1', addr: '127.0.0.1:2377', leader: true, reachability: 'reachable' },
      } as never)
      for (let n = 0; n < 20; n++)
        tx.create('nodes', {
          id: `w${n}`,
          spec: { labels: {}, role: 'worker', availability: 'active' },
          role: 'worker',
          status: { state: 'ready', addr: '127.0.0.2' },
        })
      for (let i = 0; i < 2000; i++) tx.create('tasks', task(`t${i}`, `w${i % 20}`, i + 1))
    })
    const reads: Table[] = []
    const counted = {
      view: <R>(fn: (tx: ReadTx) => R): R =>
        store.view((tx) =>
          fn(
            new Proxy(tx, {
              get: (t, k) => {
                if (k === 'find' || k === 'get' || k === 'lookup')
                  return (table: Table, ...rest: unknown[]) => {
                    reads.push(table)
                    return (Reflect.get(t, k) as (...a: unknown[]) => unknown).call(t, table, ...rest)
                  }
                return Reflect.get(t, k)
              },
            }),
          ),
        ),
    }
    const daemon = {
      nodeId: 'm1',
      state: 'active',
      role: 'manager',
      hostname: 'm1',
      executorKind: 'simulated',
      manager: { store: counted, cluster: () => undefined },
      agent: {
        tasks: () => [
          { taskId: 'a', state: 'running' },
          { taskId: 'b', state: 'preparing' },
        ],
      },
    } as unknown as Daemon
    const info = infoJson(daemon) as { ContainersRunning: number; Swarm: Record<string, unknown> }
    expect(reads.filter((t) => t === 'tasks')).toEqual([])
    expect(info.ContainersRunning).toBe(1)
    expect(info.Swarm['Nodes']).toBe(21)
    expect(info.Swarm['Managers']).toBe(1)
    expect(info.Swarm['RemoteManagers']).toEqual([{ NodeID: 'm1', Addr: '127.0.0.1:2377' }])
    expect(info.Swarm['NodeAddr']).toBe('127.0.0.1')
  })
})
