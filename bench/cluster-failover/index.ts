// bench/cluster-failover: how long the reference cluster takes to acknowledge a write after its leader is
// killed. Three manager processes (examples/cluster/dist/cli.js, built) on loopback at the default timeouts
// (election 300-600 ms, raft heartbeat 60 ms, dispatcher heartbeat 5 s), under a steady load of concurrent
// config creates and service updates through the Engine API of whichever manager is up. Each round waits for
// a healthy cluster (every manager back and reachable, a write acknowledged), SIGKILLs the leader, and times
// the kill to the first acknowledgement of a write sent after it; the killed manager is then restarted.
// BENCH_KILLS (default 30) sets the number of rounds, BENCH_WRITERS (default 8) the writers.
import { existsSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Load } from '../../examples/cluster/test/chaos/load.js'
import { ChaosCluster, until } from '../../examples/cluster/test/chaos/managers.js'

const KILLS = Number(process.env['BENCH_KILLS'] ?? 30)
const WRITERS = Number(process.env['BENCH_WRITERS'] ?? 8)
// The bundle runs from bench/.out/: the CLI is examples/cluster/dist/cli.js from the repository root.
const CLI = fileURLToPath(new URL('../../examples/cluster/dist/cli.js', import.meta.url))

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`)
  const loadStart = loadavg()[0]!
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${KILLS} leader kills, ${WRITERS} writers; load average ${loadStart.toFixed(1)}`,
  )
  const cluster = new ChaosCluster({ cli: CLI })
  const samples: { leader: string; ms: number; election: number }[] = []
  let load: Load | undefined
  try {
    await cluster.form(3)
    load = new Load(cluster, {
      writers: WRITERS,
      seed: 1,
      configBytes: 256,
      updateShare: 0.2,
      timeoutMs: 5000,
    })
    await load.start()
    const l = load
    for (let k = 0; k < KILLS; k++) {
      await cluster.waitConverged('all managers back', 180_000)
      const leader = await cluster.waitLeader(120_000)
      const healthy = Date.now()
      await until('a write on the healthy cluster', () => l.firstAckAfter(healthy), 120_000)
      const killedAt = Date.now()
      await leader.kill()
      const next = await until(
        'a new leader',
        async () => {
          const n = await cluster.leader()
          return n && n !== leader ? n : undefined
        },
        120_000,
      )
      const electedSeen = Date.now()
      const acked = await until(
        'a write acknowledged after the kill',
        () => l.firstAckAfter(killedAt),
        120_000,
      )
      samples.push({ leader: leader.name, ms: acked - killedAt, election: electedSeen - killedAt })
      console.log(
        `kill ${String(k + 1).padStart(2)}: ${leader.name} killed, ${next.name} leads; next acknowledged write after ${acked - killedAt} ms`,
      )
      await leader.start()
    }
    await load.stop()
  } finally {
    await load?.stop()
    await cluster.destroy()
  }
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b)
  const seen = samples.map((s) => s.election).sort((a, b) => a - b)
  const loadEnd = loadavg()[0]!
  const gap = load!.longestGap()
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length
  console.log('')
  console.log('leader kill to next acknowledged write | kills   min ms   p50 ms   p99 ms   max ms   mean ms')
  console.log(
    `${''.padStart(38)} | ${String(ms.length).padStart(5)} ${String(ms[0]).padStart(8)} ${String(quantile(ms, 0.5)).padStart(8)} ${String(quantile(ms, 0.99)).padStart(8)} ${String(ms.at(-1)).padStart(8)} ${mean.toFixed(0).padStart(9)}`,
  )
  console.log(
    `new leader seen by the managers' /nodes: p50 ${quantile(seen, 0.5)} ms, p99 ${quantile(seen, 0.99)} ms (polling, an upper bound)`,
  )
  console.log(
    `${load!.acknowledgedCreates} creates acknowledged; longest window without an acknowledged write ${gap.ms} ms`,
  )
  console.log(`load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end`)
  console.log(
    JSON.stringify({
      kills: ms.length,
      writers: WRITERS,
      failover_min_ms: ms[0],
      failover_p50_ms: quantile(ms, 0.5),
      failover_p99_ms: quantile(ms, 0.99),
      failover_max_ms: ms.at(-1),
      failover_mean_ms: Math.round(mean),
      leader_seen_p50_ms: quantile(seen, 0.5),
      acknowledged_creates: load!.acknowledgedCreates,
      longest_window_ms: gap.ms,
      load_avg_1m_start: Number(loadStart.toFixed(2)),
      load_avg_1m_end: Number(loadEnd.toFixed(2)),
    }),
  )
}

await main()
process.exit(0)
