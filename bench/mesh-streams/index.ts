// bench/mesh-streams: what every worker's routing-mesh stream costs a manager while tasks change (issue 18).
// One dispatcher over a store, MESH_STREAMS streams open (a manager's share of 5,000 workers: 1,667), each read
// as the agent reads it; then MESH_COMMITS transactions of 2,000 task changes of a service that publishes no
// port (the list never changes). Prints the CPU per task change and the lists sent.
import { cpus, loadavg } from 'node:os'
import { ClusterStore, type Task } from '@swarmkit/store'
import { Dispatcher } from '../../examples/cluster/src/dispatcher.js'

const STREAMS = Number(process.env['MESH_STREAMS'] ?? 1667)
const COMMITS = Number(process.env['MESH_COMMITS'] ?? 20)
const PER_COMMIT = 2000

function task(i: number, message: string): Omit<Task, 'meta'> {
  return {
    id: `t${i}`,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId: 'quiet',
    slot: i + 1,
    nodeId: `n${i % STREAMS}`,
    serviceAnnotations: { name: 'quiet', labels: {} },
    status: { timestamp: 0, state: 'running', message },
    desiredState: 'running',
    networks: [],
  }
}

const store = new ClusterStore({ limits: { maxReplicas: PER_COMMIT * COMMITS } })
const dispatcher = new Dispatcher({ store })
const stop = new AbortController()
let lists = 0
await store.update((tx) => {
  tx.create('services', {
    id: 'quiet',
    spec: {
      name: 'quiet',
      labels: {},
      mode: { replicated: { replicas: 1 } },
      taskTemplate: { containerSpec: { image: 'busybox' } },
    },
    specVersion: { index: 1 },
  })
})
for (let s = 0; s < STREAMS; s++)
  void (async () => {
    try {
      for await (const _ of dispatcher.mesh(`n${s}`, stop.signal)) lists++
    } catch {}
  })()
const idle = () => new Promise((r) => setTimeout(r, 50))
await idle()
const sentBefore = lists
const c0 = process.cpuUsage()
const t0 = performance.now()
for (let c = 0; c < COMMITS; c++) {
  await store.update((tx) => {
    for (let i = 0; i < PER_COMMIT; i++) {
      const id = `t${(c % 2) * PER_COMMIT + i}`
      const t = tx.get('tasks', id)
      if (t) tx.update('tasks', { ...t, status: { ...t.status, message: `commit ${c}` } })
      else tx.create('tasks', task((c % 2) * PER_COMMIT + i, 'new'))
    }
  })
  await new Promise((r) => setImmediate(r))
}
await idle()
const cpu = process.cpuUsage(c0)
const ms = (cpu.user + cpu.system) / 1000
const changes = COMMITS * PER_COMMIT
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; load average ${loadavg()[0]!.toFixed(1)}\n` +
    `${STREAMS} mesh streams, ${changes} task changes in ${COMMITS} commits: ${ms.toFixed(0)} ms CPU ` +
    `(${((ms * 1000) / changes).toFixed(1)} us per task change), ${(performance.now() - t0).toFixed(0)} ms, ` +
    `${lists - sentBefore} lists sent`,
)
stop.abort()
dispatcher.close()
process.exit(0)
