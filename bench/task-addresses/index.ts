// bench/task-addresses: the leader's task-address allocator at scale (issue #18), in one process on a memory
// store: how long it holds the event loop at once (the longest block: the longest gap between two runs of a
// 1 ms timer; on a loaded machine it includes time the process waited for a core)
// and its CPU per task, for
// - `create`: a service of N tasks on an overlay network created in commits of 1,000 (as the orchestrator
//   writes them), the allocator running, until every task has its address (the CPU of the same creation
//   without an allocator, the `none` row, is subtracted: its longest block is the creation's own);
// - `new leader, all to allocate`: N tasks without addresses in the store, a new allocator's first pass
//   (a leader that took over right after the create);
// - `new leader, none to allocate`: N tasks holding their addresses, a new allocator's first pass.
// Each with the allocator's two ways, side by side in one run: `full` (a pass walks every task and rebuilds
// the IPAM from every held address: the allocator before session 8) and `incremental` (an index kept from
// events; a pass costs what changed). ALLOC_BENCH_TASKS (default 150000), ALLOC_BENCH_MODES (default
// full,incremental), ALLOC_BENCH_STEPS (default create,all,none).

import { clusterStore, type NewObject, type Task } from '@swarmkit/store'
import { allocateIngressAddresses } from '../../examples/cluster/src/ingress-attachments.js'
import { TaskAddressLoop } from '../../examples/cluster/src/task-address-loop.js'
import {
  allocateTaskAddresses,
  startTaskAddressAllocator,
} from '../../examples/cluster/src/task-addresses.js'

const N = Number(process.env.ALLOC_BENCH_TASKS ?? 150_000)
const MODES = (process.env.ALLOC_BENCH_MODES ?? 'full,incremental').split(',') as ('full' | 'incremental')[]
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
const NET = 'net-web'
const INGRESS = 'net-ingress'
const CHUNK = 1000

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const turn = () => new Promise<void>((r) => setImmediate(r))

function task(i: number, addressed: boolean): NewObject<Task> {
  const addr = `10.${128 + (((i + 2) >> 16) & 3)}.${((i + 2) >> 8) & 255}.${(i + 2) & 255}/14`
  return {
    id: `task-${i}`,
    serviceId: 'svc-web',
    slot: i + 1,
    nodeId: `node${i % 1000}`,
    spec: { containerSpec: { image: 'nginx:alpine' }, networks: [{ target: NET }] },
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state: 'running', message: 'started' },
    desiredState: 'running',
    networks: [{ networkId: NET, addresses: addressed ? [addr] : [] }],
  }
}

/** A store with the swarm's ingress network and one overlay network large enough for N tasks (a /14). */
async function world(tasks: number, addressed: boolean) {
  const store = clusterStore({ historySize: 0, limits: { maxReplicas: 1_000_000 } })
  await store.update((tx) => {
    tx.create('networks', {
      id: INGRESS,
      spec: { name: 'ingress', labels: {}, driverConfig: { name: 'overlay' }, ingress: true },
      vni: 4096,
      ipam: {
        driver: { name: 'default' },
        configs: [{ family: 'ipv4', subnet: '10.0.0.0/24', gateway: '10.0.0.1' }],
      },
    })
    tx.create('networks', {
      id: NET,
      spec: { name: 'web', labels: {}, driverConfig: { name: 'overlay' } },
      vni: 4097,
      ipam: {
        driver: { name: 'default' },
        configs: [{ family: 'ipv4', subnet: '10.128.0.0/14', gateway: '10.128.0.1' }],
      },
    })
  })
  for (let i = 0; i < tasks; i += CHUNK)
    await store.update((tx) => {
      for (let j = i; j < Math.min(tasks, i + CHUNK); j++) tx.create('tasks', task(j, addressed))
    })
  return store
}

interface Figure {
  wallMs: number
  cpuMs: number
  maxBlockMs: number
}

/** The longest gap between two runs of a 1 ms timer: how long the event loop was held at once. */
function blockProbe(): () => number {
  let last = performance.now()
  let max = 0
  let timer: ReturnType<typeof setTimeout>
  const tick = () => {
    const now = performance.now()
    max = Math.max(max, now - last)
    last = now
    timer = setTimeout(tick, 1)
  }
  timer = setTimeout(tick, 1)
  return () => {
    clearTimeout(timer)
    return Math.max(max, performance.now() - last)
  }
}

async function measure(work: () => Promise<void>): Promise<Figure> {
  gc()
  const probe = blockProbe()
  const c0 = cpuMs()
  const t0 = performance.now()
  await work()
  const wallMs = performance.now() - t0
  const cpu = cpuMs() - c0
  return { wallMs, cpuMs: cpu, maxBlockMs: probe() }
}

const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 5))
}

/** Counts the tasks that got their address, from the store's events. */
function counter(store: ReturnType<typeof clusterStore>) {
  let addressed = 0
  const watch = store.watch({
    table: 'tasks',
    queueSize: 100_000_000,
    filter: (e) => {
      if (
        e.action === 'update' &&
        e.object.networks[0]?.addresses.length &&
        !e.oldObject.networks[0]?.addresses.length
      )
        addressed++
      return false
    },
  })
  return { count: () => addressed, close: () => watch.close() }
}

async function createStep(mode: 'full' | 'incremental' | 'none'): Promise<Figure> {
  const store = await world(0, false)
  const seen = counter(store)
  const allocator = mode === 'none' ? undefined : startTaskAddressAllocator({ store, passes: mode })
  await turn()
  const f = await measure(async () => {
    for (let i = 0; i < N; i += CHUNK) {
      await store.update((tx) => {
        for (let j = i; j < Math.min(N, i + CHUNK); j++) tx.create('tasks', task(j, false))
      })
      await turn()
    }
    if (allocator) await until(() => seen.count() === N)
  })
  allocator?.stop()
  seen.close()
  store.close()
  return f
}

async function newLeaderStep(mode: 'full' | 'incremental', addressed: boolean): Promise<Figure> {
  const store = await world(N, addressed)
  const seen = counter(store)
  let loop: TaskAddressLoop | undefined
  const f = await measure(async () => {
    if (mode === 'full') {
      // The old allocator's first pass, as its loop ran it.
      await allocateTaskAddresses(store)
      await allocateIngressAddresses(store)
    } else {
      loop = new TaskAddressLoop({ store })
      loop.start()
      await until(() => loop!.settled())
    }
  })
  if (!addressed && seen.count() !== N) throw new Error(`${mode}: ${seen.count()} of ${N} tasks addressed`)
  await loop?.stop()
  seen.close()
  store.close()
  return f
}

const keepAlive = setInterval(() => {}, 1000)
const rows: string[][] = []
const figures: Record<string, number> = {}
const row = (step: string, mode: string, f: Figure, cpuMs = f.cpuMs) => {
  rows.push([
    step,
    mode,
    `${(f.wallMs / 1000).toFixed(2)} s`,
    `${f.maxBlockMs.toFixed(0)} ms`,
    `${(cpuMs / 1000).toFixed(2)} s`,
    ((cpuMs / N) * 1000).toFixed(1),
  ])
  const key = step.replace(/[^a-z]+/g, '_')
  figures[`${key}_max_block_ms_${mode}`] = Math.round(f.maxBlockMs)
  figures[`${key}_cpu_us_per_task_${mode}`] = Math.round((cpuMs / N) * 10000) / 10
  console.log(rows.at(-1)!.join('  '))
}
const STEPS = (process.env.ALLOC_BENCH_STEPS ?? 'create,all,none').split(',')
if (STEPS.includes('create')) {
  const baseline = await createStep('none')
  row('create', 'none', baseline)
  for (const mode of MODES) {
    const f = await createStep(mode)
    row('create', mode, f, Math.max(0, f.cpuMs - baseline.cpuMs))
  }
}
if (STEPS.includes('all'))
  for (const mode of MODES) row('new leader, all to allocate', mode, await newLeaderStep(mode, false))
if (STEPS.includes('none'))
  for (const mode of MODES) row('new leader, none to allocate', mode, await newLeaderStep(mode, true))
const head = ['step', 'allocator', 'wall', 'longest block', 'CPU', 'CPU µs/task']
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)))
const line = (r: string[]) => r.map((x, c) => x.padStart(widths[c] as number)).join(' | ')
console.log(`\n${N} tasks\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}`)
for (const r of rows) console.log(line(r))
console.log(`\n${JSON.stringify(figures)}`)
clearInterval(keepAlive)
