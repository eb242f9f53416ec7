// Where a manager's resident memory is, over the run (SCALE_MEM_LOG=1): every second, each manager's RSS from
// /proc and its V8 heap (used and committed), external memory and array buffers from its /metrics (prom-client's
// default metrics), with the bench's phase. At the end, per phase and manager, the sample with the highest RSS:
// what made up the peak (heap live + heap headroom + external + the rest: code, stacks, OpenSSL, malloc).
import { rssMiB } from './stats.js'

interface MemSample {
  at: number
  phase: string
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
}

const MiB = 2 ** 20
const WANTED: Record<string, keyof MemSample> = {
  nodejs_heap_size_used_bytes: 'heapUsed',
  nodejs_heap_size_total_bytes: 'heapTotal',
  nodejs_external_memory_bytes: 'external',
}

async function heapOf(url: string): Promise<Partial<MemSample>> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text()
    const out: Partial<MemSample> = {}
    for (const line of text.split('\n')) {
      const sp = line.lastIndexOf(' ')
      const key = WANTED[line.slice(0, sp)]
      if (key) (out as Record<string, number>)[key] = Number(line.slice(sp + 1)) / MiB
    }
    return out
  } catch {
    return {}
  }
}

export interface Sampled {
  readonly name: string
  readonly pid: () => number | undefined
  readonly metricsUrl: string
}

/** Samples every manager once a second until `stop()`; `report()` prints the peak sample per phase. */
export function memSampler(managers: readonly Sampled[], phase: () => string) {
  const samples = new Map<string, MemSample[]>()
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now()
      await Promise.all(
        managers.map(async (m) => {
          const pid = m.pid()
          const rss = rssMiB(pid)
          if (rss === 0) return
          const h = await heapOf(m.metricsUrl)
          const list = samples.get(m.name) ?? []
          samples.set(m.name, list)
          list.push({
            at: Date.now(),
            phase: phase(),
            rss,
            heapUsed: h.heapUsed ?? Number.NaN,
            heapTotal: h.heapTotal ?? Number.NaN,
            external: h.external ?? Number.NaN,
          })
        }),
      )
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t0))))
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
    },
    report() {
      console.log(
        'memory (MiB)     | manager | phase            | peak RSS | heap used | heap committed | external | rest',
      )
      for (const [name, list] of samples) {
        const phases = [...new Set(list.map((s) => s.phase))]
        for (const p of phases) {
          const top = list.filter((s) => s.phase === p).reduce((a, b) => (b.rss > a.rss ? b : a))
          const rest = top.rss - top.heapTotal - top.external
          console.log(
            `${''.padEnd(16)} | ${name.padEnd(7)} | ${p.padEnd(16)} | ${top.rss.toFixed(0).padStart(8)} | ${top.heapUsed.toFixed(0).padStart(9)} | ${top.heapTotal.toFixed(0).padStart(14)} | ${top.external.toFixed(0).padStart(8)} | ${rest.toFixed(0).padStart(4)}`,
          )
        }
      }
    },
    /** Every sample, for a file. */
    all: () => Object.fromEntries(samples),
  }
}
