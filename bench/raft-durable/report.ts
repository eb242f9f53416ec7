// The tables and the closing JSON line of bench/raft-durable.
import type { Measured } from './drivers.js'
import type { StorageRun } from './storage-run.js'

export interface Row extends Measured {
  readonly label: string
  readonly system: 'raft-kv' | 'etcd'
  /** Driver processes (1 for etcd's own tool, which is one multi-threaded Go process). */
  readonly procs: number
  /** The leader changed during the run. */
  readonly leaderChanged: boolean
}

export interface LevelRows {
  readonly writers: number
  readonly rows: Row[]
}

const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

export function printStorage(storage: readonly StorageRun[]): void {
  console.log('')
  console.log('FileLogStorage | saves/s (1 entry each)      MB/s   fdatasync/s')
  for (const r of storage) {
    console.log(
      `${String(r.writers).padStart(3)} writers    | ${fmt(r.savesPerSec).padStart(22)} ${fmt(r.mbPerSec, 1).padStart(9)} ${fmt(r.syncsPerSec).padStart(13)}`,
    )
  }
}

/** The fastest row of a system at one level (the figure each system is judged by). */
export function best(level: LevelRows, system: Row['system']): Row {
  return level.rows
    .filter((r) => r.system === system)
    .reduce((a, b) => (b.result.writesPerSec > a.result.writesPerSec ? b : a))
}

/** Writes per CPU-second of the three members together: what each system gets out of the CPU it was given. */
export function perCpu(r: Row): number {
  return r.result.writesPerSec / r.serverCpu.reduce((a, b) => a + b, 0)
}

function driverName(r: Row): string {
  if (r.label.includes('benchmark')) return r.label
  return `${r.label}, ${r.procs} proc${r.procs > 1 ? 's' : ''}`
}

/**
 * One level: a row per run with its members' CPU (cores each, and their sum), the driver processes' CPU and
 * the whole machine's (2.00 = both cores busy; what is not ours is other people's jobs), then the ratio of the
 * best raft-kv row to the best etcd row.
 */
export function printLevel(round: number, level: LevelRows): void {
  console.log('')
  console.log(
    `round ${round}, ${level.writers} writer${level.writers > 1 ? 's' : ''}: driver              |  writes/s  p50 ms  p99 ms | members' CPU (cores)      sum | writes/CPU-s | driver CPU | machine`,
  )
  for (const r of level.rows) {
    const members = r.serverCpu.map((c) => fmt(c, 2).padStart(4)).join(' ')
    const sum = r.serverCpu.reduce((a, b) => a + b, 0)
    console.log(
      `  ${driverName(r).padEnd(36)} | ${fmt(r.result.writesPerSec).padStart(9)} ${fmt(r.result.p50Ms, 2).padStart(7)} ${fmt(r.result.p99Ms, 2).padStart(7)} | ` +
        `${members.padEnd(18)} = ${fmt(sum, 2).padStart(5)} | ${fmt(r.result.writesPerSec / sum).padStart(12)} | ${fmt(r.clientCpu, 2).padStart(10)} | ${fmt(r.machineBusy, 2).padStart(7)}` +
        (r.result.errors ? `  (${r.result.errors} errors: ${r.result.firstError})` : '') +
        (r.leaderChanged ? '  (leader changed)' : ''),
    )
  }
  const kv = best(level, 'raft-kv')
  const etcd = best(level, 'etcd')
  console.log(
    `  best raft-kv / best etcd: ${fmt(kv.result.writesPerSec / etcd.result.writesPerSec, 2)}x writes/s, ` +
      `${fmt(perCpu(kv) / perCpu(etcd), 2)}x writes per members' CPU-second; ` +
      `p99 ${fmt(kv.result.p99Ms, 2)} vs ${fmt(etcd.result.p99Ms, 2)} ms; p50 ${fmt(kv.result.p50Ms, 2)} vs ${fmt(etcd.result.p50Ms, 2)} ms`,
  )
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)]!
}
const round3 = (n: number) => Number(n.toFixed(3))

/**
 * The closing JSON line: per level the median over rounds of the best raft-kv and best etcd rows and their
 * ratio, with each round's ratio in `*_runs`, and per driver the members' CPU sum and the driver's CPU.
 */
export function summaryJson(
  version: string,
  loadStart: number,
  loadEnd: number,
  storage: readonly StorageRun[],
  rounds: readonly (readonly LevelRows[])[],
): Record<string, number | string | number[]> {
  const json: Record<string, number | string | number[]> = {
    etcd_version: version,
    rounds: rounds.length,
    load_avg_1m_start: Number(loadStart.toFixed(2)),
    load_avg_1m_end: Number(loadEnd.toFixed(2)),
  }
  for (const r of storage) {
    json[`storage_saves_per_s_${r.writers}`] = Math.round(r.savesPerSec)
    json[`storage_fsyncs_per_s_${r.writers}`] = Math.round(r.syncsPerSec)
    json[`storage_mb_per_s_${r.writers}`] = Number(r.mbPerSec.toFixed(1))
  }
  const levels = rounds[0]?.map((l) => l.writers) ?? []
  for (const [k, w] of levels.entries()) {
    const at = rounds.map((levelsOfRound) => levelsOfRound[k]!)
    const kv = at.map((l) => best(l, 'raft-kv').result)
    const etcd = at.map((l) => best(l, 'etcd').result)
    const ratios = at.map((_, i) => round3(kv[i]!.writesPerSec / etcd[i]!.writesPerSec))
    json[`raftkv_writes_per_s_${w}`] = Math.round(median(kv.map((r) => r.writesPerSec)))
    json[`raftkv_p50_ms_${w}`] = round3(median(kv.map((r) => r.p50Ms)))
    json[`raftkv_p99_ms_${w}`] = round3(median(kv.map((r) => r.p99Ms)))
    json[`etcd_writes_per_s_${w}`] = Math.round(median(etcd.map((r) => r.writesPerSec)))
    json[`etcd_p50_ms_${w}`] = round3(median(etcd.map((r) => r.p50Ms)))
    json[`etcd_p99_ms_${w}`] = round3(median(etcd.map((r) => r.p99Ms)))
    json[`writes_vs_etcd_${w}`] = median(ratios)
    json[`writes_vs_etcd_${w}_runs`] = ratios
    const cpuRatios = at.map((l) => round3(perCpu(best(l, 'raft-kv')) / perCpu(best(l, 'etcd'))))
    json[`writes_per_cpu_vs_etcd_${w}`] = median(cpuRatios)
    json[`writes_per_cpu_vs_etcd_${w}_runs`] = cpuRatios
    for (const row of at[0]!.rows) {
      const key = `${row.system === 'raft-kv' ? 'raftkv' : 'etcd'}_${row.label.includes('benchmark') ? 'tool' : `procs${row.procs}`}_${w}`
      const same = at.map((l) => l.rows.find((r) => r.label === row.label && r.procs === row.procs)!)
      json[`${key}_writes_per_s`] = Math.round(median(same.map((r) => r.result.writesPerSec)))
      json[`${key}_members_cpu`] = round3(median(same.map((r) => r.serverCpu.reduce((a, b) => a + b, 0))))
      json[`${key}_driver_cpu`] = round3(median(same.map((r) => r.clientCpu)))
    }
  }
  return json
}
