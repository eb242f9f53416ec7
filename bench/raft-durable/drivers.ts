// Load drivers in their own processes. The bundled bench script runs itself in a role (argv[2]); a driver
// process (`kv-client` or `etcd-client`) connects, warms up, says `ready`, waits for `go` on stdin, writes for a
// fixed time and prints its latencies and its own CPU time as JSON. The parent starts one or several of them at
// once, so a load can come from more than one Node process (one client process could be the limit).
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { KvClient } from '@swarmkit/example-raft-kv'
import { type LoadResult, measureWriters, type RawLoad, summarize, warmUp } from './common.js'
import { watchCpu } from './cpu.js'
import { etcdLoad } from './etcd.js'

export type DriverKind = 'kv-client' | 'etcd-client'

/** Runs this script again as `args[0]` (with `nodeFlags` for node); `onLine` sees each line it prints. */
export function child(
  args: string[],
  onLine?: (line: string) => void,
  nodeFlags: readonly string[] = [],
): { proc: ChildProcess; done: Promise<string> } {
  const proc = spawn(process.execPath, [...nodeFlags, process.argv[1]!, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  let rest = ''
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (d: string) => {
    out += d
    const lines = (rest + d).split('\n')
    rest = lines.pop()!
    for (const l of lines) onLine?.(l)
  })
  const done = new Promise<string>((resolve, reject) => {
    proc.on('error', reject)
    proc.on('close', (code, signal) =>
      code === 0 || signal === 'SIGTERM'
        ? resolve(out)
        : reject(new Error(`${args[0]} exited ${code ?? signal}`)),
    )
  })
  return { proc, done }
}

async function kvLoad(
  address: string,
  writers: number,
  ms: number,
  prefix: string,
  gate: () => Promise<void>,
): Promise<RawLoad> {
  const client = await KvClient.connect(address)
  const value = new Uint8Array(256).fill(0x61)
  try {
    const write = (w: number, n: number): Promise<void> =>
      client.put(`${prefix}/${w}/${n % 1000}`, value).then(() => {})
    await warmUp(writers, write)
    await gate()
    return await measureWriters(writers, ms, write)
  } finally {
    await client.close()
  }
}

interface DriverOutput {
  load: RawLoad
  /** CPU seconds this driver process used while it measured. */
  cpuSeconds: number
}

/** The driver process's side: `[target, writers, ms, prefix]` from argv. */
export async function driverMain(kind: DriverKind, argv: string[]): Promise<void> {
  const [target, writers, ms, prefix] = argv
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  let cpu0 = process.cpuUsage()
  const gate = async () => {
    process.stdout.write('ready\n')
    await lines.next()
    cpu0 = process.cpuUsage()
  }
  const load =
    kind === 'kv-client'
      ? await kvLoad(target!, Number(writers), Number(ms), prefix!, gate)
      : await etcdLoad(target!.split(','), Number(writers), Number(ms), prefix!, gate)
  const cpu = process.cpuUsage(cpu0)
  const out: DriverOutput = {
    load: { ...load, latencies: load.latencies.map((l) => Math.round(l * 1000) / 1000) },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  }
  // Exits once the line is out: a pipe's writes are asynchronous, and the latencies are a long line.
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0))
}

/** One measured load and the CPU it took, in cores (CPU seconds per second of the run). */
export interface Measured {
  readonly result: LoadResult
  /** Each server process (cluster members), in the order given. */
  readonly serverCpu: number[]
  /** The load driver's processes together. */
  readonly clientCpu: number
  /** The whole machine, everyone's processes included. */
  readonly machineBusy: number
}

/**
 * `writers` writers spread over `procs` driver processes (at most one per writer), started together once every
 * one has warmed up; the servers' CPU is read over the same window.
 */
export async function runDrivers(
  kind: DriverKind,
  target: string,
  writers: number,
  procs: number,
  ms: number,
  serverPids: readonly number[],
): Promise<Measured> {
  const n = Math.min(procs, writers)
  const kids = Array.from({ length: n }, (_, k) => {
    const share = Math.floor(writers / n) + (k < writers % n ? 1 : 0)
    let ready!: () => void
    const isReady = new Promise<void>((r) => {
      ready = r
    })
    const c = child([kind, target, String(share), String(ms), `bench/p${k}`], (line) => {
      if (line === 'ready') ready()
    })
    return { ...c, isReady }
  })
  try {
    await Promise.race([
      Promise.all(kids.map((k) => k.isReady)),
      Promise.all(kids.map((k) => k.done)).then(() => {
        throw new Error(`${kind} exited before it was ready`)
      }),
    ])
    const stop = watchCpu(serverPids)
    for (const k of kids) k.proc.stdin!.write('go\n')
    const outs = await Promise.all(kids.map((k) => k.done))
    const cpu = stop()
    const parsed = outs.map((o) => JSON.parse(o.trim().split('\n').pop()!) as DriverOutput)
    const result = summarize(parsed.map((p) => p.load))
    return {
      result,
      serverCpu: cpu.perProcess,
      clientCpu: parsed.reduce((a, p) => a + p.cpuSeconds, 0) / result.seconds,
      machineBusy: cpu.machineBusy,
    }
  } finally {
    for (const k of kids) if (k.proc.exitCode === null) k.proc.kill('SIGTERM')
  }
}
