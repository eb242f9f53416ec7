// A manager's event-loop stalls, logged as etcd logs a leader's late heartbeats: while the loop is held, no
// heartbeat goes out, and a stall longer than the election timeout (300-600 ms) lets the followers elect
// another leader. Each line says how much of the stall was garbage collection (a new leader at 150,000 tasks
// holds a heap of a GiB or more) and, on Linux, where the loop's thread spent it (the kernel's accounting in
// /proc/thread-self/schedstat): on a CPU (the manager's own work), waiting for one (an oversubscribed host), or
// neither (blocked in a system call, e.g. a write to a stalling disk). An operator, or a benchmark's log, can
// tell these apart; elsewhere the line gives the process's CPU time in the stall.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { PerformanceObserver } from 'node:perf_hooks'

export interface LoopStallWatch {
  /** Stalls seen so far (logged or not). */
  readonly stalls: number
  close(): void
}

export interface LoopStallOptions {
  readonly log: (line: string) => void
  /** A gap of the sampling timer longer than this is a stall. Default 250 ms (under the election timeout). */
  readonly thresholdMs?: number
  /** How often the loop is sampled. Default 50 ms. */
  readonly tickMs?: number
  /** At most one line per this many milliseconds; the stalls in between are counted in the next line. */
  readonly quietMs?: number
}

/** Where the loop's thread's time went, in ms since some start: on a CPU, and runnable but waiting for one. */
interface ThreadTimes {
  readonly runMs: number
  /** NaN where the kernel's accounting is missing (then `runMs` is the whole process's CPU time). */
  readonly waitMs: number
}

const SCHEDSTAT = '/proc/thread-self/schedstat'

/** The calling thread's times from the kernel's scheduler statistics, or undefined where there are none. */
export function loopThreadTimes(fd?: number): ThreadTimes | undefined {
  try {
    const text = fd === undefined ? readFileSync(SCHEDSTAT, 'latin1') : readAt(fd)
    const [run, wait] = text.split(' ')
    const runMs = Number(run) / 1e6
    const waitMs = Number(wait) / 1e6
    return Number.isFinite(runMs) && Number.isFinite(waitMs) ? { runMs, waitMs } : undefined
  } catch {
    return undefined
  }
}

const schedBuf = Buffer.alloc(128)
function readAt(fd: number): string {
  const n = readSync(fd, schedBuf, 0, schedBuf.length, 0)
  return schedBuf.toString('latin1', 0, n)
}

/**
 * What the loop's thread did during a stall of `ms`, as the end of a log line. The times cover the whole gap
 * between two ticks (a tick's own wait included), so the blocked time is a lower bound.
 */
function whereItWent(ms: number, from: ThreadTimes, to: ThreadTimes): string {
  const run = to.runMs - from.runMs
  if (Number.isNaN(to.waitMs)) return `, ${Math.round(run)} ms of the process's CPU in it`
  const wait = to.waitMs - from.waitMs
  const blocked = Math.max(0, ms - run - wait)
  return `; the loop's thread ran ${Math.round(run)} ms, waited ${Math.round(wait)} ms for a CPU and was blocked ${Math.round(blocked)} ms`
}

export function watchLoopStalls(options: LoopStallOptions): LoopStallWatch {
  const thresholdMs = options.thresholdMs ?? 250
  const tickMs = options.tickMs ?? 50
  const quietMs = options.quietMs ?? 1000
  if (!(tickMs > 0) || !(thresholdMs > tickMs))
    throw new RangeError('thresholdMs must be more than tickMs > 0')
  // Recent collections as [start, end] on performance.now()'s clock, kept for a few seconds.
  let gcs: [number, number][] = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration])
  })
  observer.observe({ entryTypes: ['gc'] })
  let stalls = 0
  let unlogged = 0
  let lastLine = Number.NEGATIVE_INFINITY
  let last = performance.now()
  // The thread's own file, opened once on the loop's thread (one read a tick); elsewhere the process's CPU.
  let fd: number | undefined
  try {
    fd = openSync(SCHEDSTAT, 'r')
    if (!loopThreadTimes(fd)) throw new Error('unreadable')
  } catch {
    if (fd !== undefined) closeSync(fd)
    fd = undefined
  }
  const sample = (): ThreadTimes => {
    const t = fd === undefined ? undefined : loopThreadTimes(fd)
    if (t) return t
    // (Unreadable now: the process's CPU from here on, not a mix of the two.)
    if (fd !== undefined) closeSync(fd)
    fd = undefined
    const u = process.cpuUsage()
    return { runMs: (u.user + u.system) / 1000, waitMs: Number.NaN }
  }
  let lastTimes = sample()
  const timer = setInterval(() => {
    const now = performance.now()
    const gap = now - last
    last = now
    const times = sample()
    const timesBefore = lastTimes
    lastTimes = times
    if (gcs.length > 64) gcs = gcs.filter(([, end]) => end > now - 10_000)
    if (gap <= thresholdMs) return
    stalls++
    if (now - lastLine < quietMs) {
      unlogged++
      return
    }
    let gcMs = 0
    for (const [start, end] of gcs) gcMs += Math.max(0, Math.min(end, now) - Math.max(start, now - gap))
    const more = unlogged > 0 ? ` (and ${unlogged} shorter or earlier stalls since the last report)` : ''
    options.log(
      `event loop stalled for ${Math.round(gap - tickMs)} ms, ${Math.round(gcMs)} ms of it in garbage collection` +
        `${whereItWent(gap - tickMs, timesBefore, times)}${more}`,
    )
    unlogged = 0
    lastLine = now
  }, tickMs)
  timer.unref()
  return {
    get stalls() {
      return stalls
    },
    close() {
      clearInterval(timer)
      observer.disconnect()
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}
