// bench/store-memory: heap bytes per task on a manager, without a cluster (issue 18: 150,000 tasks under
// 2 GiB). One process per scale builds what a manager holds after `service create --replicas R`: a
// ClusterStore replicated through a one-member RaftNode on a FileLogStorage (so every object is decoded from
// its raft command, as on every manager), R tasks written by the real orchestrator and scheduler, and moved to
// running by worker status reports in the dispatcher's batches (applyStatuses, 2,000 updates per commit).
// Then it takes the parts away one by one, with a full GC before each reading, to see who holds what: raft's
// in-memory log (entries since the last snapshot), the store's event history (watch resume), the store.
//
// MEM_TASKS (comma-separated R, default 50000,150000), MEM_NODES (default 5000), MEM_SPEC (`api`: the
// cluster-scale bench's spec, default; `cli`: what `docker service create` sends, every default filled in),
// MEM_HEAP_TYPES=1 (also a heap snapshot at the smallest R, its top object types by self size).
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { FileLogStorage, RaftNode } from '@swarmkit/raft'
import { createOrchestrator, createScheduler } from '@swarmkit/scheduler'
import { ClusterStore, generateId, type NewObject, type Node } from '@swarmkit/store'
import { MemoryNetwork } from '@swarmkit/transport'
import { allocateEndpoint } from '../../examples/cluster/src/allocator.js'
import { serviceSpecFromDocker } from '../../examples/cluster/src/docker-json.js'
import { applyStatuses } from '../../examples/cluster/src/task-status.js'

const TASKS = (process.env['MEM_TASKS'] ?? '50000,150000').split(',').map(Number)
const NODES = Number(process.env['MEM_NODES'] ?? 5000)
const SPEC = process.env['MEM_SPEC'] ?? 'api'
const HEAP_TYPES = process.env['MEM_HEAP_TYPES'] === '1'
const STATUS_BATCH = 2000

/** The service as bench/cluster-scale creates it, or as docker CLI 28's `service create` sends it. */
function dockerSpec(replicas: number): Record<string, unknown> {
  if (SPEC === 'api')
    return {
      Name: 'scale',
      TaskTemplate: { ContainerSpec: { Image: 'busybox:latest', Env: ['GEN=1'] } },
      Mode: { Replicated: { Replicas: replicas } },
      UpdateConfig: { Parallelism: 0, FailureAction: 'pause', Order: 'stop-first' },
    }
  return {
    Name: 'scale',
    Labels: {},
    TaskTemplate: {
      ContainerSpec: {
        Image: 'busybox:latest@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7',
        Args: ['sleep', 'infinity'],
        Env: ['GEN=1'],
        Init: false,
        StopGracePeriod: 10_000_000_000,
        DNSConfig: {},
        Isolation: 'default',
      },
      Resources: { Limits: {}, Reservations: {} },
      RestartPolicy: { Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 },
      Placement: {},
      ForceUpdate: 0,
      Runtime: 'container',
    },
    Mode: { Replicated: { Replicas: replicas } },
    UpdateConfig: {
      Parallelism: 0,
      FailureAction: 'pause',
      Monitor: 5_000_000_000,
      MaxFailureRatio: 0,
      Order: 'stop-first',
    },
    RollbackConfig: {
      Parallelism: 1,
      FailureAction: 'pause',
      Monitor: 5_000_000_000,
      MaxFailureRatio: 0,
      Order: 'stop-first',
    },
    EndpointSpec: { Mode: 'vip' },
  }
}

/** A worker's node object much as the dispatcher writes it after a join and a registration. */
function workerNode(i: number): NewObject<Node> {
  const id = generateId()
  const addr = `127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: `sim-${i}`,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCPUs: 2e9, memoryBytes: 8 * 2 ** 30 },
      engine: { engineVersion: '28.0.0', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr },
  } as NewObject<Node>
}

const mib = (b: number) => (b / 2 ** 20).toFixed(1)
const gc = (): number => {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with --expose-gc (npm run bench does)')
  for (let i = 0; i < 3; i++) g()
  // The heap and what lives outside it (raft entries' bytes are ArrayBuffers).
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

async function until(what: string, ok: () => boolean, timeoutMs = 600_000): Promise<void> {
  const t0 = Date.now()
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** One scale, in its own process: prints figures and returns them for the JSON line. */
async function measure(R: number): Promise<Record<string, number>> {
  const out: Record<string, number> = { tasks: R, nodes: NODES }
  const h0 = gc()
  const dir = mkdtempSync(join(tmpdir(), 'store-memory-'))
  const storage = await FileLogStorage.open(join(dir, 'raft'), { nodeId: 'm1', clusterId: 'bench' })
  let raft: RaftNode | undefined
  let applyCpuUs = 0
  const store = new ClusterStore({
    limits: { maxReplicas: Math.max(R, 10_000) },
    proposer: (cmd, o) => raft!.propose(cmd, o).then((r) => r.result),
  })
  const net = new MemoryNetwork({ seed: 1 })
  raft = new RaftNode({
    id: 'm1',
    peers: ['m1'],
    transport: net.transport('m1'),
    storage,
    stateMachine: {
      apply: (cmd, index) => {
        // CPU of the store's apply (decode, validation, objects, indexes, watches): the cost per manager.
        const c0 = process.cpuUsage()
        const r = store.apply(cmd, index)
        const c = process.cpuUsage(c0)
        applyCpuUs += c.user + c.system
        return r
      },
      snapshot: () => store.snapshot(),
      restore: (data) => store.restore(data),
    },
    electionTimeoutMs: [300, 600],
    heartbeatIntervalMs: 60,
    // As the managers: the store's own limit (1.5 MiB per transaction) is the one that applies.
    maxProposalBytes: 2 << 20,
  })
  await raft.start()
  await until('a leader', () => raft!.role === 'leader', 10_000)
  let commandBytes = 0
  let commands = 0
  const core = () => (raft as unknown as { core: { log: { entries: { data: Uint8Array }[] } } }).core.log
  const t0 = performance.now()

  // Nodes, in join batches of 250.
  const nodes: string[] = []
  for (let i = 0; i < NODES; i += 250) {
    await store.update((tx) => {
      for (let j = i; j < Math.min(NODES, i + 250); j++) nodes.push(tx.create('nodes', workerNode(j)).id)
    })
  }
  // The service as the API creates it; the orchestrator and scheduler do the rest.
  const spec = serviceSpecFromDocker(dockerSpec(R))
  const serviceId = generateId()
  await store.update((tx) =>
    tx.create('services', { id: serviceId, spec, endpoint: allocateEndpoint(tx, serviceId, spec) }),
  )
  const scheduler = createScheduler({ store })
  const orchestrator = createOrchestrator({ store })
  scheduler.start()
  orchestrator.start()
  const assigned = () =>
    store.view((tx) => tx.find('tasks', { taskState: 'assigned' }).length) +
    store.view((tx) => tx.find('tasks', { taskState: 'running' }).length)
  await until('tasks assigned', () => assigned() >= R)
  const tAssigned = performance.now()
  // Workers report in the dispatcher's batches: a round to `starting` (accepted, preparing and starting
  // squashed into one write, as a report carrying all three does), then a round to `running`.
  for (const [state, message] of [
    ['starting', 'starting'],
    ['running', 'started'],
  ] as const) {
    const byNode = new Map<string, string[]>()
    store.view((tx) => {
      for (const t of tx.find('tasks')) {
        let l = byNode.get(t.nodeId)
        if (!l) byNode.set(t.nodeId, (l = []))
        l.push(t.id)
      }
    })
    let batch: [string, string[]][] = []
    let size = 0
    const flush = async () => {
      const b = batch
      batch = []
      size = 0
      const now = Date.now()
      await store.update((tx) => {
        for (const [nodeId, ids] of b)
          applyStatuses(
            tx,
            nodeId,
            ids.map((taskId) => ({
              taskId,
              state,
              message,
              ...(state === 'running'
                ? { containerStatus: { containerId: taskId, pid: 1, exitCode: 0 } }
                : {}),
            })),
            now,
          )
      })
    }
    for (const entry of byNode) {
      if (size + entry[1].length > STATUS_BATCH && size > 0) await flush()
      batch.push(entry)
      size += entry[1].length
    }
    if (size > 0) await flush()
  }
  await until(
    'tasks running',
    () => store.view((tx) => tx.find('tasks', { taskState: 'running' }).length) >= R,
  )
  out.build_s = Number(((performance.now() - t0) / 1000).toFixed(1))
  out.assign_s = Number(((tAssigned - t0) / 1000).toFixed(1))
  out.apply_cpu_us_per_task = Math.round(applyCpuUs / R)
  await Promise.all([scheduler.stop(), orchestrator.stop()])
  for (const e of core().entries) {
    commandBytes += e.data.byteLength
    commands++
  }
  out.raft_entries_held = commands
  out.raft_entry_bytes_held = commandBytes
  const sample = store.view((tx) => tx.find('tasks')[0]!)
  out.task_json_bytes = JSON.stringify(sample).length

  const hAll = gc()
  out.heap_total_mib = Number(mib(hAll - h0))
  out.heap_per_task_b = Math.round((hAll - h0) / R)
  // Raft's log: stop the node and drop it (its entries, proposals, links), the store keeps its state.
  await raft.stop()
  await storage.close?.()
  raft = undefined
  const hNoRaft = gc()
  out.raft_mib = Number(mib(hAll - hNoRaft))
  out.raft_per_task_b = Math.round((hAll - hNoRaft) / R)
  // The store's event history (the last 10,000 events, for watches that resume).
  ;(store as unknown as { history: { reset(f: number): void } }).history.reset(store.version)
  const hNoHistory = gc()
  out.history_mib = Number(mib(hNoRaft - hNoHistory))
  out.store_mib = Number(mib(hNoHistory - h0))
  out.store_per_task_b = Math.round((hNoHistory - h0) / R)
  out.heap_size_limit_mib = Number(mib(getHeapStatistics().heap_size_limit))
  out.rss_mib = Number(mib(process.memoryUsage().rss))
  if (HEAP_TYPES) topTypes(R)
  store.close()
  rmSync(dir, { recursive: true, force: true })
  return out
}

/** A heap snapshot's object types by self size (what the per-task bytes are made of). */
function topTypes(R: number): void {
  const file = writeHeapSnapshot(join(tmpdir(), `store-memory-${process.pid}.heapsnapshot`))
  const snap = JSON.parse(readFileSync(file, 'utf8'))
  rmSync(file)
  const f = snap.snapshot.meta.node_fields as string[]
  const types = snap.snapshot.meta.node_types[0] as string[]
  const stride = f.length
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((k) => f.indexOf(k))
  const nodes = snap.nodes as number[]
  const strings = snap.strings as string[]
  const by = new Map<string, { n: number; bytes: number }>()
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + iType!]!]!
    const name = type === 'object' || type === 'native' ? strings[nodes[i + iName!]!]! : `(${type})`
    const key = name.length > 40 ? `${name.slice(0, 40)}…` : name
    const e = by.get(key) ?? { n: 0, bytes: 0 }
    e.n++
    e.bytes += nodes[i + iSize!]!
    by.set(key, e)
  }
  const big: [number, string][] = []
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + iType!]!]!
    if (type === 'string' && nodes[i + iSize!]! > 2000)
      big.push([nodes[i + iSize!]!, strings[nodes[i + iName!]!]!.slice(0, 60)])
  }
  big.sort((a, b) => b[0] - a[0])
  console.log(`   largest strings: ${big.length} over 2 KB, ${mib(big.reduce((a, b) => a + b[0], 0))} MiB`)
  for (const [n, t] of big.slice(0, 6)) console.log(`     ${n} ${JSON.stringify(t)}`)
  console.log(`   heap snapshot at ${R} tasks, top types by self size (per task):`)
  for (const [k, e] of [...by].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 14)) {
    console.log(
      `     ${k.padEnd(42)} ${String(e.n).padStart(9)} objects ${mib(e.bytes).padStart(8)} MiB  ${(e.n / R).toFixed(1).padStart(6)} /task ${Math.round(
        e.bytes / R,
      )
        .toString()
        .padStart(6)} B/task`,
    )
  }
}

if (process.env['MEM_CHILD']) {
  const r = await measure(Number(process.env['MEM_CHILD']))
  process.send!(r)
  process.exit(0)
} else {
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; load average ${loadavg()[0]!.toFixed(1)}; spec ${SPEC}; ${NODES} nodes`,
  )
  const results: Record<string, number>[] = []
  for (const R of TASKS) {
    const child = fork(process.argv[1]!, [], {
      env: {
        ...process.env,
        MEM_CHILD: String(R),
        MEM_HEAP_TYPES: HEAP_TYPES && R === Math.min(...TASKS) ? '1' : '',
      },
      execArgv: [
        '--expose-gc',
        '--max-old-space-size=8192',
        ...(process.env['MEM_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['MEM_PROF']}`] : []),
      ],
    })
    const r = await new Promise<Record<string, number>>((res, rej) => {
      child.on('message', (m) => res(m as Record<string, number>))
      child.on('exit', (code) => rej(new Error(`child for ${R} exited with ${code}`)))
    })
    results.push(r)
    console.log(
      `${String(R).padStart(7)} tasks: heap ${r.heap_total_mib} MiB (${r.heap_per_task_b} B/task): store ${r.store_mib} MiB (${r.store_per_task_b} B/task), raft log ${r.raft_mib} MiB (${r.raft_per_task_b} B/task; ${r.raft_entries_held} entries, ${mib(r.raft_entry_bytes_held!)} MiB of commands), event history ${r.history_mib} MiB; apply ${r.apply_cpu_us_per_task} us CPU per task; rss ${r.rss_mib} MiB; built in ${r.build_s} s`,
    )
  }
  console.log(JSON.stringify({ bench: 'store-memory', spec: SPEC, load: loadavg()[0], results }))
}
