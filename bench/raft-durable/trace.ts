// BENCH_TRACE=<dir>: a raft-kv member or driver process appends one line of JSON a second to
// <dir>/<name>-<pid>.jsonl: its garbage-collection pauses in that second (count, total, longest, how many took
// over 1 ms) and how late its event loop ran (1 ms resolution: p50, p99, longest). Matched against a run's
// latency tail, it tells the process's own stalls from waits on the disk or on the other processes.
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

export function traceProcess(name: string): void {
  const dir = process.env['BENCH_TRACE']
  if (!dir) return
  const file = join(dir, `${name}-${process.pid}.jsonl`)
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  let gc = { n: 0, ms: 0, max: 0, over1: 0 }
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.n++
      gc.ms += e.duration
      if (e.duration > gc.max) gc.max = e.duration
      if (e.duration > 1) gc.over1++
    }
  }).observe({ entryTypes: ['gc'] })
  const ms = (ns: number) => Math.round(ns / 1e4) / 100
  setInterval(() => {
    const line = {
      t: Date.now(),
      gcN: gc.n,
      gcMs: Math.round(gc.ms * 100) / 100,
      gcMax: Math.round(gc.max * 100) / 100,
      gcOver1: gc.over1,
      loopP50: ms(loop.percentile(50)),
      loopP99: ms(loop.percentile(99)),
      loopMax: ms(loop.max),
    }
    appendFileSync(file, `${JSON.stringify(line)}\n`)
    gc = { n: 0, ms: 0, max: 0, over1: 0 }
    loop.reset()
  }, 1000).unref()
}
