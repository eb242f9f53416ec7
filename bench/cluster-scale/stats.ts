// Measurements of bench/cluster-scale: a process's CPU time and peak RSS from /proc, counters from a
// manager's Prometheus metrics, and quantiles.
import { readFileSync } from 'node:fs'

const TICKS = 100 // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, 0 once it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / TICKS
  } catch {
    return 0
  }
}

/**
 * CPU seconds the whole machine has spent busy (all cores, /proc/stat: everything but idle and iowait), to
 * set the cluster's share against what else runs on the machine.
 */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = f
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / TICKS
  } catch {
    return 0
  }
}

/** Peak resident set (VmHWM) of a process in MiB, 0 once it is gone. */
export function peakRssMiB(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

/** Resident set now (VmRSS) of a process in MiB, 0 once it is gone. */
export function rssMiB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : 0
  } catch {
    return 0
  }
}

export type Counters = Record<string, number>

const WANTED = [
  'swarm_raft_commit_index',
  'swarm_raft_wal_written_bytes_total',
  'swarm_dispatcher_heartbeats_total',
  'swarm_dispatcher_status_updates_total',
  'swarm_raft_leader',
  'swarm_raft_snapshots_total',
  'swarm_raft_term',
]

/** The counters this bench reads from one manager's `/metrics` (empty when it does not answer). */
export async function scrape(url: string): Promise<Counters> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text()
    const out: Counters = {}
    for (const line of text.split('\n')) {
      const sp = line.lastIndexOf(' ')
      const name = line.slice(0, sp)
      if (WANTED.includes(name)) out[name] = Number(line.slice(sp + 1))
    }
    return out
  } catch {
    return {}
  }
}

export const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

export const sortNum = (a: number[]) => a.sort((x, y) => x - y)
