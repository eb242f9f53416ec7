// etcd's own load generator (`benchmark put` from etcd's tools/benchmark, a Go program on etcd's Go client) as a
// second etcd driver beside the etcd3 npm client: if both reach about the same writes/s while etcd's members
// are busy, the figure is etcd's and not the driver's. `build-etcd-benchmark.sh` beside this file builds it offline
// from Debian's packages into a cache directory, where it is found without ETCD_BENCHMARK; ETCD_BENCHMARK names
// another binary. Without either this driver is skipped.
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { LoadResult } from './common.js'
import { parseProcStat } from './cpu.js'

/** Where build-etcd-benchmark.sh puts the tool by default. */
export function etcdBenchmarkCachePath(): string {
  const cache = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache')
  return join(cache, 'swarmkit', 'etcd-benchmark', 'benchmark')
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The benchmark binary: the one ETCD_BENCHMARK names, else the one build-etcd-benchmark.sh built into its cache,
 * else null. Throws when ETCD_BENCHMARK is set but unusable.
 */
export function etcdBenchmarkBinary(): string | null {
  const named = process.env['ETCD_BENCHMARK']
  if (named) {
    if (!executable(named)) throw new Error(`ETCD_BENCHMARK=${named} is not an executable file`)
    return named
  }
  const cached = etcdBenchmarkCachePath()
  return executable(cached) ? cached : null
}

export interface ToolRun {
  readonly result: LoadResult
  /** The tool's own CPU (user + system) in cores over its run. */
  readonly cpuCores: number
}

function secs(report: string, pattern: RegExp): number {
  const m = pattern.exec(report)
  return m ? Number(m[1]) : Number.NaN
}

/**
 * `benchmark put` of `total` 256-byte values from `writers` clients over `conns` gRPC connections to the
 * leader (`--target-leader`, as the raft-kv client talks to its leader). Keys are spread over 256,000
 * sequential keys like the other drivers' `writer/n % 1000`.
 */
export async function runEtcdBenchmarkTool(
  bin: string,
  endpoints: readonly string[],
  writers: number,
  conns: number,
  total: number,
): Promise<ToolRun> {
  const args = [
    `--endpoints=${endpoints.join(',')}`,
    '--target-leader',
    `--conns=${conns}`,
    `--clients=${writers}`,
    '--precise',
    'put',
    `--total=${total}`,
    '--key-size=16',
    '--val-size=256',
    '--key-space-size=256000',
    '--sequential-keys',
  ]
  // A shell runs the tool and then prints its own /proc stat: cutime + cstime there are the CPU of the waited-for
  // tool, which is gone by the time its exit is seen here.
  const script = '"$0" "$@" 2>/dev/null; s=$?; echo; echo "SHELLSTAT $(cat /proc/$$/stat)"; exit $s'
  const proc = spawn('sh', ['-c', script, bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (d: string) => {
    out += d
  })
  const started = performance.now()
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.on('error', reject)
    proc.on('close', (c) => resolve(c))
  })
  const wall = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`etcd benchmark exited ${code}: ${out.slice(-2000)}`)
  const cpuCores = parseProcStat(/SHELLSTAT (.*)/.exec(out)?.[1] ?? '').children / wall
  const seconds = secs(out, /Total:\s+([\d.e+-]+) secs/)
  const errors = [...out.matchAll(/^\s*\[(\d+)\]\s/gm)].reduce((a, m) => a + Number(m[1]), 0)
  const writes = total - errors
  return {
    result: {
      writers,
      writes,
      seconds,
      writesPerSec: secs(out, /Requests\/sec:\s+([\d.e+-]+)/),
      p50Ms: secs(out, /\b50% in ([\d.e+-]+) secs/) * 1000,
      p99Ms: secs(out, /\b99% in ([\d.e+-]+) secs/) * 1000,
      errors,
    },
    cpuCores,
  }
}
