// The walkthrough the tutorial follows: three managers over a simulated network, four workers, a replicated
// service spread over two zones, the leader killed in the middle, then a scale-up and a drain handled by the
// new leader. Workers are stood in for by the scheduler package's test executor.
import { createService, createTestExecutor, updateService } from '@swarmkit/scheduler'
import type { ClusterStore, NewObject, Node, Task } from '@swarmkit/store'
import { MemoryNetwork } from '@swarmkit/transport'
import { Manager } from './manager.js'

export interface WalkthroughOptions {
  /** Seeds the simulated network (message order and faults). */
  readonly seed?: number
  /** Gives up on a step after this long (default 30 s). */
  readonly stepTimeoutMs?: number
}

export interface WalkthroughReport {
  readonly firstLeader: string
  readonly secondLeader: string
  /** Running tasks per zone after the service first converged (6 replicas). */
  readonly perZoneAtStart: Record<string, number>
  /** Running tasks per node after scaling to 8 under the new leader. */
  readonly perNodeAfterScale: Record<string, number>
  /** Running tasks per node after draining `drainedNode`. */
  readonly perNodeAfterDrain: Record<string, number>
  readonly drainedNode: string
}

const ZONES = ['east', 'east', 'west', 'west']

function workerNode(i: number): NewObject<Node> {
  return {
    id: `worker${i + 1}`,
    spec: { labels: { zone: ZONES[i]! }, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: `worker${i + 1}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: 4e9, memoryBytes: 8 * 2 ** 30 },
      engine: { engineVersion: '28.2.2', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr: `10.0.0.${i + 11}` },
  }
}

function running(store: ClusterStore, serviceId: string): Task[] {
  return store.view((tx) => tx.find('tasks', { serviceId }, (t) => t.status.state === 'running'))
}

function countBy(tasks: readonly Task[], key: (t: Task) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const t of tasks) out[key(t)] = (out[key(t)] ?? 0) + 1
  return out
}

/** Waits for `check` to return a value, re-checking whenever the store commits something. */
async function until<T>(
  store: ClusterStore,
  what: string,
  check: () => T | undefined,
  timeoutMs: number,
): Promise<T> {
  const now = check()
  if (now !== undefined) return now
  const watch = store.watch({})
  const timer = setTimeout(() => watch.close(), timeoutMs)
  try {
    for await (const _ of watch) {
      const value = check()
      if (value !== undefined) return value
    }
  } finally {
    clearTimeout(timer)
    watch.close()
  }
  const value = check()
  if (value !== undefined) return value
  throw new Error(`timed out waiting for ${what}`)
}

async function leaderOf(managers: readonly Manager[], timeoutMs: number): Promise<Manager> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const leader = managers.find((m) => m.isLeader)
    if (leader) return leader
    if (Date.now() > deadline) throw new Error('no leader elected')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Runs the walkthrough; `log` receives one line per step. */
export async function runWalkthrough(
  log: (line: string) => void,
  options: WalkthroughOptions = {},
): Promise<WalkthroughReport> {
  const timeout = options.stepTimeoutMs ?? 30_000
  const net = new MemoryNetwork({ seed: options.seed ?? 1 })
  const ids = ['mgr1', 'mgr2', 'mgr3']
  const managers = await Promise.all(
    ids.map((id) =>
      Manager.start({ id, peers: ids, transport: net.transport(id), electionTimeoutMs: [300, 600], log }),
    ),
  )
  const executors: { stop(): Promise<void> }[] = []
  try {
    const first = await leaderOf(managers, timeout)
    log(`1. ${first.id} was elected leader`)

    // Register the workers (a real cluster does this when an agent joins). Any manager takes writes.
    const entry = managers.find((m) => m !== first)!
    await entry.store.update((tx) => {
      for (let i = 0; i < ZONES.length; i++) tx.create('nodes', workerNode(i))
    })
    // The workers: they run what is assigned to them and report it, through a follower's store.
    const executor = createTestExecutor({ store: entry.store })
    executor.start()
    executors.push(executor)

    const web = await createService(entry.store, {
      name: 'web',
      labels: {},
      mode: { replicated: { replicas: 6 } },
      taskTemplate: {
        containerSpec: { image: 'nginx:alpine' },
        placement: { preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] },
      },
    })
    const zoneOf = (t: Task) => ZONES[Number(t.nodeId!.slice('worker'.length)) - 1]!
    const atStart = await until(
      entry.store,
      '6 running tasks',
      () => {
        const tasks = running(entry.store, web.id)
        return tasks.length === 6 ? tasks : undefined
      },
      timeout,
    )
    const perZoneAtStart = countBy(atStart, zoneOf)
    log(`2. service web converged: 6 tasks running, per zone ${JSON.stringify(perZoneAtStart)}`)

    // Kill the leader: its raft stops and its network endpoint goes away, mid-flight.
    await first.stop()
    await net.transport(first.id).close()
    const survivors = managers.filter((m) => m !== first)
    const second = await leaderOf(survivors, timeout)
    log(`3. killed ${first.id}; ${second.id} leads now`)

    // The new leader's orchestrator picks up the spec change; nothing from before is lost.
    const current = entry.store.view((tx) => tx.get('services', web.id)!)
    await updateService(entry.store, web.id, { ...current.spec, mode: { replicated: { replicas: 8 } } })
    const afterScale = await until(
      entry.store,
      '8 running tasks',
      () => {
        const tasks = running(entry.store, web.id)
        return tasks.length === 8 ? tasks : undefined
      },
      timeout,
    )
    const perNodeAfterScale = countBy(afterScale, (t) => t.nodeId!)
    log(`4. scaled to 8 under the new leader: per node ${JSON.stringify(perNodeAfterScale)}`)

    const drained = 'worker1'
    await entry.store.update((tx) => {
      const n = tx.get('nodes', drained)!
      tx.update('nodes', { ...n, spec: { ...n.spec, availability: 'drain' } })
    })
    const afterDrain = await until(
      entry.store,
      `8 running tasks off ${drained}`,
      () => {
        const tasks = running(entry.store, web.id)
        return tasks.length === 8 && tasks.every((t) => t.nodeId !== drained) ? tasks : undefined
      },
      timeout,
    )
    const perNodeAfterDrain = countBy(afterDrain, (t) => t.nodeId!)
    log(`5. drained ${drained}: its tasks moved, per node ${JSON.stringify(perNodeAfterDrain)}`)

    return {
      firstLeader: first.id,
      secondLeader: second.id,
      perZoneAtStart,
      perNodeAfterScale,
      perNodeAfterDrain,
      drainedNode: drained,
    }
  } finally {
    for (const e of executors) await e.stop()
    for (const m of managers) await m.stop()
  }
}
