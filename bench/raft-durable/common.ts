import { createServer } from 'node:net'

export interface LoadResult {
  writers: number
  writes: number
  seconds: number
  writesPerSec: number
  p50Ms: number
  p99Ms: number
  errors: number
  firstError?: string
}

/** `count` distinct free TCP ports on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

/** Polls `check` until it returns true (errors count as not yet), or throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await check()) return
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting: ${(last as Error)?.message ?? 'no answer'}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/**
 * Unmeasured writes before each measured run (`BENCH_WARMUP_MS`, default 500 ms, at up to 16 writers), the same
 * for both systems: connections open, code is compiled and caches are warm when the clock starts.
 */
export async function warmUp(
  writers: number,
  write: (writer: number, n: number) => Promise<void>,
): Promise<void> {
  const ms = Number(process.env['BENCH_WARMUP_MS'] ?? 500)
  if (ms > 0) await runWriters(Math.min(writers, 16), ms, write)
}

/** What {@link measureWriters} saw: every write's latency in ms, in completion order. */
export interface RawLoad {
  writers: number
  latencies: number[]
  errors: number
  /** The first failed write's message. */
  firstError?: string
  seconds: number
}

/** Runs `writers` loops of `write(writer, n)` for `ms` and records each write's latency. */
export async function measureWriters(
  writers: number,
  ms: number,
  write: (writer: number, n: number) => Promise<void>,
): Promise<RawLoad> {
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const end = start + ms
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let n = 0; performance.now() < end; n++) {
        const t = performance.now()
        try {
          await write(w, n)
          latencies.push(performance.now() - t)
        } catch (e) {
          errors++
          firstError ??= (e as Error)?.message ?? String(e)
        }
      }
    }),
  )
  return { writers, latencies, errors, firstError, seconds: (performance.now() - start) / 1000 }
}

/** Throughput and percentiles of one or more raw loads that ran at the same time (several client processes). */
export function summarize(loads: readonly RawLoad[]): LoadResult {
  const sorted = Float64Array.from(loads.flatMap((l) => l.latencies)).sort()
  const seconds = Math.max(...loads.map((l) => l.seconds))
  return {
    writers: loads.reduce((a, l) => a + l.writers, 0),
    writes: sorted.length,
    seconds,
    writesPerSec: sorted.length / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: loads.reduce((a, l) => a + l.errors, 0),
    firstError: loads.find((l) => l.firstError)?.firstError,
  }
}

/** Runs `writers` loops of `write(writer, n)` for `ms` and measures each write's latency. */
export async function runWriters(
  writers: number,
  ms: number,
  write: (writer: number, n: number) => Promise<void>,
): Promise<LoadResult> {
  return summarize([await measureWriters(writers, ms, write)])
}
