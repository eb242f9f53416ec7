// bench/raft-durable: writes/s and latency of a three-member raft-kv cluster (three processes on loopback,
// FileLogStorage with fdatasync, the TCP transport) against a three-member etcd cluster (Debian's etcd-server)
// under the same load from a separate client process: 256-byte values at 1, 64 and 256 concurrent writers
// for a fixed time each. The bundled script runs itself in several roles (argv[2]): the parent orchestrates,
// `kv-server` is one raft-kv member, `kv-client` and `etcd-client` drive load and print a JSON result.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { KvClient, runKvServerCli } from '@swarmkit/example-raft-kv'
import { FileLogStorage } from '@swarmkit/raft'
import { freePorts, type LoadResult, runWriters, waitFor, warmUp } from './common.js'
import { ensureEtcd, etcdLoad, etcdVersion, startEtcdCluster } from './etcd.js'

const WRITERS = [1, 64, 256]
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const role = process.argv[2]

function child(
  args: string[],
  onLine?: (line: string) => void,
): { proc: ChildProcess; done: Promise<string> } {
  const proc = spawn(process.execPath, [process.argv[1]!, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
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

async function kvLoad(address: string, writers: number, ms: number): Promise<LoadResult> {
  const client = await KvClient.connect(address)
  const value = new Uint8Array(256).fill(0x61)
  try {
    const write = (w: number, n: number): Promise<void> =>
      client.put(`bench/${w}/${n % 1000}`, value).then(() => {})
    await warmUp(writers, write)
    return await runWriters(writers, ms, write)
  } finally {
    await client.close()
  }
}

/** Runs the load client in its own process and returns its result. */
async function clientRun(
  kind: 'kv-client' | 'etcd-client',
  target: string,
  writers: number,
): Promise<LoadResult> {
  const { done } = child([kind, target, String(writers), String(SECONDS * 1000)])
  const out = await done
  return JSON.parse(out.trim().split('\n').pop()!) as LoadResult
}

interface KvCluster {
  /** The leader's client address. */
  readonly leader: string
  stop(): Promise<void>
}

/** Starts three raft-kv member processes on loopback; resolves once all serve and a leader is known. */
async function startKvCluster(): Promise<KvCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-kv-bench-'))
  const ports = await freePorts(6)
  const ids = ['n1', 'n2', 'n3']
  const peers = ids.map((id, k) => `${id}=127.0.0.1:${ports[k]}`).join(',')
  const clientAddr = new Map<string, string>()
  let leader: string | null = null
  const members = ids.map((id, k) =>
    child(
      [
        'kv-server',
        '--id',
        id,
        '--data',
        join(dir, id),
        '--peers',
        peers,
        '--client',
        `127.0.0.1:${ports[3 + k]}`,
      ],
      (line) => {
        const m = /^leader (\S+) term/.exec(line)
        if (m && m[1] !== 'none') leader = m[1]!
        const r = /^ready (\S+)/.exec(line)
        if (r) clientAddr.set(id, r[1]!)
      },
    ),
  )
  const stop = async () => {
    for (const m of members) m.proc.kill('SIGTERM')
    await Promise.allSettled(members.map((m) => m.done))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(async () => clientAddr.size === 3 && leader !== null, 30_000)
  } catch (e) {
    await stop()
    throw e
  }
  return { leader: clientAddr.get(leader!)!, stop }
}

/**
 * Both clusters run side by side, and each load level runs against raft-kv and then etcd back to back, so
 * that the two figures of a row (and their ratio) are taken under the same load on a shared machine.
 */
async function runBoth(): Promise<{ version: string; kv: LoadResult[]; etcd: LoadResult[] }> {
  const bin = ensureEtcd()
  const kvCluster = await startKvCluster()
  const dir = mkdtempSync(join(tmpdir(), 'etcd-bench-'))
  try {
    const cluster = await startEtcdCluster(bin, dir)
    try {
      const kv: LoadResult[] = []
      const etcd: LoadResult[] = []
      for (const writers of WRITERS) {
        kv.push(await clientRun('kv-client', kvCluster.leader, writers))
        etcd.push(await clientRun('etcd-client', cluster.endpoints.join(','), writers))
      }
      return { version: etcdVersion(bin), kv, etcd }
    } finally {
      await cluster.stop()
    }
  } finally {
    await kvCluster.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

interface StorageRun {
  writers: number
  savesPerSec: number
  entriesPerSec: number
  mbPerSec: number
  syncsPerSec: number
}

/** FileLogStorage alone: `writers` concurrent loops each saving one 256-byte entry with a hard state. */
async function storageRun(writers: number, ms: number): Promise<StorageRun> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-durable-storage-'))
  const s = await FileLogStorage.open(dir)
  await s.load()
  let next = 1
  const data = new Uint8Array(256).fill(0x62)
  const start = performance.now()
  const end = start + ms
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < end) {
        const index = next++
        await s.save({
          entries: [{ index, term: 1, type: 0, data }],
          hardState: { term: 1, vote: 'n1', commit: index - 1 },
        })
      }
    }),
  )
  const sec = (performance.now() - start) / 1000
  const st = s.stats()
  await s.close()
  rmSync(dir, { recursive: true, force: true })
  return {
    writers,
    savesPerSec: st.saves / sec,
    entriesPerSec: (next - 1) / sec,
    mbPerSec: st.bytes / sec / 1e6,
    syncsPerSec: st.syncs / sec,
  }
}

const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

async function parent(): Promise<void> {
  const loadStart = loadavg()[0]!
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${SECONDS} s per run; 256-byte values; load average ${loadStart.toFixed(1)}`,
  )
  // The log alone: one writer pays one fdatasync per save; many writers share each sync (group commit).
  const storage: StorageRun[] = []
  for (const w of [1, 64, 256]) storage.push(await storageRun(w, Math.min(3000, SECONDS * 1000)))
  console.log('')
  console.log('FileLogStorage | saves/s (1 entry each)      MB/s   fdatasync/s')
  for (const r of storage) {
    console.log(
      `${String(r.writers).padStart(3)} writers    | ${fmt(r.savesPerSec).padStart(22)} ${fmt(r.mbPerSec, 1).padStart(9)} ${fmt(r.syncsPerSec).padStart(13)}`,
    )
  }
  const both = await runBoth()
  const kv = both.kv
  const etcd = { version: both.version, results: both.etcd }
  console.log('')
  console.log('writers | raft-kv writes/s   p50 ms   p99 ms | etcd writes/s   p50 ms   p99 ms | ratio')
  const loadEnd = loadavg()[0]!
  const json: Record<string, number | string> = {
    etcd_version: etcd.version,
    load_avg_1m_start: Number(loadStart.toFixed(2)),
    load_avg_1m_end: Number(loadEnd.toFixed(2)),
  }
  for (const r of storage) {
    json[`storage_saves_per_s_${r.writers}`] = Math.round(r.savesPerSec)
    json[`storage_fsyncs_per_s_${r.writers}`] = Math.round(r.syncsPerSec)
    json[`storage_mb_per_s_${r.writers}`] = Number(r.mbPerSec.toFixed(1))
  }
  for (let k = 0; k < WRITERS.length; k++) {
    const a = kv[k]!
    const b = etcd.results[k]!
    const ratio = a.writesPerSec / b.writesPerSec
    console.log(
      `${String(a.writers).padStart(7)} | ${fmt(a.writesPerSec).padStart(16)} ${fmt(a.p50Ms, 2).padStart(8)} ${fmt(a.p99Ms, 2).padStart(8)} | ` +
        `${fmt(b.writesPerSec).padStart(13)} ${fmt(b.p50Ms, 2).padStart(8)} ${fmt(b.p99Ms, 2).padStart(8)} | ${fmt(ratio, 2).padStart(5)}`,
    )
    const w = a.writers
    json[`raftkv_writes_per_s_${w}`] = Math.round(a.writesPerSec)
    json[`raftkv_p50_ms_${w}`] = Number(a.p50Ms.toFixed(3))
    json[`raftkv_p99_ms_${w}`] = Number(a.p99Ms.toFixed(3))
    json[`etcd_writes_per_s_${w}`] = Math.round(b.writesPerSec)
    json[`etcd_p50_ms_${w}`] = Number(b.p50Ms.toFixed(3))
    json[`etcd_p99_ms_${w}`] = Number(b.p99Ms.toFixed(3))
    json[`writes_vs_etcd_${w}`] = Number(ratio.toFixed(2))
  }
  console.log(`load average ${loadStart.toFixed(1)} at the start, ${loadEnd.toFixed(1)} at the end`)
  console.log(JSON.stringify(json))
}

if (role === 'kv-server') {
  await runKvServerCli(process.argv.slice(3))
} else if (role === 'kv-client' || role === 'etcd-client') {
  const [target, writers, ms] = process.argv.slice(3)
  const result =
    role === 'kv-client'
      ? await kvLoad(target!, Number(writers), Number(ms))
      : await etcdLoad(target!.split(','), Number(writers), Number(ms))
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
} else {
  await parent()
}
