// bench/raft: commits/s and commit latency of a 3-member RaftNode cluster in one process, over
// MemoryNetwork and MemoryLogStorage, with 1, 64 and 256 concurrent proposers on the leader. Baseline in the
// same run: a 1-member cluster (same driver and storage, no replication), so the ratio is replication's cost.
// Each row is the best of ROUNDS interleaved rounds (the machines are shared and noisy), and the CPU time per
// commit (all members, GC included) is reported too, since load moves it much less than wall time.
import { cpus } from 'node:os'
import { MemoryLogStorage, RaftNode } from '@swarmkit/raft'
import { MemoryNetwork } from '@swarmkit/transport'

const DURATION_MS = Number(process.env.BENCH_MS ?? 1500)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP_MS = 300
const PROPOSERS = [1, 64, 256]
const COMMAND = new Uint8Array(64).fill(7)

interface Figures {
  commitsPerS: number
  p50Us: number
  p99Us: number
  cpuUsPerCommit: number
}

async function cluster(size: number) {
  const net = new MemoryNetwork({ seed: 1 })
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`)
  let applied = 0
  const nodes = ids.map(
    (id) =>
      new RaftNode({
        id,
        peers: ids,
        transport: net.transport(id),
        storage: new MemoryLogStorage(),
        stateMachine: {
          apply: () => {
            applied++
            return undefined
          },
          snapshot: () => new Uint8Array(0),
          restore: () => {},
        },
      }),
  )
  await Promise.all(nodes.map((n) => n.start()))
  while (!nodes.some((n) => n.role === 'leader')) await new Promise((r) => setTimeout(r, 5))
  const leader = nodes.find((n) => n.role === 'leader')!
  // Let the no-op commit everywhere before measuring.
  await leader.propose(COMMAND)
  return { nodes, leader, applied: () => applied }
}

async function measure(size: number, proposers: number): Promise<Figures> {
  const { nodes, leader } = await cluster(size)
  const lat = new Float64Array(4_000_000)
  let n = 0
  let measuring = false
  let count = 0
  const warmEnd = performance.now() + WARMUP_MS
  const end = warmEnd + DURATION_MS
  let t0 = 0
  let cpu0 = process.cpuUsage()
  const worker = async () => {
    for (;;) {
      const s = performance.now()
      if (s >= end) return
      if (!measuring && s >= warmEnd) {
        measuring = true
        t0 = s
        cpu0 = process.cpuUsage()
      }
      await leader.propose(COMMAND)
      if (measuring) {
        count++
        if (n < lat.length) lat[n++] = performance.now() - s
      }
    }
  }
  await Promise.all(Array.from({ length: proposers }, worker))
  const elapsed = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await Promise.all(nodes.map((x) => x.stop()))
  const sorted = lat.subarray(0, n).sort()
  const q = (p: number) => sorted[Math.min(n - 1, Math.floor(n * p))]! * 1000
  return {
    commitsPerS: count / elapsed,
    p50Us: q(0.5),
    p99Us: q(0.99),
    cpuUsPerCommit: (cpu.user + cpu.system) / count,
  }
}

const best = (a: Figures | undefined, b: Figures): Figures => (a && a.commitsPerS >= b.commitsPerS ? a : b)
const rows: { name: string; proposers: number; f: Figures }[] = []
const json: Record<string, number> = {}
for (const p of PROPOSERS) {
  let single: Figures | undefined
  let three: Figures | undefined
  for (let round = 0; round < ROUNDS; round++) {
    globalThis.gc?.()
    single = best(single, await measure(1, p))
    globalThis.gc?.()
    three = best(three, await measure(3, p))
  }
  rows.push(
    { name: '1 member (baseline)', proposers: p, f: single! },
    { name: '3 members', proposers: p, f: three! },
  )
  json[`commits_per_s_${p}`] = Math.round(three!.commitsPerS)
  json[`p50_us_${p}`] = Math.round(three!.p50Us)
  json[`p99_us_${p}`] = Math.round(three!.p99Us)
  json[`cpu_us_per_commit_${p}`] = Math.round(three!.cpuUsPerCommit * 100) / 100
  json[`single_commits_per_s_${p}`] = Math.round(single!.commitsPerS)
  json[`vs_single_${p}`] = Math.round((three!.commitsPerS / single!.commitsPerS) * 100) / 100
}

console.log(
  `raft: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, best of ${ROUNDS} rounds of ${DURATION_MS} ms`,
)
console.log('cluster               proposers   commits/s    p50 µs    p99 µs  CPU µs/commit')
for (const r of rows) {
  console.log(
    `${r.name.padEnd(22)}${String(r.proposers).padStart(9)}${Math.round(r.f.commitsPerS).toLocaleString('en-US').padStart(12)}${Math.round(r.f.p50Us).toString().padStart(10)}${Math.round(r.f.p99Us).toString().padStart(10)}${r.f.cpuUsPerCommit.toFixed(2).padStart(15)}`,
  )
}
console.log(JSON.stringify(json))
