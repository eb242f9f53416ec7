// bench/orchestrator: the orchestrator's cost per task as a service grows (issue #18), in one process on a
// memory store (no cluster): a service of R replicas created until all R run, then a rolling update of all R
// at parallelism 0 until every slot runs a task of the new spec and the update completed. The orchestrator,
// the scheduler and the test executor run together, as in the reference cluster's leader; the process's CPU
// time is measured for each step.
//
// Each size runs with the orchestrator's two ways of reconciling, side by side in one run:
// - `full`: every pass walks every task of the service (as the orchestrator did before session 7);
// - `incremental`: a pass looks only at the slots events touched since the service's last pass.
// The scheduler, the executor and the store do the same work either way, so the difference is the
// orchestrator's. `ORCH_BENCH_SIZES=10000,50000` picks the sizes (default 10k, 50k, 150k);
// `ORCH_BENCH_MODES=incremental` runs one way only.

import {
  createOrchestrator,
  createScheduler,
  createService,
  createTestExecutor,
  updateService,
} from '@swarmkit/scheduler'
import type { Node, StoreEvent } from '@swarmkit/store'
import { clusterStore } from '@swarmkit/store'

const SIZES = (process.env.ORCH_BENCH_SIZES ?? '10000,50000,150000').split(',').map(Number)
const MODES = (process.env.ORCH_BENCH_MODES ?? 'full,incremental').split(',') as ('full' | 'incremental')[]
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

function makeNode(i: number): Omit<Node, 'meta'> {
  return {
    id: `node${i}`,
    spec: { labels: {}, role: 'worker', availability: 'active' },
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

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

interface Step {
  wallMs: number
  cpuMs: number
  passes: number
}

async function run(replicas: number, mode: 'full' | 'incremental') {
  const store = clusterStore({ historySize: 0, limits: { maxReplicas: 1_000_000 } })
  await store.update((tx) => {
    for (let i = 0; i < replicas / 100; i++) tx.create('nodes', makeNode(i))
  })
  const scheduler = createScheduler({ store })
  const orchestrator = createOrchestrator({ store, reconcile: mode })
  const workers = createTestExecutor({ store })
  let passes = 0
  orchestrator.on('pass:done', () => passes++)
  scheduler.start()
  orchestrator.start()
  workers.start()
  gc()
  const watch = store.watch({ table: ['tasks', 'services'], queueSize: 100_000_000 })
  /** Waits until `done` holds, fed every event. */
  const until = async (done: (e: StoreEvent) => boolean) => {
    // (not `for await`: leaving it would close the watch)
    for (;;) {
      const r = await watch.next()
      if (r.done) throw new Error('the watch ended')
      if (done(r.value)) return
    }
  }
  const measure = async (work: () => Promise<void>): Promise<Step> => {
    const p0 = passes
    const c0 = cpuMs()
    const t0 = performance.now()
    await work()
    return { wallMs: performance.now() - t0, cpuMs: cpuMs() - c0, passes: passes - p0 }
  }
  let serviceId = ''
  const create = await measure(async () => {
    const svc = await createService(store, {
      name: 'web',
      labels: {},
      mode: { replicated: { replicas } },
      taskTemplate: { containerSpec: { image: 'nginx:alpine' } },
      updateConfig: { parallelism: 0 },
    })
    serviceId = svc.id
    let running = 0
    await until(
      (e) =>
        e.table === 'tasks' &&
        e.action === 'update' &&
        e.object.status.state === 'running' &&
        e.oldObject.status.state !== 'running' &&
        ++running === replicas,
    )
  })
  gc()
  const update = await measure(async () => {
    const cur = store.view((tx) => tx.get('services', serviceId))
    if (!cur) throw new Error('service gone')
    await updateService(store, serviceId, {
      ...cur.spec,
      taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
    })
    await until((e) => e.table === 'services' && e.object.updateStatus?.state === 'completed')
  })
  watch.close()
  const tasks = store.view((tx) => tx.find('tasks', { serviceId }))
  const current = tasks.filter(
    (t) => t.desiredState === 'running' && t.status.state === 'running' && t.spec.forceUpdate === 1,
  )
  if (new Set(current.map((t) => t.slot)).size !== replicas || current.length !== replicas) {
    const counts = new Map<string, number>()
    for (const t of tasks) {
      const k = `${t.desiredState}/${t.status.state}/${t.spec.forceUpdate ?? 0}`
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    throw new Error(`${mode} ${replicas}: ${current.length} slots updated: ${JSON.stringify([...counts])}`)
  }
  await Promise.all([workers.stop(), orchestrator.stop(), scheduler.stop()])
  store.close()
  return { create, update }
}

// The orchestrator's pacing timers do not hold the process open (a manager's sockets do): this does.
const keepAlive = setInterval(() => {}, 1000)
const figures: Record<string, number> = {}
const rows: string[][] = []
const us = (ms: number, n: number) => ((ms / n) * 1000).toFixed(0)
for (const replicas of SIZES) {
  const byMode: Record<string, Awaited<ReturnType<typeof run>>> = {}
  for (const mode of MODES) {
    const r = await run(replicas, mode)
    byMode[mode] = r
    gc()
    for (const [step, s] of Object.entries(r)) {
      figures[`${step}_cpu_us_per_task_${mode}_${replicas}`] = Math.round((s.cpuMs / replicas) * 1000)
      rows.push([
        String(replicas),
        mode,
        step,
        `${(s.wallMs / 1000).toFixed(1)} s`,
        `${(s.cpuMs / 1000).toFixed(1)} s`,
        us(s.cpuMs, replicas),
        String(s.passes),
      ])
    }
    console.log(
      rows
        .slice(-2)
        .map((r) => r.join('  '))
        .join('\n'),
    )
  }
  const f = byMode.full
  const i = byMode.incremental
  if (f && i)
    for (const step of ['create', 'update'] as const)
      figures[`${step}_cpu_ratio_full_over_incremental_${replicas}`] =
        Math.round((f[step].cpuMs / i[step].cpuMs) * 100) / 100
}
const head = ['tasks', 'reconcile', 'step', 'wall', 'CPU', 'CPU µs/task', 'passes']
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)))
const line = (r: string[]) => r.map((x, c) => x.padStart(widths[c] as number)).join(' | ')
console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}`)
for (const r of rows) console.log(line(r))
console.log(`\n${JSON.stringify(figures)}`)
clearInterval(keepAlive)
