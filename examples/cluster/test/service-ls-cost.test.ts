// `docker service ls` asks `GET /services?status=true`. Each service's running/desired/completed counts walked
// every task of the service per request, through the store's per-service index, which the store drops after a
// burst of writes nobody read it by: under a create of 150,000 tasks every `service ls` rebuilt it over every
// task of the swarm on the manager's event loop. The counts are kept at commit now (service-tallies.ts): they
// equal the scheduler's walk (serviceStatus) after every change, a restored snapshot included, and a request
// reads no task from the store.
import type { AddressInfo } from 'node:net'
import { serviceStatus, statusFromTallies } from '@swarmkit/scheduler'
import { ClusterStore, type ReadTx, type Service, type Task, type TaskState } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { engineApi } from '../src/api.js'
import type { Daemon } from '../src/daemon.js'
import { serviceTallies } from '../src/service-tallies.js'
import { countingTasks } from './store-fixtures.js'

const servers: { close(): void }[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

// In the order of their rank (a state only moves forward).
const STATES: TaskState[] = ['pending', 'assigned', 'running', 'complete', 'shutdown', 'failed']
const DESIRED: Task['desiredState'][] = ['running', 'ready', 'complete', 'shutdown']

const MODES: Record<string, Service['spec']['mode']> = {
  web: { replicated: { replicas: 7 } },
  agent: { global: {} },
  batch: { replicatedJob: { maxConcurrent: 3, totalCompletions: 9 } },
  once: { globalJob: {} },
}

function service(name: string, iteration = 0) {
  const job = 'replicatedJob' in MODES[name]! || 'globalJob' in MODES[name]!
  return {
    id: name,
    spec: { name, labels: {}, taskTemplate: { containerSpec: { image: 'busybox' } }, mode: MODES[name]! },
    specVersion: { index: 1 },
    ...(job ? { jobStatus: { jobIteration: { index: iteration }, lastExecution: 0 } } : {}),
  } as unknown as Service
}

function task(id: string, serviceId: string, random: () => number): Omit<Task, 'meta'> {
  const state = STATES[Math.floor(random() * STATES.length)]!
  return {
    id,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId,
    slot: 1,
    nodeId: state === 'pending' ? '' : 'n1',
    serviceAnnotations: { name: serviceId, labels: {} },
    status: { timestamp: 0, state, message: state },
    desiredState: DESIRED[Math.floor(random() * DESIRED.length)]!,
    networks: [],
    ...(random() < 0.5 ? { jobIteration: { index: Math.floor(random() * 3) } } : {}),
  }
}

describe('service status tallies', () => {
  for (const seed of [1, 2, 3]) {
    it(`equal the scheduler's walk over the tasks after every commit and a restore (seed ${seed})`, async () => {
      const random = mulberry32(seed)
      const store = new ClusterStore()
      await store.update((tx) => {
        for (const name of Object.keys(MODES)) tx.create('services', service(name))
      })
      let next = 0
      await store.update((tx) => {
        for (let i = 0; i < 40; i++) tx.create('tasks', task(`t${next++}`, 'web', random))
      })
      const tallies = serviceTallies(store)
      const names = Object.keys(MODES)
      let saved: Uint8Array | undefined
      for (let step = 0; step < 80; step++) {
        if (step % 20 === 10) saved = store.snapshot()
        else if (step % 20 === 19 && saved) store.restore(saved)
        else
          await store.update((tx) => {
            const tasks = tx.find('tasks')
            for (let k = 0; k < 1 + Math.floor(random() * 20); k++) {
              const op = random()
              const t = tasks[Math.floor(random() * tasks.length)]
              const cur = t && tx.get('tasks', t.id)
              const name = names[Math.floor(random() * names.length)]!
              if (op < 0.3) tx.create('tasks', task(`t${next++}`, name, random))
              else if (op < 0.4 && cur) tx.delete('tasks', cur.id)
              else if (op < 0.45) {
                // A job's next iteration.
                const s = tx.get('services', name)!
                tx.update('services', {
                  ...service(name, (s.jobStatus?.jobIteration.index ?? 0) + 1),
                  meta: s.meta,
                })
              } else if (cur) {
                // States only move forward.
                const later = STATES.slice(STATES.indexOf(cur.status.state))
                const state = later[Math.floor(random() * later.length)]!
                const desiredState = DESIRED[Math.floor(random() * DESIRED.length)]!
                tx.update('tasks', { ...cur, nodeId: 'n1', status: { ...cur.status, state }, desiredState })
              }
            }
          })
        store.view((tx) => {
          for (const s of tx.find('services'))
            expect(statusFromTallies(s, tallies.of(s.id)), `seed ${seed} step ${step} ${s.id}`).toEqual(
              serviceStatus(s, tx.find('tasks', { serviceId: s.id })),
            )
        })
      }
    })
  }

  it('service ls ?status=true reads no task from the store, after a burst of writes too', async () => {
    const random = mulberry32(7)
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('services', service('web'))
      for (let i = 0; i < 3000; i++) {
        const { jobIteration: _, ...t } = task(`t${i}`, 'web', random)
        tx.create('tasks', { ...t, nodeId: 'n1', status: { timestamp: 0, state: 'assigned', message: '' } })
      }
    })
    let tasksSeen = 0
    const view = store.view.bind(store)
    store.view = (<R>(fn: (tx: ReadTx) => R): R =>
      view((tx) => {
        const counted = countingTasks(tx)
        try {
          return fn(counted.tx)
        } finally {
          tasksSeen += counted.tasksSeen()
        }
      })) as typeof store.view
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
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.47/services?status=true`
    await fetch(url)
    // Every task written again (the store drops its per-service index after such a burst).
    await store.update((tx) => {
      for (const t of tx.find('tasks'))
        tx.update('tasks', { ...t, status: { ...t.status, state: 'running' }, desiredState: 'running' })
    })
    tasksSeen = 0
    const [web] = (await (await fetch(url)).json()) as any[]
    expect(web.ServiceStatus).toEqual({ RunningTasks: 3000, DesiredTasks: 7, CompletedTasks: 0 })
    expect(tasksSeen).toBe(0)
  })
})
