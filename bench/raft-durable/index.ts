// bench/raft-durable: writes/s and latency of a three-member raft-kv cluster (three processes on loopback,
// FileLogStorage with O_DSYNC writes, the TCP transport) against a three-member etcd cluster (Debian's
// etcd-server) under the same load: 256-byte values at 1, 64 and 256 concurrent writers for a fixed time each.
// Each load comes from separate driver processes: one, then several (BENCH_CLIENT_PROCS), and for etcd also etcd's
// own Go `benchmark` tool when ETCD_BENCHMARK names it; every member's CPU is read during every run, so the table
// shows whether the servers or the driver were the limit. The bundled script runs itself in several roles
// (argv[2]): the parent orchestrates, `kv-server` is one raft-kv member, `kv-client` and `etcd-client` are drivers.
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { runKvServerCli } from '@swarmkit/example-raft-kv'
import { freePorts, waitFor } from './common.js'
import { watchCpu } from './cpu.js'
import { child, type DriverKind, driverMain, type Measured, runDrivers } from './drivers.js'
import { ensureEtcd, etcdLeaderEndpoint, etcdVersion, startEtcdCluster } from './etcd.js'
import { etcdBenchmarkBinary, runEtcdBenchmarkTool } from './etcd-benchmark.js'
import { type LevelRows, printLevel, printStorage, summaryJson } from './report.js'
import { type StorageRun, storageRun } from './storage-run.js'
import { traceProcess } from './trace.js'

/** Load levels (writers), `BENCH_WRITERS=1,64` for fewer. */
const WRITERS = (process.env['BENCH_WRITERS'] ?? '1,64,256').split(',').map(Number)
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
/** Driver processes for the second run of each level (64 and 256 writers), for both systems. */
const PROCS = Number(process.env['BENCH_CLIENT_PROCS'] ?? 4)
/** Times the whole set of levels is repeated against the same two clusters, to show the spread. */
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 1)
/** gRPC connections etcd's benchmark tool opens to the leader (its `--conns`), at most one per writer. */
const TOOL_CONNS = Number(process.env['ETCD_BENCHMARK_CONNS'] ?? 8)
const role = process.argv[2]
/** Node flags for the raft-kv members (`BENCH_KV_NODE_FLAGS`, space-separated), e.g. V8's heap sizes. */
const MEMBER_FLAGS = (process.env['BENCH_KV_NODE_FLAGS'] ?? '').split(' ').filter((f) => f.length > 0)

interface KvCluster {
  /** The client address of the member that is leader now. */
  leader(): string
  /** Leader changes seen since the cluster came up. */
  leaderChanges(): number
  /** The members' process IDs, for their CPU time. */
  readonly pids: number[]
  stop(): Promise<void>
}

/** Starts three raft-kv member processes on loopback; resolves once all serve and a leader is known. */
async function startKvCluster(): Promise<KvCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-kv-bench-'))
  const ports = await freePorts(6)
  const ids = ['n1', 'n2', 'n3']
  const peers = ids.map((id, k) => `${id}=127.0.0.1:${ports[k]}`).join(',')
  const clientAddr = new Map<string, string>()
  let leader: string | null = null
  let changes = 0
  const members = ids.map((id, k) =>
    child(
      [
        'kv-server',
        '--id',
        id,
        '--data',
        join(dir, id),
        '--peers',
        peers,
        '--client',
        `127.0.0.1:${ports[3 + k]}`,
        // BENCH_KV_PREALLOCATE=0: the members' logs append again (no zeros written ahead), for before/after runs.
        ...(process.env['BENCH_KV_PREALLOCATE']
          ? ['--preallocate-bytes', process.env['BENCH_KV_PREALLOCATE']]
          : []),
      ],
      (line) => {
        const m = /^leader (\S+) term/.exec(line)
        if (m && m[1] !== 'none') {
          if (leader !== null && m[1] !== leader) changes++
          leader = m[1]!
        }
        const r = /^ready (\S+)/.exec(line)
        if (r) clientAddr.set(id, r[1]!)
      },
      MEMBER_FLAGS,
    ),
  )
  const stop = async () => {
    for (const m of members) m.proc.kill('SIGTERM')
    await Promise.allSettled(members.map((m) => m.done))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(async () => clientAddr.size === 3 && leader !== null, 30_000)
  } catch (e) {
    await stop()
    throw e
  }
  return {
    leader: () => clientAddr.get(leader!)!,
    leaderChanges: () => changes,
    pids: members.map((m) => m.proc.pid!),
    stop,
  }
}

/**
 * The etcd tool's run of one level, sized to last about as long as the others from the rate of its own warm-up
 * run (or etcd's rate so far, if higher).
 */
async function toolRun(
  bin: string,
  endpoints: string[],
  pids: readonly number[],
  writers: number,
  etcdRate: number,
): Promise<Measured> {
  const conns = Math.min(writers, TOOL_CONNS)
  const warm = await runEtcdBenchmarkTool(bin, endpoints, writers, conns, Math.max(writers * 20, 200))
  const rate = Math.max(etcdRate, Number.isFinite(warm.result.writesPerSec) ? warm.result.writesPerSec : 0)
  const stop = watchCpu(pids)
  const total = Math.max(500, Math.round(rate * SECONDS))
  const { result, cpuCores } = await runEtcdBenchmarkTool(bin, endpoints, writers, conns, total)
  const cpu = stop()
  return { result, serverCpu: cpu.perProcess, clientCpu: cpuCores, machineBusy: cpu.machineBusy }
}

/**
 * Both clusters run side by side, and each load level runs against raft-kv and etcd back to back (one driver
 * process each, then several, then etcd's own tool), so that the figures of a level are taken under the same
 * load on a shared machine.
 */
async function runLevels(): Promise<{ version: string; rounds: LevelRows[][] }> {
  const bin = ensureEtcd()
  const tool = etcdBenchmarkBinary()
  const kv = await startKvCluster()
  const dir = mkdtempSync(join(tmpdir(), 'etcd-bench-'))
  try {
    const etcd = await startEtcdCluster(bin, dir)
    try {
      const ms = SECONDS * 1000
      const rounds: LevelRows[][] = []
      for (let round = 1; round <= ROUNDS; round++) {
        const levels: LevelRows[] = []
        for (const writers of WRITERS) {
          const rows: LevelRows['rows'] = []
          // Both systems are driven at their leader, as the raft-kv client is; looked up before each run, and a
          // change of leader during a run is reported with the row (its writes fail or wait for the election).
          const leaderOf = async (kind: DriverKind) =>
            kind === 'kv-client' ? kv.leader() : etcdLeaderEndpoint(etcd.endpoints)
          const run = async (label: string, kind: DriverKind, procs: number) => {
            const target = await leaderOf(kind)
            const changes = kv.leaderChanges()
            const pids = kind === 'kv-client' ? kv.pids : etcd.pids
            const measured = await runDrivers(kind, target, writers, procs, ms, pids)
            const after = await leaderOf(kind)
            const leaderChanged = kind === 'kv-client' ? kv.leaderChanges() > changes : after !== target
            const system = kind === 'kv-client' ? 'raft-kv' : 'etcd'
            rows.push({ label, system, procs, leaderChanged, ...measured })
          }
          await run('raft-kv', 'kv-client', 1)
          await run('etcd, etcd3 client', 'etcd-client', 1)
          if (PROCS > 1 && writers >= PROCS) {
            await run('raft-kv', 'kv-client', PROCS)
            await run('etcd, etcd3 client', 'etcd-client', PROCS)
          }
          if (tool) {
            const rate = Math.max(
              ...rows.filter((r) => r.system === 'etcd').map((r) => r.result.writesPerSec),
            )
            const target = await leaderOf('etcd-client')
            const measured = await toolRun(tool, [target], etcd.pids, writers, rate)
            const leaderChanged = (await leaderOf('etcd-client')) !== target
            rows.push({
              label: "etcd, etcd's benchmark",
              system: 'etcd',
              procs: 1,
              leaderChanged,
              ...measured,
            })
          }
          levels.push({ writers, rows })
          printLevel(round, levels.at(-1)!)
        }
        rounds.push(levels)
      }
      return { version: etcdVersion(bin), rounds }
    } finally {
      await etcd.stop()
    }
  } finally {
    await kv.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function parent(): Promise<void> {
  const loadStart = loadavg()[0]!
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${SECONDS} s per run; 256-byte values; ` +
      `${PROCS} driver processes in the multi-process runs; load average ${loadStart.toFixed(1)}`,
  )
  const tool = etcdBenchmarkBinary()
  console.log(
    tool
      ? `etcd's benchmark tool: ${tool}`
      : "etcd's benchmark tool not found (bench/raft-durable/build-etcd-benchmark.sh builds it; " +
          'or name it in ETCD_BENCHMARK): it is not run',
  )
  // The log alone: one writer pays one fdatasync per save; many writers share each sync (group commit).
  const storage: StorageRun[] = []
  for (const w of [1, 64, 256]) storage.push(await storageRun(w, Math.min(3000, SECONDS * 1000)))
  printStorage(storage)
  const { version, rounds } = await runLevels()
  const loadEnd = loadavg()[0]!
  console.log(`load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end`)
  console.log(JSON.stringify(summaryJson(version, loadStart, loadEnd, storage, rounds)))
}

if (role === 'kv-server') {
  traceProcess(`kv-server-${process.argv[process.argv.indexOf('--id') + 1]}`)
  await runKvServerCli(process.argv.slice(3))
} else if (role === 'kv-client' || role === 'etcd-client') {
  traceProcess(role)
  await driverMain(role, process.argv.slice(3))
} else {
  await parent()
}
