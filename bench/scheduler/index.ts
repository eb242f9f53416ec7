// bench/scheduler: swarmkit's published scheduler shapes, task creation included.
//
// - end-to-end: tasks are created pending in a MemoryStore (one transaction, as swarmkit's benchmark does) and
//   the timer stops when the Scheduler, following the store's watch, has committed every assignment.
// - engine: the placement engine alone (building the task objects included), no store.
// - naive: a same-run baseline that ranks by scanning every node for every task (swarm's spread rule, no heap),
//   run where tasks x nodes <= 1e8.
// Every third node carries `type=special`; "constrained" tasks require `node.labels.type==special`.

import { createPlacer, createScheduler } from '@swarmkit/scheduler'
import type { Node, Task } from '@swarmkit/store'
import { memoryStore } from '@swarmkit/store'

const SWARMKIT_MS: Record<string, number> = {
  '1000_1000': 189,
  '10000_1000': 1800,
  '100000_1000': 22_600,
  '100000_100000': 29_200,
}
const SHAPES: [number, number][] = [
  [1000, 1000],
  [10_000, 1000],
  [100_000, 1000],
  [100_000, 100_000],
]
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

function makeNode(i: number): Omit<Node, 'meta'> {
  return {
    id: `node${i}`,
    spec: { labels: i % 3 === 0 ? { type: 'special' } : {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: `host${i}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: 8e9, memoryBytes: 32 * 2 ** 30 },
      engine: { engineVersion: '28.2.2', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
  }
}

function makeTask(i: number, constrained: boolean): Omit<Task, 'meta'> {
  return {
    id: `task${i}`,
    spec: {
      containerSpec: { image: 'nginx:alpine' },
      placement: constrained ? { constraints: ['node.labels.type==special'] } : undefined,
    },
    specVersion: { index: 1 },
    serviceId: 'svc',
    slot: i + 1,
    nodeId: '',
    serviceAnnotations: { name: 'svc', labels: {} },
    status: { timestamp: 0, state: 'pending', message: 'pending task scheduling' },
    desiredState: 'running',
    networks: [],
  }
}

const withMeta = <T>(o: T): T & { meta: { version: number; createdAt: number; updatedAt: number } } => ({
  ...o,
  meta: { version: 1, createdAt: 0, updatedAt: 0 },
})

async function endToEnd(tasks: number, nodes: number, constrained: boolean) {
  const store = memoryStore({ historySize: 0 })
  await store.update((tx) => {
    for (let i = 0; i < nodes; i++) tx.create('nodes', makeNode(i))
  })
  const scheduler = createScheduler({ store })
  scheduler.start()
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  let assigned = 0
  const watch = store.watch({ table: 'tasks', action: 'update', queueSize: 10_000_000 })
  const done = (async () => {
    for await (const e of watch) {
      if (e.table === 'tasks' && e.object.status.state === 'assigned' && ++assigned === tasks) return
    }
  })()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await store.update((tx) => {
    for (let i = 0; i < tasks; i++) tx.create('tasks', makeTask(i, constrained))
  })
  const created = performance.now()
  await done
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  watch.close()
  await scheduler.stop()
  gc()
  const bytesPerTask = (process.memoryUsage().heapUsed - heapBefore) / tasks
  // check: every task on an eligible node
  const bad = store.view((tx) =>
    tx.find('tasks', { all: true }, (t) => !t.nodeId || (constrained && Number(t.nodeId.slice(4)) % 3 !== 0)),
  ).length
  if (bad) throw new Error(`${bad} tasks misplaced`)
  store.close()
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, createMs: created - t0, bytesPerTask }
}

function engine(tasks: number, nodes: number, constrained: boolean) {
  const placer = createPlacer()
  for (let i = 0; i < nodes; i++) placer.setNode(withMeta(makeNode(i)))
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const list: Task[] = new Array(tasks)
  for (let i = 0; i < tasks; i++) list[i] = withMeta(makeTask(i, constrained))
  const r = placer.place(list)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  if (r.assigned.length !== tasks) throw new Error('engine left tasks unplaced')
  gc()
  const bytesPerTask = (process.memoryUsage().heapUsed - heapBefore) / tasks
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, bytesPerTask, r }
}

/**
 * Swarm's spread rule by a full scan of the nodes for every task, doing the same bookkeeping as the engine
 * (task objects, an assignment list, a task -> node map) so that only the choice of node differs.
 */
function naive(tasks: number, nodes: number, constrained: boolean) {
  const ns = Array.from({ length: nodes }, (_, i) => withMeta(makeNode(i)))
  gc()
  const t0 = performance.now()
  const eligible = ns.map((n) => !constrained || n.spec.labels.type === 'special')
  const svc = new Int32Array(nodes)
  const total = new Int32Array(nodes)
  const assigned: { task: Task; nodeId: string }[] = []
  const where = new Map<string, number>()
  for (let i = 0; i < tasks; i++) {
    const task = withMeta(makeTask(i, constrained))
    let best = -1
    for (let j = 0; j < nodes; j++) {
      if (!eligible[j]) continue
      if (best < 0 || svc[j]! < svc[best]! || (svc[j] === svc[best] && total[j]! < total[best]!)) best = j
    }
    svc[best]!++
    total[best]!++
    assigned.push({ task, nodeId: ns[best]!.id })
    where.set(task.id, best)
  }
  return performance.now() - t0
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const figures: Record<string, number> = {}
const rows: string[][] = [
  [
    'tasks',
    'nodes',
    'constraints',
    'end-to-end',
    'store create',
    'engine',
    'naive',
    'swarmkit',
    'speedup',
    'B/task (store+sched)',
  ],
]
for (const [tasks, nodes] of SHAPES) {
  for (const constrained of [false, true]) {
    const reps = tasks <= 10_000 ? 5 : 3
    const e2e: { ms: number; cpuMs: number; createMs: number; bytesPerTask: number }[] = []
    for (let r = 0; r < reps; r++) e2e.push(await endToEnd(tasks, nodes, constrained))
    const eng: number[] = []
    const engCpu: number[] = []
    let engBytes = 0
    for (let r = 0; r < reps; r++) {
      const x = engine(tasks, nodes, constrained)
      eng.push(x.ms)
      engCpu.push(x.cpuMs)
      engBytes = x.bytesPerTask
    }
    const naiveMs = tasks * nodes <= 1e8 ? naive(tasks, nodes, constrained) : undefined
    const ms = median(e2e.map((x) => x.ms))
    const createMs = median(e2e.map((x) => x.createMs))
    const cpuMs = median(e2e.map((x) => x.cpuMs))
    const engCpuMs = median(engCpu)
    const bytes = median(e2e.map((x) => x.bytesPerTask))
    const engMs = median(eng)
    const key = `${tasks}_${nodes}${constrained ? '_constrained' : ''}`
    const base = SWARMKIT_MS[`${tasks}_${nodes}`] as number
    figures[`end_to_end_ms_${key}`] = Math.round(ms)
    figures[`store_create_ms_${key}`] = Math.round(createMs)
    figures[`end_to_end_cpu_ms_${key}`] = Math.round(cpuMs)
    figures[`engine_ms_${key}`] = Math.round(engMs * 10) / 10
    figures[`engine_cpu_ms_${key}`] = Math.round(engCpuMs * 10) / 10
    if (!constrained) {
      figures[`speedup_vs_swarmkit_${tasks}_${nodes}`] = Math.round((base / ms) * 10) / 10
      figures[`engine_speedup_vs_swarmkit_${tasks}_${nodes}`] = Math.round(base / engMs)
      figures[`bytes_per_task_${tasks}_${nodes}`] = Math.round(bytes)
      figures[`engine_bytes_per_task_${tasks}_${nodes}`] = Math.round(engBytes)
    } else {
      figures[`speedup_vs_swarmkit_${tasks}_${nodes}_constrained`] = Math.round((base / ms) * 10) / 10
    }
    if (naiveMs !== undefined)
      figures[`engine_speedup_vs_naive_${key}`] = Math.round((naiveMs / engMs) * 10) / 10
    rows.push([
      String(tasks),
      String(nodes),
      constrained ? '1/3 eligible' : 'none',
      `${ms.toFixed(0)} ms (${cpuMs.toFixed(0)})`,
      `${createMs.toFixed(0)} ms`,
      `${engMs.toFixed(1)} ms (${engCpuMs.toFixed(0)})`,
      naiveMs === undefined ? '-' : `${naiveMs.toFixed(0)} ms`,
      `${base} ms`,
      `${(base / ms).toFixed(1)}x`,
      bytes.toFixed(0),
    ])
  }
}
figures.linear_ratio_end_to_end_100k_vs_10k =
  Math.round(
    ((figures.end_to_end_ms_100000_1000 as number) / (figures.end_to_end_ms_10000_1000 as number)) * 100,
  ) / 100
figures.linear_ratio_engine_100k_vs_10k =
  Math.round(((figures.engine_ms_100000_1000 as number) / (figures.engine_ms_10000_1000 as number)) * 100) /
  100

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join('  '))
console.log(
  `\n100k/10k time ratio (1k nodes): end-to-end ${figures.linear_ratio_end_to_end_100k_vs_10k}, engine ${figures.linear_ratio_engine_100k_vs_10k} (10 = linear)`,
)
console.log(JSON.stringify(figures))
