// A manager's event-loop stalls, logged as etcd logs a leader's late heartbeats: while the loop is held, no
// heartbeat goes out, and a stall longer than the election timeout (300-600 ms) lets the followers elect
// another leader. Each line says how much of the stall was garbage collection (a new leader at 150,000 tasks
// holds a heap of a GiB or more), so that an operator, or a benchmark's log, can tell the two apart.
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
  const timer = setInterval(() => {
    const now = performance.now()
    const gap = now - last
    last = now
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
      `event loop stalled for ${Math.round(gap - tickMs)} ms, ${Math.round(gcMs)} ms of it in garbage collection${more}`,
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
    },
  }
}
