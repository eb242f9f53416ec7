// bench/cluster-scale: Swarm3k on one machine (issue 18). Three manager processes of the reference cluster
// (examples/cluster/dist/cli.js, built: durable raft log with fsync, mutual TLS between managers and to every
// worker) and N simulated workers in a few worker host processes (each worker with its own key, certificate,
// source address and mutual TLS session, heartbeating at the default 5 s period), joined over all three
// managers. Steps: join N nodes; `service create --replicas R` until R tasks run; scale up by a fifth and
// back down; a rolling update of all R tasks at parallelism 0; a second rolling update with the leader
// SIGKILLed half way, then a check that every slot runs exactly one task. Throughout, a separate client
// process times `node ls`, `service ls` and `info`. The managers are drained (tasks go to the workers).
//
// SCALE_NODES (N, default 100), SCALE_REPLICAS (R, default 10000), SCALE_HOSTS (worker host processes,
// default 1 per 1,000 nodes, at most 3), SCALE_JOIN_CONCURRENCY (joins in flight per host, default 32),
// SCALE_STEP_TIMEOUT_S (default 600), SCALE_HEARTBEAT_GRAIN_MS (the simulated agents' heartbeat timer grain,
// default 50; 1 spreads a host's heartbeats as separate machines would), SCALE_MESH=0 (the simulated
// workers leave the routing mesh stream out; by default they follow it as daemons do), SCALE_SKIP (comma-separated steps to leave out: `scale`, `update`,
// `kill`), SCALE_STOP_AFTER (`join`: after the join and the idle heartbeats; `create`: after the first
// convergence), SCALE_SNAPSHOT_INTERVAL (the managers' `--snapshot-interval`, default theirs: 10,000 raft
// entries; lower it to see snapshots sooner), SCALE_HEAP_DIR (a heap snapshot of every manager there once the
// create has converged), SCALE_PROFILE (a directory: CPU profiles and event-loop stalls of the managers;
// `node bench/cluster-scale/stalls.mjs DIR` names the code inside each stall), SCALE_STALL_MS (the loop gap
// a profiled manager records as a stall, default 200 ms), SCALE_LOG_DIR (a directory: the managers' logs are
// copied there at the end; the leader kill's timeline is in them), SCALE_WORKER_NICE (the worker hosts' nice
// value, default 0), SCALE_WORKER_NODE_ARGS (node options of the worker hosts). SCALE_MEM_LOG=FILE: each manager's RSS, V8
// heap and external memory every second (the samples into FILE, the peak per phase printed at the end); with
// SCALE_HEAP_DIR, a heap snapshot of the new leader too once it has made progress after the leader kill.
// SCALE_V8_FLAGS: V8 flags for the managers (withV8Flags below).
import { type ChildProcess, fork } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { cpus, loadavg, setPriority, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ChaosCluster, type ManagerProcess, until } from '../../examples/cluster/test/chaos/managers.js'
import { apiProbe } from './api-probe.js'
import { memSampler } from './mem-sampler.js'
import {
  type Counters,
  cpuSeconds,
  machineBusySeconds,
  peakRssMiB,
  quantile,
  rssMiB,
  scrape,
  sortNum,
} from './stats.js'
import { workerHost } from './workers.js'

const N = Number(process.env['SCALE_NODES'] ?? 100)
const R = Number(process.env['SCALE_REPLICAS'] ?? 10_000)
const HOSTS = Number(process.env['SCALE_HOSTS'] ?? Math.min(3, Math.max(1, Math.ceil(N / 1000))))
const CONCURRENCY = Number(process.env['SCALE_JOIN_CONCURRENCY'] ?? 32)
const STEP_TIMEOUT = Number(process.env['SCALE_STEP_TIMEOUT_S'] ?? 600) * 1000
/** `join`: stop after the join and idle heartbeats; `create`: after the first convergence (profiling runs). */
const STOP_AFTER = process.env['SCALE_STOP_AFTER']
/** SCALE_WORKER_NODE_ARGS: node options of the worker host processes (e.g. `--max-semi-space-size=32`). */
const WORKER_EXEC_ARGV = (process.env['SCALE_WORKER_NODE_ARGS'] ?? '').split(' ').filter(Boolean)
/**
 * SCALE_WORKER_NICE: the worker hosts' nice value (default 0). They stand in for 5,000 machines of their own;
 * on one box they take the managers' cores, and a positive value gives the managers the CPU first, as
 * separate machines would (to see how much of a figure is that contention).
 */
const WORKER_NICE = Number(process.env['SCALE_WORKER_NICE'] ?? 0)
if (!Number.isInteger(WORKER_NICE) || WORKER_NICE < -20 || WORKER_NICE > 19) {
  console.error('SCALE_WORKER_NICE must be an integer from -20 to 19')
  process.exit(2)
}
/** Steps left out (profiling one step at a time). */
const SKIP = new Set((process.env['SCALE_SKIP'] ?? '').split(',').filter(Boolean))
/**
 * A directory: once the create has converged, every manager writes a heap snapshot there (the managers run
 * with --heapsnapshot-signal; for what holds a manager's memory per task, at small scales).
 */
const HEAP_DIR = process.env['SCALE_HEAP_DIR']
if (HEAP_DIR) {
  mkdirSync(HEAP_DIR, { recursive: true })
  process.env['NODE_OPTIONS'] =
    `${process.env['NODE_OPTIONS'] ?? ''} --heapsnapshot-signal=SIGWINCH --diagnostic-dir=${HEAP_DIR}`.trim()
}

/** Each manager writes a heap snapshot into `dir`; resolves once every file has stopped growing. */
async function heapSnapshots(managers: readonly ManagerProcess[], dir: string): Promise<void> {
  const before = new Set(readdirSync(dir))
  const pids = managers.flatMap((m) => (m.up && m.proc?.pid ? [m.proc.pid] : []))
  for (const pid of pids) process.kill(pid, 'SIGWINCH')
  let sizes = ''
  for (let stable = 0; stable < 3; ) {
    await new Promise((r) => setTimeout(r, 2000))
    const files = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'))
    const bytes = files.map((f) => statSync(join(dir, f)).size)
    const now = bytes.join(',')
    // A file appears empty while its snapshot is taken, then grows as it is written.
    const written = files.length >= pids.length && bytes.every((b) => b > 0)
    stable = written && now === sizes ? stable + 1 : 0
    sizes = now
  }
  console.log(`   heap snapshots of ${pids.length} managers in ${dir}`)
}

/** A directory: the managers run with --cpu-prof and are stopped cleanly at the end, writing profiles there. */
const PROFILE = process.env['SCALE_PROFILE']
/** A file: the managers' memory samples (mem-sampler.ts). */
const MEM_LOG = process.env['SCALE_MEM_LOG']
/** The event-loop gap (ms) a profiled manager records as a stall (the 50 ms timer period included). */
const STALL_MS = Number(process.env['SCALE_STALL_MS'] ?? 200)
const SNAPSHOT_INTERVAL = process.env['SCALE_SNAPSHOT_INTERVAL']
const CLI = fileURLToPath(new URL('../../examples/cluster/dist/cli.js', import.meta.url))

async function freePort(host: string): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, host, r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

/**
 * A wrapper around the CLI that profiles the process with the inspector and writes the profile to `dir` on
 * SIGUSR2 (the managers are SIGKILLed at the end, and --cpu-prof is not allowed in NODE_OPTIONS).
 */
function profilingCli(dir: string): string {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'profiled-cli.mjs')
  writeFileSync(
    file,
    `import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'
const s = new Session()
s.connect()
s.post('Profiler.enable', () => s.post('Profiler.start'))
// Event-loop stalls (a follower's election timeout is 300-600 ms): when, and how long (the timer's own 50 ms
// left out), every gap of the 50 ms timer over SCALE_STALL_MS (default 200: stalls of 150 ms and more).
const stalls = []
let last = performance.now()
setInterval(() => {
  const now = performance.now()
  if (now - last > ${STALL_MS}) {
    stalls.push([Number(process.hrtime.bigint() / 1000n) - Math.round((now - last) * 1000), Math.round(now - last - 50)])
    // Written at once too: a manager that is SIGKILLed (the leader kill) leaves its stalls behind.
    writeFileSync(${JSON.stringify(dir)} + '/stalls-' + process.pid + '.json', JSON.stringify(stalls))
  }
  last = performance.now()
}, 50).unref()
process.on('SIGUSR2', () => s.post('Profiler.stop', (err, r) => {
  if (!err) writeFileSync(${JSON.stringify(dir)} + '/manager-' + process.pid + '.cpuprofile', JSON.stringify(r.profile))
  writeFileSync(${JSON.stringify(dir)} + '/stalls-' + process.pid + '.json', JSON.stringify(stalls))
}))
await import(${JSON.stringify(CLI)})
`,
  )
  return file
}

/**
 * SCALE_V8_FLAGS (e.g. `--heap-growing-percent=100`): V8 flags the managers set as they start, through a
 * wrapper around the CLI (v8.setFlagsFromString; most V8 flags are not allowed in NODE_OPTIONS).
 */
function withV8Flags(cli: string): string {
  const flags = process.env['SCALE_V8_FLAGS']
  if (!flags) return cli
  const dir = mkdtempSync(join(tmpdir(), 'scale-v8-'))
  const file = join(dir, 'v8-flags-cli.mjs')
  writeFileSync(
    file,
    `import { setFlagsFromString } from 'node:v8'
setFlagsFromString(${JSON.stringify(flags)})
await import(${JSON.stringify(pathToFileURL(cli).href)})
`,
  )
  return file
}

/** A child process of this bundle in another role, with request/answer messages over IPC. */
class Child {
  readonly proc: ChildProcess
  #id = 0
  readonly #waiting = new Map<number | string, (m: any) => void>()
  constructor(role: string, args: string[] = [], heapMb = 4096, execArgv: string[] = []) {
    this.proc = fork(process.argv[1]!, args, {
      env: { ...process.env, SCALE_ROLE: role },
      execArgv: [`--max-old-space-size=${heapMb}`, ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.proc.on('message', (m: any) => {
      const key = m.id ?? m.op
      const w = this.#waiting.get(key)
      if (w) {
        this.#waiting.delete(key)
        w(m)
      }
    })
  }
  /** Waits for the next message with this op (one without an id). */
  next(op: string): Promise<any> {
    return new Promise((r) => this.#waiting.set(op, r))
  }
  ask(message: Record<string, unknown>): Promise<any> {
    const id = ++this.#id
    return new Promise((r) => {
      this.#waiting.set(id, r)
      this.proc.send({ ...message, id })
    })
  }
  send(message: Record<string, unknown>): void {
    this.proc.send(message)
  }
}

interface PhaseRecord {
  name: string
  seconds: number
  cpu: number[]
  raftEntries: number
  walBytes: number
  heartbeats: number
  statusUpdates: number
  /** How far the raft term moved: elections held (a leader lost, or a leader's loop stalled too long). */
  elections: number
  extra: Record<string, number | string>
}

/** The probe's latencies per phase: the whole answer, then its first byte alone (the rest is the transfer). */
function printApiLatency(samples: Record<string, Record<string, number[]>>): void {
  for (const [title, suffix] of [
    ['API latency (ms)', ''],
    ['first byte (ms)', ' first byte'],
  ] as const) {
    console.log(
      `${title.padEnd(17)} | phase            | node ls p50/p99 | service ls p50/p99 | info p50/p99`,
    )
    for (const [phase, byName] of Object.entries(samples)) {
      const cell = (n: string) => {
        const s = sortNum(byName[n + suffix] ?? [])
        return `${quantile(s, 0.5).toFixed(0)}/${quantile(s, 0.99).toFixed(0)}`.padStart(8)
      }
      console.log(
        `${''.padEnd(17)} | ${phase.padEnd(16)} | ${cell('node ls').padStart(15)} | ${cell('service ls').padStart(18)} | ${cell('info').padStart(12)}`,
      )
    }
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`)
  const load0 = loadavg()[0]!
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; N=${N} nodes in ${HOSTS} worker host(s), R=${R} replicas; load average ${load0.toFixed(1)}`,
  )
  const maxReplicas = Math.ceil(R * 1.25)
  const cluster = new ChaosCluster({
    cli: withV8Flags(PROFILE ? profilingCli(PROFILE) : CLI),
    args: [
      '--simulated',
      '--max-replicas',
      String(maxReplicas),
      ...(SNAPSHOT_INTERVAL ? ['--snapshot-interval', SNAPSHOT_INTERVAL] : []),
    ],
  })
  const metricsUrl = new Map<ManagerProcess, string>()
  const hosts: Child[] = []
  let probe: Child | undefined
  let apiPrinted = false
  const phases: PhaseRecord[] = []
  const summary: Record<string, number | string | boolean> = {}
  let phaseName = 'setup'
  let sampler: ReturnType<typeof memSampler> | undefined
  try {
    // ---- three managers, each with its metrics endpoint
    const startManager = async () => {
      const m = await cluster.add()
      const host = m.listenAddr.slice(0, m.listenAddr.lastIndexOf(':'))
      const port = await freePort(host)
      metricsUrl.set(m, `http://${host}:${port}/metrics`)
      await m.start(['--metrics-addr', `${host}:${port}`])
      return m
    }
    const m1 = await startManager()
    const init = await m1.request('POST', '/swarm/init', { ListenAddr: m1.listenAddr }, 60_000)
    if (init.status !== 200) throw new Error(`swarm init: ${init.status} ${init.text}`)
    for (let i = 1; i < 3; i++) {
      const token = (await m1.request('GET', '/swarm')).json.JoinTokens.Manager
      const m = await startManager()
      const r = await m.request(
        'POST',
        '/swarm/join',
        { RemoteAddrs: [m1.listenAddr], JoinToken: token },
        60_000,
      )
      if (r.status !== 200) throw new Error(`${m.name} join: ${r.status} ${r.text}`)
    }
    await cluster.waitConverged('three managers', 60_000)
    // Managers run no tasks (as in Swarm2k/3k): drain them.
    for (const n of (await m1.request('GET', '/nodes')).json) {
      const r = await m1.request('POST', `/nodes/${n.ID}/update?version=${n.Version.Index}`, {
        ...n.Spec,
        Availability: 'drain',
      })
      if (r.status !== 200) throw new Error(`drain ${n.ID}: ${r.status} ${r.text}`)
    }
    const managers = cluster.managers
    if (MEM_LOG)
      sampler = memSampler(
        managers.map((m) => ({ name: m.name, pid: () => m.proc?.pid, metricsUrl: metricsUrl.get(m)! })),
        () => phaseName,
      )
    const up = () => managers.filter((m) => m.up)
    const any = () => up()[0]!

    // ---- measurement helpers
    probe = new Child(
      'api',
      managers.map((m) => m.socket),
      512,
    )
    // A killed manager keeps the CPU it had used when last seen; its counters drop out of the deltas.
    const lastCpu = managers.map(() => 0)
    const snapshot = async () => {
      const counters: Counters[] = []
      for (const m of managers) counters.push(m.up ? await scrape(metricsUrl.get(m)!) : {})
      const cpu = managers.map((m, i) => (lastCpu[i] = Math.max(lastCpu[i]!, cpuSeconds(m.proc?.pid))))
      // The worker hosts share the machine's cores with the managers (their cost is the nodes' own).
      const workersCpu = hosts.reduce((a, h) => a + cpuSeconds(h.proc.pid), 0)
      return { at: performance.now(), cpu, workersCpu, machine: machineBusySeconds(), counters }
    }
    type Snap = Awaited<ReturnType<typeof snapshot>>
    const deltas = (a: Snap, b: Snap, k: string) =>
      a.counters.flatMap((c, i) =>
        c[k] !== undefined && b.counters[i]![k] !== undefined ? [b.counters[i]![k]! - c[k]!] : [],
      )
    const sum = (a: Snap, b: Snap, k: string) => deltas(a, b, k).reduce((x, y) => x + y, 0)
    const max = (a: Snap, b: Snap, k: string) => Math.max(0, ...deltas(a, b, k))
    let before = await snapshot()
    const beginPhase = async (name: string) => {
      probe!.send({ op: 'phase', phase: name })
      phaseName = name
      before = await snapshot()
      // The monotonic clock profiles use (µs), to cut a profile to one phase.
      console.log(`-- ${name}${PROFILE ? ` (profile clock ${process.hrtime.bigint() / 1000n} µs)` : ''}`)
    }
    const endPhase = async (name: string, extra: Record<string, number | string> = {}) => {
      const after = await snapshot()
      if (PROFILE) console.log(`   ${name} ends at profile clock ${process.hrtime.bigint() / 1000n} µs`)
      const rec: PhaseRecord = {
        name,
        seconds: (after.at - before.at) / 1000,
        cpu: after.cpu.map((c, i) => c - before.cpu[i]!),
        raftEntries: max(before, after, 'swarm_raft_commit_index'),
        walBytes: max(before, after, 'swarm_raft_wal_written_bytes_total'),
        heartbeats: sum(before, after, 'swarm_dispatcher_heartbeats_total'),
        statusUpdates: sum(before, after, 'swarm_dispatcher_status_updates_total'),
        elections: max(before, after, 'swarm_raft_term'),
        extra: {
          ...extra,
          workers_cpu_s: Number((after.workersCpu - before.workersCpu).toFixed(1)),
          // Everything the machine's cores did meanwhile (the cluster, the bench, and whatever else runs).
          machine_busy_cpu_s: Number((after.machine - before.machine).toFixed(1)),
        },
      }
      phases.push(rec)
      await running()
      if (Object.keys(agentLog).length > 0)
        console.log(`   agents logged so far: ${JSON.stringify(agentLog)}`)
      console.log(
        `   ${rec.seconds.toFixed(1)} s; managers' CPU ${rec.cpu.map((c) => c.toFixed(1)).join(' / ')} s; ` +
          `raft entries ${rec.raftEntries}, leader WAL ${(rec.walBytes / 2 ** 20).toFixed(1)} MiB; ` +
          `heartbeats ${rec.heartbeats}, status updates ${rec.statusUpdates}; elections ${rec.elections}; ` +
          JSON.stringify(rec.extra),
      )
      console.log(`   ${cpuFloor(rec)}`)
      probe!.send({ op: 'phase', phase: 'idle' })
      phaseName = `after ${name}`
      return rec
    }
    // The limit a phase's own work sets on this machine: the cluster's processes cannot have needed less
    // wall time than their CPU time spread over every core, whatever the code's schedule.
    const cpuFloor = (rec: PhaseRecord) => {
      const cores = cpus().length
      const managersCpu = rec.cpu.reduce((a, b) => a + b, 0)
      const workersCpu = Number(rec.extra['workers_cpu_s'])
      const busy = Number(rec.extra['machine_busy_cpu_s'])
      const floor = (managersCpu + workersCpu) / cores
      return (
        `CPU floor: managers ${managersCpu.toFixed(1)} + worker hosts ${workersCpu.toFixed(1)} CPU-s on ${cores} cores ` +
        `cannot take less than ${floor.toFixed(1)} s (took ${rec.seconds.toFixed(1)} s; the machine's cores were ` +
        `busy ${busy.toFixed(1)} of ${(rec.seconds * cores).toFixed(1)} CPU-s)`
      )
    }
    let agentLog: Record<string, number> = {}
    const running = async () => {
      const total: Record<string, number> = {}
      agentLog = {}
      for (const h of hosts) {
        const answer = await h.ask({ op: 'count' })
        for (const [k, n] of Object.entries(answer.logged as Record<string, number>))
          agentLog[k] = (agentLog[k] ?? 0) + n
        const r = answer.running as Record<string, number>
        for (const [g, n] of Object.entries(r)) total[g] = (total[g] ?? 0) + n
      }
      return total
    }
    const detail = async (gen: string, since: number) => {
      const seen: number[] = []
      const ran: number[] = []
      const slots: number[] = []
      for (const h of hosts) {
        const d = await h.ask({ op: 'detail', gen, since })
        seen.push(...d.seen)
        ran.push(...d.ran)
        slots.push(...d.slots)
      }
      return { seen: sortNum(seen), ran: sortNum(ran), slots }
    }
    let lastCounts: Record<string, number> = {}
    const waitRunning = (gen: string, want: number, what: string) =>
      until(
        what,
        async () => {
          const r = await running()
          lastCounts = r
          const others = Object.entries(r).filter(([g, n]) => g !== gen && n > 0)
          return (r[gen] ?? 0) === want && others.length === 0
        },
        STEP_TIMEOUT,
        () => `running by generation: ${JSON.stringify(lastCounts)}\n${cluster.explain()}`,
      )
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await any().request(method, path, body, 60_000)
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`)
      return r.json
    }

    // ---- join N nodes
    const token = (await api('GET', '/swarm')).JoinTokens.Worker as string
    const joinAddrs = managers.map((m) => m.listenAddr)
    await beginPhase('join')
    const joinStart = Date.now()
    const per = Math.ceil(N / HOSTS)
    for (let h = 0; h < HOSTS; h++) {
      const c = new Child('workers', [], 6144, WORKER_EXEC_ARGV)
      if (WORKER_NICE !== 0 && c.proc.pid !== undefined) setPriority(c.proc.pid, WORKER_NICE)
      hosts.push(c)
      await c.next('ready')
    }
    const joined = await Promise.all(
      hosts.map((c, h) => {
        const answer = c.next('joined')
        c.send({
          op: 'start',
          host: h,
          count: Math.min(per, N - h * per),
          joinAddrs,
          token,
          concurrency: CONCURRENCY,
        })
        return answer
      }),
    )
    const joinedAll = Date.now()
    summary.join_manager_peak_rss_mib = Math.round(Math.max(...managers.map((m) => peakRssMiB(m.proc?.pid))))
    const ready = await until(
      'every node ready in the API',
      async () => {
        const info = await api('GET', '/info')
        return info.Swarm.Nodes >= N + 3 ? info.Swarm.Nodes : false
      },
      STEP_TIMEOUT,
    )
    const joinMs = sortNum(joined.flatMap((j) => j.joinMs))
    const failedJoins = joined.reduce((a, j) => a + j.failed, 0)
    const joinSeconds = (joinedAll - joinStart) / 1000
    await endPhase('join', {
      joined: joined.reduce((a, j) => a + j.joined, 0),
      failed: failedJoins,
      nodes_listed: ready,
      joins_per_s: Math.round(N / joinSeconds),
      join_p50_ms: quantile(joinMs, 0.5),
      join_p99_ms: quantile(joinMs, 0.99),
    })
    summary.join_s = Number(joinSeconds.toFixed(1))
    {
      const j = phases[phases.length - 1]!
      const managersCpu = j.cpu.reduce((x, y) => x + y, 0)
      summary.join_manager_cpu_s = Number(managersCpu.toFixed(1))
      summary.join_manager_cpu_ms_per_join = Number(((managersCpu / N) * 1000).toFixed(1))
      summary.join_workers_cpu_s = j.extra['workers_cpu_s'] as number
      summary.join_workers_cpu_ms_per_join = Number(
        (((j.extra['workers_cpu_s'] as number) / N) * 1000).toFixed(1),
      )
      summary.join_machine_busy_cpu_s = j.extra['machine_busy_cpu_s'] as number
      summary.join_machine_cpu_available_s = Number((j.seconds * cpus().length).toFixed(1))
      summary.join_heartbeats = j.heartbeats
      summary.join_elections = j.elections
    }
    summary.joins_per_s = Math.round(N / joinSeconds)
    summary.failed_joins = failedJoins

    // Heartbeats at rest: 20 s with every node joined and nothing else going on.
    await beginPhase('idle heartbeats')
    await new Promise((r) => setTimeout(r, 20_000))
    const idle = await endPhase('idle heartbeats')
    summary.heartbeats_per_s = Math.round(idle.heartbeats / idle.seconds)
    summary.idle_raft_entries = idle.raftEntries
    if (STOP_AFTER === 'join') {
      apiPrinted = true
      printApiLatency((await probe.ask({ op: 'report' })).samples)
      console.log(JSON.stringify({ nodes: N, ...summary, load_avg_1m_end: Number(loadavg()[0]!.toFixed(2)) }))
      return
    }

    // ---- service create --replicas R
    const spec = (gen: number, replicas: number) => ({
      Name: 'scale',
      TaskTemplate: { ContainerSpec: { Image: 'busybox:latest', Env: [`GEN=${gen}`] } },
      Mode: { Replicated: { Replicas: replicas } },
      UpdateConfig: { Parallelism: 0, FailureAction: 'pause', Order: 'stop-first' },
    })
    await beginPhase('create')
    const t0 = Date.now()
    const { ID: serviceId } = await api('POST', '/services/create', spec(1, R))
    await waitRunning('1', R, `${R} tasks running`)
    const created = Date.now()
    const d1 = await detail('1', t0)
    const createRec = await endPhase('create', {
      converge_s: (created - t0) / 1000,
      assigned_p50_ms: quantile(d1.seen, 0.5),
      assigned_p99_ms: quantile(d1.seen, 0.99),
      running_p50_ms: quantile(d1.ran, 0.5),
      running_p99_ms: quantile(d1.ran, 0.99),
    })
    summary.create_converge_s = (created - t0) / 1000
    summary.create_elections = createRec.elections
    summary.create_manager_cpu_s = Number(createRec.cpu.reduce((x, y) => x + y, 0).toFixed(1))
    summary.create_workers_cpu_s = createRec.extra['workers_cpu_s'] as number
    summary.create_cpu_floor_s = Number(
      (
        (createRec.cpu.reduce((x, y) => x + y, 0) + (createRec.extra['workers_cpu_s'] as number)) /
        cpus().length
      ).toFixed(1),
    )
    summary.create_peak_rss_mib = Math.round(Math.max(...managers.map((m) => peakRssMiB(m.proc?.pid))))
    summary.sched_delay_p50_ms = quantile(d1.seen, 0.5)
    summary.sched_delay_p99_ms = quantile(d1.seen, 0.99)
    summary.create_rss_mib = managers.map((m) => Math.round(rssMiB(m.proc?.pid))).join('/')
    if (HEAP_DIR) await heapSnapshots(managers, HEAP_DIR)
    if (STOP_AFTER === 'create') {
      apiPrinted = true
      printApiLatency((await probe.ask({ op: 'report' })).samples)
      console.log(JSON.stringify({ nodes: N, replicas: R, ...summary }))
      return
    }

    const update = async (change: (s: any) => any) => {
      const svc = await api('GET', `/services/${serviceId}`)
      await api('POST', `/services/${serviceId}/update?version=${svc.Version.Index}`, change(svc.Spec))
    }
    /** Slots running more than one task of `gen`, and slots of `expected` running none. */
    const slotCheck = async (gen: string, expected: Set<number>) => {
      const perSlot = new Map<number, number>()
      for (const s of (await detail(gen, 0)).slots) perSlot.set(s, (perSlot.get(s) ?? 0) + 1)
      return {
        duplicated: [...perSlot.values()].filter((n) => n > 1).length,
        missing: [...expected].filter((s) => !perSlot.has(s)).length,
      }
    }
    /** The slots of the tasks of `gen` running now. */
    const slotsOf = async (gen: string) => new Set((await detail(gen, 0)).slots)
    const timed = async (
      name: string,
      gen: string,
      want: number,
      change: (s: any) => any,
      slotsFrom?: string,
    ) => {
      const expected = slotsFrom ? await slotsOf(slotsFrom) : undefined
      await beginPhase(name)
      const start = Date.now()
      await update(change)
      await waitRunning(gen, want, `${name}: ${want} tasks of generation ${gen} running`)
      const s = (Date.now() - start) / 1000
      const extra: Record<string, number> = { converge_s: s }
      // A rolling update: every slot of the old generation runs exactly one task of the new one.
      if (expected) Object.assign(extra, await slotCheck(gen, expected))
      const rec = await endPhase(name, extra)
      const key = name.replace(/\W+/g, '_')
      summary[`${key}_s`] = s
      summary[`${key}_elections`] = rec.elections
      summary[`${key}_manager_cpu_s`] = Number(rec.cpu.reduce((x, y) => x + y, 0).toFixed(1))
      if (expected) {
        summary[`${key}_duplicated_slots`] = extra['duplicated']!
        summary[`${key}_missing_slots`] = extra['missing']!
      }
    }
    const up5 = R + Math.floor(R / 5)
    if (!SKIP.has('scale')) {
      await timed('scale up', '1', up5, (s) => ({ ...s, Mode: { Replicated: { Replicas: up5 } } }))
      await timed('scale down', '1', R, (s) => ({ ...s, Mode: { Replicated: { Replicas: R } } }))
    }
    if (!SKIP.has('update')) {
      await timed(
        'rolling update',
        '2',
        R,
        (s) => ({
          ...s,
          TaskTemplate: {
            ...s.TaskTemplate,
            ContainerSpec: { ...s.TaskTemplate.ContainerSpec, Env: ['GEN=2'] },
          },
        }),
        '1',
      )
    }
    if (SKIP.has('kill')) {
      console.log(JSON.stringify({ nodes: N, replicas: R, ...summary }))
      return
    }

    // ---- a rolling update with the leader killed half way
    await beginPhase('leader kill')
    const killExpected = await slotsOf(SKIP.has('update') ? '1' : '2')
    const k0 = Date.now()
    await update((s) => ({
      ...s,
      TaskTemplate: { ...s.TaskTemplate, ContainerSpec: { ...s.TaskTemplate.ContainerSpec, Env: ['GEN=3'] } },
    }))
    await until('half the tasks updated', async () => ((await running())['3'] ?? 0) >= R / 2, STEP_TIMEOUT)
    const atKill = (await running())['3'] ?? 0
    // The leader of the moment: a stall on a loaded machine may have moved the leadership since the update
    // began, and killing a follower measures nothing (session 14's f-2 did).
    const leader = await cluster.waitLeader(60_000)
    const leaderRss = peakRssMiB(leader.proc?.pid)
    const killedAt = Date.now()
    lastCpu[managers.indexOf(leader)] = cpuSeconds(leader.proc?.pid)
    await leader.kill()
    const next = await until(
      'a new leader',
      async () => {
        const l = await cluster.leader()
        return l && l !== leader ? l : undefined
      },
      STEP_TIMEOUT,
      undefined,
      20,
    )
    const electedMs = Date.now() - killedAt
    // Progress again: more tasks of the new generation running than at the kill (or all of them already).
    const atKillNow = (await running())['3'] ?? 0
    await until(
      'progress after the kill',
      async () => {
        const n = (await running())['3'] ?? 0
        return n > atKillNow || n === R
      },
      STEP_TIMEOUT,
      undefined,
      50,
    )
    const progressMs = Date.now() - killedAt
    // What the new leader holds once it has taken over (the leader duties run, the update goes on).
    if (HEAP_DIR) await heapSnapshots([next], HEAP_DIR)
    await waitRunning('3', R, `${R} tasks of generation 3 running after the leader kill`)
    const doneMs = Date.now() - k0
    const d3 = await detail('3', k0)
    const perSlot = new Map<number, number>()
    for (const s of d3.slots) perSlot.set(s, (perSlot.get(s) ?? 0) + 1)
    const duplicated = [...perSlot.values()].filter((n) => n > 1).length
    const missing = [...killExpected].filter((s) => !perSlot.has(s)).length
    const svcStatus = (await api('GET', '/services?status=true')).find((s: any) => s.ID === serviceId)
    // The takeover's steps as the workers saw them: the first task of the new generation a worker was given,
    // and the first one it ran, after the kill.
    const firstAfterKill = (ms: number[]) => {
      let first = Number.POSITIVE_INFINITY
      for (const x of ms) if (k0 + x > killedAt && x < first) first = x
      return Number.isFinite(first) ? first - (killedAt - k0) : -1
    }
    await endPhase('leader kill', {
      killed: leader.name,
      new_leader: next.name,
      running_at_kill: atKill,
      new_leader_seen_ms: electedMs,
      progress_after_ms: progressMs,
      first_assigned_after_ms: firstAfterKill(d3.seen),
      first_running_after_ms: firstAfterKill(d3.ran),
      converge_s: doneMs / 1000,
      duplicated_slots: duplicated,
      missing_slots: missing,
      api_running: svcStatus?.ServiceStatus?.RunningTasks ?? -1,
    })
    summary.failover_new_leader_ms = electedMs
    summary.failover_progress_ms = progressMs
    summary.kill_converge_s = doneMs / 1000
    summary.duplicated_slots = duplicated
    summary.missing_slots = missing

    // ---- totals
    const report = await probe.ask({ op: 'report' })
    const rss = managers.map((m) => (m === leader ? leaderRss : peakRssMiB(m.proc?.pid)))
    console.log('')
    console.log(
      'phase            |   time s | CPU s m1/m2/m3       | raft entries | WAL MiB | heartbeats/s | status/entry | elections',
    )
    for (const p of phases) {
      const perEntry = p.raftEntries > 0 ? (p.statusUpdates / p.raftEntries).toFixed(1) : '-'
      console.log(
        `${p.name.padEnd(16)} | ${p.seconds.toFixed(1).padStart(8)} | ${p.cpu
          .map((c) => c.toFixed(1))
          .join(' / ')
          .padEnd(
            20,
          )} | ${String(p.raftEntries).padStart(12)} | ${(p.walBytes / 2 ** 20).toFixed(1).padStart(7)} | ${(p.heartbeats / p.seconds).toFixed(0).padStart(12)} | ${perEntry.padStart(12)} | ${String(p.elections).padStart(9)}`,
      )
    }
    console.log('')
    apiPrinted = true
    printApiLatency(report.samples)
    const all = (n: string) =>
      sortNum(
        Object.values(report.samples as Record<string, Record<string, number[]>>).flatMap((b) => b[n] ?? []),
      )
    for (const n of ['node ls', 'service ls', 'info']) {
      const s = all(n)
      summary[`api_${n.replace(' ', '_')}_p50_ms`] = Math.round(quantile(s, 0.5))
      summary[`api_${n.replace(' ', '_')}_p99_ms`] = Math.round(quantile(s, 0.99))
    }
    summary.api_errors = Object.values(report.errors as Record<string, number>).reduce((a, b) => a + b, 0)
    const taskPhases = phases.filter((p) => p.name !== 'join' && p.name !== 'idle heartbeats')
    const entries = taskPhases.reduce((a, p) => a + p.raftEntries, 0)
    const bytes = taskPhases.reduce((a, p) => a + p.walBytes, 0)
    const updates = taskPhases.reduce((a, p) => a + p.statusUpdates, 0)
    // Tasks that went through the cluster in those phases: R created, R/5 up and down, 2R updated.
    const tasksMoved = R + 2 * Math.floor(R / 5) + 2 * R
    summary.raft_entries_per_task = Number((entries / tasksMoved).toFixed(3))
    summary.wal_bytes_per_task = Math.round(bytes / tasksMoved)
    summary.status_updates_per_entry = Number((updates / Math.max(1, entries)).toFixed(1))
    summary.manager_cpu_s = Number(
      phases.reduce((a, p) => a + p.cpu.reduce((x, y) => x + y, 0), 0).toFixed(1),
    )
    summary.manager_peak_rss_mib = Math.round(Math.max(...rss))
    console.log('')
    console.log(
      `managers' peak RSS: ${rss.map((r) => r.toFixed(0)).join(' / ')} MiB (the killed leader's before the kill)`,
    )
    const load1 = loadavg()[0]!
    console.log(`load average ${load0.toFixed(1)} at the start, ${load1.toFixed(1)} at the end`)
    console.log(
      JSON.stringify({
        nodes: N,
        replicas: R,
        worker_hosts: HOSTS,
        ...summary,
        load_avg_1m_start: Number(load0.toFixed(2)),
        load_avg_1m_end: Number(load1.toFixed(2)),
      }),
    )
  } finally {
    // Also when a step timed out: what the managers used and hold at the end.
    const end = await Promise.all(
      cluster.managers.map(async (m) => {
        const c = m.up ? await scrape(metricsUrl.get(m)!) : {}
        return `${m.name}: peak RSS ${Math.round(peakRssMiB(m.proc?.pid))} MiB, CPU ${cpuSeconds(m.proc?.pid).toFixed(1)} s, commit ${c['swarm_raft_commit_index'] ?? '-'}, WAL ${((c['swarm_raft_wal_written_bytes_total'] ?? 0) / 2 ** 20).toFixed(1)} MiB, term ${c['swarm_raft_term'] ?? '-'}`
      }),
    )
    console.log(`at the end (load average ${loadavg()[0]!.toFixed(1)}): ${end.join('; ')}`)
    // A step that timed out: the API latencies up to then.
    if (probe && !apiPrinted) printApiLatency((await probe.ask({ op: 'report' })).samples)
    if (sampler && MEM_LOG) {
      await sampler.stop()
      sampler.report()
      writeFileSync(MEM_LOG, JSON.stringify(sampler.all()))
    }
    probe?.proc.kill('SIGKILL')
    if (PROFILE) {
      await Promise.all(hosts.map((h) => h.ask({ op: 'profile' })))
      for (const m of cluster.managers) m.signal('SIGUSR2')
      await new Promise((r) => setTimeout(r, 5000))
    }
    for (const h of hosts) h.proc.kill('SIGKILL')
    const logDir = process.env['SCALE_LOG_DIR']
    if (logDir) {
      mkdirSync(logDir, { recursive: true })
      for (const m of cluster.managers)
        if (existsSync(m.logFile)) copyFileSync(m.logFile, join(logDir, `${m.name}.log`))
    }
    await cluster.destroy()
  }
}

const role = process.env['SCALE_ROLE']
if (role === 'workers') await workerHost()
else if (role === 'api') await apiProbe(process.argv.slice(2))
else {
  await main()
  process.exit(0)
}
