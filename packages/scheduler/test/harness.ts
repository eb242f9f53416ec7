import { clusterStore, type Node, type Service, type ServiceSpec, type Task } from '@swarmkit/store'
import {
  createOrchestrator,
  createScheduler,
  createService,
  createTestExecutor,
  manualClock,
  type TaskOutcome,
} from '../src/index.js'
import { fresh, node } from './fixtures.js'

/** A seeded random source (mulberry32) returning bytes, for replayable IDs. */
export function seeded(seed: number): (n: number) => Uint8Array {
  let a = seed >>> 0
  return (n) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) {
      a = (a + 0x6d2b79f5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
    }
    return out
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r))

export interface Harness {
  store: ReturnType<typeof clusterStore>
  clock: ReturnType<typeof manualClock>
  exec: ReturnType<typeof createTestExecutor>
  orchestrator: ReturnType<typeof createOrchestrator>
  scheduler: ReturnType<typeof createScheduler>
  /** Waits until nothing changes in the store for a while (no timers are fired). */
  settle(): Promise<void>
  /** Moves time forward by `ms`, letting the cluster settle at every timer on the way. */
  advance(ms: number): Promise<void>
  addNodes(n: number, over?: Parameters<typeof node>[1], prefix?: string): Promise<string[]>
  setNode(id: string, change: (n: Node) => Node): Promise<void>
  service(spec: ServiceSpec): Promise<Service>
  getService(id: string): Service
  tasks(serviceId?: string): Task[]
  /** Tasks desired and observed running. */
  running(serviceId?: string): Task[]
  stop(): Promise<void>
}

export async function harness(
  options: {
    seed?: number
    behavior?: (t: Task) => TaskOutcome
    taskHistory?: number
    commitSize?: number
    reconcile?: 'incremental' | 'full'
  } = {},
): Promise<Harness> {
  const clock = manualClock()
  const store = clusterStore({ clock: clock.now, historySize: 100_000 })
  const random = seeded(options.seed ?? 1)
  const scheduler = createScheduler({ store, clock })
  const orchestrator = createOrchestrator({
    store,
    clock,
    random,
    ...(options.taskHistory === undefined ? {} : { taskHistory: options.taskHistory }),
    ...(options.commitSize === undefined ? {} : { commitSize: options.commitSize }),
    ...(options.reconcile === undefined ? {} : { reconcile: options.reconcile }),
  })
  const exec = createTestExecutor({
    store,
    clock,
    ...(options.behavior ? { behavior: options.behavior } : {}),
  })
  const errors: Error[] = []
  scheduler.on('error', (e) => errors.push(e))
  orchestrator.on('error', (e) => errors.push(e))
  scheduler.start()
  orchestrator.start()
  exec.start()
  let nodeSeq = 0
  const h: Harness = {
    store,
    clock,
    exec,
    orchestrator,
    scheduler,
    async settle() {
      let quiet = 0
      let last = store.version
      for (let i = 0; i < 200_000; i++) {
        await turn()
        if (errors.length) throw errors[0]
        if (store.version === last) {
          if (++quiet >= 30) return
        } else {
          quiet = 0
          last = store.version
        }
      }
      throw new Error('the cluster did not settle')
    },
    async advance(ms) {
      const end = clock.now() + ms
      await h.settle()
      for (;;) {
        const next = clock.nextTimer
        if (next === undefined || next > end) break
        clock.advance(Math.max(0, next - clock.now()))
        await h.settle()
      }
      clock.advance(Math.max(0, end - clock.now()))
      await h.settle()
    },
    async addNodes(n, over = {}, prefix = 'node') {
      const ids: string[] = []
      await store.update((tx) => {
        for (let i = 0; i < n; i++) {
          const id = `${prefix}${nodeSeq++}`
          ids.push(id)
          tx.create('nodes', fresh(node(id, over)))
        }
      })
      return ids
    },
    async setNode(id, change) {
      await store.update((tx) => {
        const cur = tx.get('nodes', id)
        if (!cur) throw new Error(`no node ${id}`)
        tx.update('nodes', change(cur))
      })
    },
    service: (spec) => createService(store, spec, { random }),
    getService(id) {
      const s = store.view((tx) => tx.get('services', id))
      if (!s) throw new Error(`no service ${id}`)
      return s
    },
    tasks: (serviceId) =>
      store.view((tx) => (serviceId ? tx.find('tasks', { serviceId }) : tx.find('tasks'))),
    running: (serviceId) =>
      h.tasks(serviceId).filter((t) => t.desiredState === 'running' && t.status.state === 'running'),
    async stop() {
      await exec.stop()
      await orchestrator.stop()
      await scheduler.stop()
      store.close()
    },
  }
  return h
}

export function countBy<T>(items: T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>()
  for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1)
  return m
}
