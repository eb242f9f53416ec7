// CPU time of server processes during a measured window, read from /proc (Linux): each process's user + system
// time from /proc/PID/stat, and the whole machine's busy time from /proc/stat, so a figure can say whether the
// servers, the load driver or someone else's processes had the cores.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const ticksPerSecond = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(r.stdout?.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
})()

/**
 * CPU seconds (user + system) in the text of a /proc/PID/stat: the process's own, and that of its children it
 * has waited for.
 */
export function parseProcStat(stat: string): { self: number; children: number } {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number)
  return { self: (f[11]! + f[12]!) / ticksPerSecond, children: (f[13]! + f[14]!) / ticksPerSecond }
}

/** User + system CPU seconds a live process has used, or NaN when it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).self
  } catch {
    return Number.NaN
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) since boot. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0) // idle + iowait
  return { busy: (total - idle) / ticksPerSecond, total: total / ticksPerSecond }
}

/** What a {@link watchCpu} window measured: CPU in cores (CPU seconds per wall second). */
export interface CpuWindow {
  /** Per watched process, in the order given. */
  readonly perProcess: number[]
  /** All the machine's cores together (2.0 = both cores of a 2-core machine busy all the time). */
  readonly machineBusy: number
  readonly seconds: number
}

/** Starts measuring `pids`; the returned function ends the window. */
export function watchCpu(pids: readonly number[]): () => CpuWindow {
  const t0 = performance.now()
  const before = pids.map(processCpuSeconds)
  const m0 = machineCpuSeconds()
  return () => {
    const seconds = (performance.now() - t0) / 1000
    const after = pids.map(processCpuSeconds)
    const m1 = machineCpuSeconds()
    return {
      perProcess: after.map((a, k) => (a - before[k]!) / seconds),
      machineBusy: (m1.busy - m0.busy) / seconds,
      seconds,
    }
  }
}
