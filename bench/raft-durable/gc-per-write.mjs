// What one replicated write costs each raft-kv member in garbage: three members (examples/raft-kv/dist, run
// `npm run build` first) with --trace-gc-nvp, one writer of 256-byte values, N puts after 500 unmeasured ones;
// prints the writer's p50/p99 and, per member, its collections (kind, pause) and the bytes it allocated per
// write. With PROFILE=1 each member also takes a sampling heap profile of the measured writes that keeps
// collected objects (inspector HeapProfiler.startSampling with includeObjectsCollectedByMinor/MajorGC) and
// writes it to <data dir>/<id>.heapprofile (open in Chrome's DevTools, Memory tab).
//   node bench/raft-durable/gc-per-write.mjs [writes] ["node flags for the members"]
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const kvDist = fileURLToPath(new URL('../../examples/raft-kv/dist/index.js', import.meta.url))
const role = process.argv[2]

if (role === 'member') {
  // argv: member <dataDir> ...raft-kv member arguments
  const dir = process.argv[3]
  const id = process.argv[process.argv.indexOf('--id') + 1]
  if (process.env.PROFILE === '1') {
    const { Session } = await import('node:inspector/promises')
    const { writeFileSync } = await import('node:fs')
    const session = new Session()
    session.connect()
    await session.post('HeapProfiler.enable')
    process.on('SIGUSR2', () => {
      void session.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
    })
    process.on('SIGHUP', async () => {
      const { profile } = await session.post('HeapProfiler.stopSampling')
      writeFileSync(join(dir, `${id}.heapprofile`), JSON.stringify(profile))
    })
  }
  const { runKvServerCli } = await import(kvDist)
  await runKvServerCli(process.argv.slice(4))
} else {
  const N = Number(process.argv[2] ?? 3000)
  const flags = (process.argv[3] ?? '').split(' ').filter(Boolean)
  const { KvClient } = await import(kvDist)
  const dir = mkdtempSync(join(tmpdir(), 'raft-kv-gc-'))
  const base = 20000 + Math.floor(Math.random() * 5000) * 6
  const ids = ['n1', 'n2', 'n3']
  const peers = ids.map((id, k) => `${id}=127.0.0.1:${base + k}`).join(',')
  const self = fileURLToPath(import.meta.url)
  const procs = ids.map((id, k) =>
    spawn(
      process.execPath,
      [
        '--trace-gc-nvp',
        ...flags,
        self,
        'member',
        dir,
        '--id',
        id,
        '--data',
        join(dir, id),
        '--peers',
        peers,
        '--client',
        `127.0.0.1:${base + 3 + k}`,
      ],
      { stdio: ['ignore', openSync(join(dir, `${id}.out`), 'w'), 'inherit'] },
    ),
  )
  const out = (id) => readFileSync(join(dir, `${id}.out`), 'utf8')
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
  let leader = null
  for (let t = 0; t < 300 && !leader; t++) {
    await sleep(100)
    for (const id of ids) {
      const m = /leader (\S+) term/.exec(out(id))
      if (m && m[1] !== 'none') leader = m[1]
    }
  }
  if (!leader) throw new Error('no leader within 30 s')
  const client = await KvClient.connect(`127.0.0.1:${base + 3 + ids.indexOf(leader)}`)
  const value = new Uint8Array(256).fill(7)
  for (let i = 0; i < 500; i++) await client.put(`w${i}`, value)
  const profiling = process.env.PROFILE === '1'
  if (profiling) for (const p of procs) p.kill('SIGUSR2')
  await sleep(300)
  const mark = ids.map((id) => out(id).length)
  const lat = []
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const t = performance.now()
    await client.put(`k${i % 10000}`, value)
    lat.push(performance.now() - t)
  }
  const secs = (performance.now() - t0) / 1000
  if (profiling) for (const p of procs) p.kill('SIGHUP')
  await sleep(profiling ? 1500 : 200)
  lat.sort((a, b) => a - b)
  const at = (q) => lat[Math.min(N - 1, Math.floor(N * q))].toFixed(2)
  console.log(
    `leader ${leader}; ${N} writes, ${(N / secs).toFixed(0)}/s, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`,
  )
  for (const [j, id] of ids.entries()) {
    const gcs = [
      ...out(id)
        .slice(mark[j])
        .matchAll(/pause=([\d.]+).*?gc=(\w+).*?allocated=(\d+)/g),
    ]
    const bytes = gcs.reduce((s, m) => s + Number(m[3]), 0)
    const kinds = [...new Set(gcs.map((m) => m[2]))].join(',')
    const pauses = gcs.map((m) => Number(m[1]).toFixed(1)).join(' ')
    console.log(
      `${id}${id === leader ? ' (leader)' : ''}: ${gcs.length} collections (${kinds}); pauses ${pauses} ms; ` +
        `${(bytes / N / 1024).toFixed(1)} KiB allocated per write`,
    )
  }
  if (profiling) console.log(`heap profiles in ${dir}`)
  await client.close()
  for (const p of procs) p.kill('SIGTERM')
}
