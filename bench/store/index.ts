// bench/store: the store's transaction, batch and watch throughput, and the cost of encryption at rest.
// Each figure is measured next to a baseline from the same run; machines here are shared and noisy.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage } from '@swarmkit/raft'
import { ClusterStore, KeyManager, type NewObject, type Task } from '@swarmkit/store'

const results: Record<string, number> = {}
const rows: [string, string, string][] = []

function row(name: string, value: string, note = ''): void {
  rows.push([name, value, note])
}

/** Runs each job for `rounds` interleaved rounds and keeps each one's best rate (ops per second). */
async function bestOf(
  rounds: number,
  jobs: Record<string, () => Promise<number>>,
): Promise<Record<string, number>> {
  const best: Record<string, number> = {}
  for (let r = 0; r < rounds; r++) {
    for (const [name, job] of Object.entries(jobs)) best[name] = Math.max(best[name] ?? 0, await job())
  }
  return best
}

async function timeIt(fn: () => Promise<void> | void, minMs = 400): Promise<{ ops: number; ms: number }> {
  let ops = 0
  const t0 = performance.now()
  let t = t0
  while (t - t0 < minMs) {
    await fn()
    ops++
    t = performance.now()
  }
  return { ops, ms: t - t0 }
}

function task(id: string, slot: number): NewObject<Task> {
  return {
    id,
    serviceId: 'svc',
    slot,
    nodeId: `node${slot % 50}`,
    spec: {
      containerSpec: {
        image: 'nginx:alpine',
        args: ['sh', '-c', 'nginx -g "daemon off;"'],
        env: ['A=1', 'B=2'],
      },
      networks: [],
      restartPolicy: { condition: 'any', delay: 5e9 },
    },
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state: 'new', message: 'created' },
    desiredState: 'running',
    networks: [],
  }
}

async function storeBenchmarks(): Promise<void> {
  // Single-object update transactions.
  const s = new ClusterStore()
  await s.update((tx) => tx.create('tasks', task('t0', 1)))
  let n = 0
  // Baseline: a naive copy-on-write map (structuredClone in, no indexes, no checks, no events).
  const naive = new Map<string, unknown>()
  naive.set('t0', structuredClone(task('t0', 1)))
  const rate = (r: { ops: number; ms: number }) => (r.ops * 1000) / (r.ms / 1000)
  const best = await bestOf(3, {
    store: async () =>
      rate(
        await timeIt(async () => {
          for (let i = 0; i < 1000; i++) {
            await s.update((tx) => {
              const t = tx.get('tasks', 't0')!
              tx.update('tasks', { ...t, status: { ...t.status, message: `m${n++}` } })
            })
          }
        }),
      ),
    naive: async () =>
      rate(
        await timeIt(() => {
          for (let i = 0; i < 1000; i++) {
            const t = naive.get('t0') as Task
            naive.set('t0', structuredClone({ ...t, status: { ...t.status, message: `m${n++}` } }))
          }
        }),
      ),
  })
  const updPerSec = best.store!
  const basePerSec = best.naive!
  results.update_txn_per_s = Math.round(updPerSec)
  results.naive_clone_map_update_per_s = Math.round(basePerSec)
  row(
    'single-object update txn',
    `${fmt(updPerSec)} txn/s`,
    `naive structuredClone map: ${fmt(basePerSec)}/s`,
  )

  // 200-object batches (creates, then updates).
  const b = new ClusterStore()
  let k = 0
  const batches = await timeIt(async () => {
    await b.batch(async (batch) => {
      for (let i = 0; i < 200; i++) {
        const id = `b${k++}`
        await batch.update((tx) => {
          tx.create('tasks', task(id, i))
        })
      }
    })
  }, 600)
  const objPerSec = (batches.ops * 200) / (batches.ms / 1000)
  results.batch200_objects_per_s = Math.round(objPerSec)
  results.batch200_per_s = Math.round(batches.ops / (batches.ms / 1000))
  row(
    '200-object batch (creates)',
    `${fmt(objPerSec)} objects/s`,
    `${fmt(batches.ops / (batches.ms / 1000))} batches/s`,
  )
  const ids = b.view((tx) =>
    tx
      .find('tasks')
      .slice(0, 200)
      .map((t) => t.id),
  )
  const ub = await timeIt(async () => {
    await b.update((tx) => {
      for (const id of ids) {
        const t = tx.get('tasks', id)!
        tx.update('tasks', { ...t, desiredState: t.desiredState === 'running' ? 'shutdown' : 'running' })
      }
    })
  })
  const ubPerSec = (ub.ops * 200) / (ub.ms / 1000)
  results.txn200_updates_objects_per_s = Math.round(ubPerSec)
  row(
    'one txn updating 200 objects',
    `${fmt(ubPerSec)} objects/s`,
    `${b.view((tx) => tx.find('tasks').length)} tasks stored`,
  )

  // Watch fan-out: 100 watchers each receive every event.
  const w = new ClusterStore()
  await w.update((tx) => tx.create('tasks', task('w0', 1)))
  const watchers = Array.from({ length: 100 }, () => w.watch({ table: 'tasks', queueSize: 1_000_000 }))
  let delivered = 0
  const readers = watchers.map(async (watch) => {
    for await (const _ of watch) delivered++
  })
  const events = 20_000
  const t0 = performance.now()
  for (let i = 0; i < events; i++) {
    await w.update((tx) => {
      const t = tx.get('tasks', 'w0')!
      tx.update('tasks', { ...t, status: { ...t.status, message: `m${i}` } })
    })
  }
  while (delivered < events * watchers.length) await new Promise((r) => setImmediate(r))
  const fanMs = performance.now() - t0
  for (const x of watchers) x.close()
  await Promise.all(readers)
  const deliveredPerSec = delivered / (fanMs / 1000)
  results.watch_fanout_100_events_delivered_per_s = Math.round(deliveredPerSec)
  results.watch_fanout_100_commits_per_s = Math.round(events / (fanMs / 1000))
  row(
    'watch fan-out to 100 watchers',
    `${fmt(deliveredPerSec)} deliveries/s`,
    `${fmt(events / (fanMs / 1000))} commits/s`,
  )
}

async function sealBenchmarks(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-store-'))
  try {
    const native = await KeyManager.open(join(dir, 'keys.json'), { cipher: 'native' })
    const noble = await KeyManager.open(join(dir, 'keys.json'), { cipher: 'noble' })
    const key = randomBytes(32)
    const mbps = (r: { ops: number; ms: number }, size: number) =>
      (r.ops * 100 * size) / 2 ** 20 / (r.ms / 1000)
    for (const size of [256, 4096, 65536]) {
      const data = randomBytes(size)
      const ctx = { kind: 'entry' as const, index: 1, term: 1, type: 0 }
      const figures: Record<string, [number, number]> = {}
      for (const [name, km] of [
        ['native', native],
        ['noble', noble],
      ] as const) {
        const { seal, open } = km.hooks()
        const sealed = seal(data, ctx)
        const s = await timeIt(() => {
          for (let i = 0; i < 100; i++) seal(data, ctx)
        })
        const o = await timeIt(() => {
          for (let i = 0; i < 100; i++) open(sealed, ctx)
        })
        figures[name] = [mbps(s, size), mbps(o, size)]
      }
      // Baseline: node:crypto's native (OpenSSL) IETF chacha20-poly1305 with a fresh 12-byte nonce and AAD.
      const aad = Buffer.alloc(23)
      const ns = await timeIt(() => {
        for (let i = 0; i < 100; i++) {
          const c = createCipheriv('chacha20-poly1305', key, randomBytes(12), { authTagLength: 16 })
          c.setAAD(aad, { plaintextLength: size })
          Buffer.concat([c.update(data), c.final(), c.getAuthTag()])
        }
      })
      const iv = randomBytes(12)
      const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 })
      c.setAAD(aad, { plaintextLength: size })
      const ct = Buffer.concat([c.update(data), c.final()])
      const tag = c.getAuthTag()
      const no = await timeIt(() => {
        for (let i = 0; i < 100; i++) {
          const d = createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 })
          d.setAAD(aad, { plaintextLength: size })
          d.setAuthTag(tag)
          Buffer.concat([d.update(ct), d.final()])
        }
      })
      figures.node = [mbps(ns, size), mbps(no, size)]
      for (const [name, [sv, ov]] of Object.entries(figures)) {
        const prefix = name === 'node' ? 'node_chacha20poly1305' : `xchacha_${name}`
        results[`${prefix}_seal_${size}B_MiB_per_s`] = Math.round(sv)
        results[`${prefix}_open_${size}B_MiB_per_s`] = Math.round(ov)
      }
      const f = (x: [number, number]) => `${x[0].toFixed(0)} / ${x[1].toFixed(0)}`
      row(
        `seal / open ${size} B records`,
        `${f(figures.native!)} MiB/s`,
        `noble-only ${f(figures.noble!)}; baseline node:crypto chacha20-poly1305 ${f(figures.node!)} MiB/s`,
      )
    }
    native.close()
    noble.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Durable append throughput of raft's FileLogStorage with and without the store's sealing, in the same run and
 * interleaved rounds, for store-sized entries and for 200-object batch entries. `concurrency` saves are kept in
 * flight, as a raft leader does (they group-commit under one O_DSYNC write). Every mode writes the same entries
 * in the same saves under the same sync policy; only the hooks differ:
 * - `plain`: no hooks;
 * - `sealed`: `KeyManager.hooks()` as shipped (native AEAD step, each save's entries sealed as one record);
 * - `perEntry`: the same hooks with `batchSeal: false` (one AEAD record per entry, as before batchSeal);
 * - `noble`: all of XChaCha20-Poly1305 in @noble/ciphers, batched.
 * The cost of a mode is the median over rounds of 1 - mode/plain, each pair measured back to back under the same
 * background load (the order alternates between rounds); its CPU cost is the median of the extra process CPU
 * time per byte appended (main thread, thread pool and kernel), which load changes far less than throughput.
 */
async function fileStorageBenchmarks(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-store-wal-'))
  try {
    const native = await KeyManager.open(join(dir, 'keys.json'), { cipher: 'native' })
    const noble = await KeyManager.open(join(dir, 'keys.json'), { cipher: 'noble' })
    type Mode = 'plain' | 'sealed' | 'perEntry' | 'noble'
    const hooks: Record<Mode, object> = {
      plain: {},
      sealed: native.hooks(),
      perEntry: { ...native.hooks(), batchSeal: false },
      noble: noble.hooks(),
    }
    const cases: [string, number, number, number, Mode[]][] = [
      [
        '1 KiB entries (one store txn each), 64 per save',
        1024,
        64,
        8,
        ['plain', 'sealed', 'perEntry', 'noble'],
      ],
      [
        '64 KiB entries (a 200-task batch each), 4 per save',
        65536,
        4,
        8,
        ['plain', 'sealed', 'perEntry', 'noble'],
      ],
      ['1 KiB entries, 1 per save (nothing to batch)', 1024, 1, 8, ['plain', 'sealed']],
    ]
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
    for (const [label, size, perSave, concurrency, modes] of cases) {
      const data = randomBytes(size)
      const best: Partial<Record<Mode, number>> = {}
      const saves: Partial<Record<Mode, number>> = {}
      const ratios: Partial<Record<Mode, number[]>> = {}
      const cpuRatios: Partial<Record<Mode, number[]>> = {}
      let round = 0
      for (let rep = 0; rep < 9; rep++) {
        const got: Partial<Record<Mode, { mibps: number; cpuPerMiB: number }>> = {}
        // Plain and sealed run next to each other, in alternating order; the slower variants after them.
        const order = rep % 2 === 0 ? modes : [modes[1]!, modes[0]!, ...modes.slice(2)]
        for (const mode of order) {
          const path = join(dir, `wal-${round++}`)
          const storage = await FileLogStorage.open(path, hooks[mode])
          let next = 1
          let count = 0
          const save = () => {
            const entries = Array.from({ length: perSave }, () => ({
              index: next++,
              term: 1,
              type: 0 as const,
              data,
            }))
            count++
            return storage.save({ entries, hardState: { term: 1, vote: 'a', commit: next - 1 } })
          }
          // `concurrency` writers, each issuing its next save as soon as the last one is durable: a steady
          // pipeline, as a raft leader keeps, so sealing the next saves overlaps the sync of earlier ones.
          const t0 = performance.now()
          const cpu0 = process.cpuUsage()
          let bytes = 0
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (performance.now() - t0 < 300) {
                await save()
                bytes += perSave * size
              }
            }),
          )
          const secs = (performance.now() - t0) / 1000
          const cpu = process.cpuUsage(cpu0)
          const mib = bytes / 2 ** 20
          const mibps = mib / secs
          got[mode] = { mibps, cpuPerMiB: (cpu.user + cpu.system) / mib }
          if (mibps > (best[mode] ?? 0)) {
            best[mode] = mibps
            saves[mode] = count / secs
          }
          await storage.close()
          await rm(path, { recursive: true, force: true })
        }
        for (const mode of modes.slice(1)) {
          ;(ratios[mode] ??= []).push(got[mode]!.mibps / got.plain!.mibps)
          ;(cpuRatios[mode] ??= []).push(got[mode]!.cpuPerMiB / got.plain!.cpuPerMiB)
        }
      }
      const cost = (mode: Mode) => 1 - median(ratios[mode]!)
      const cpuCost = (mode: Mode) => median(cpuRatios[mode]!) - 1
      const pct = (x: number) => Math.round(x * 1000) / 10
      const key = perSave === 1 ? `wal_${size}B_single` : `wal_${size}B`
      results[`${key}_plain_MiB_per_s`] = Math.round(best.plain! * 10) / 10
      results[`${key}_plain_saves_per_s`] = Math.round(saves.plain!)
      const names: Record<Mode, string> = {
        plain: 'plain',
        sealed: 'sealed',
        perEntry: 'sealed_per_entry',
        noble: 'noble_sealed',
      }
      for (const mode of modes.slice(1)) {
        results[`${key}_${names[mode]}_MiB_per_s`] = Math.round(best[mode]! * 10) / 10
        results[`${key}_${names[mode] === 'sealed' ? '' : `${names[mode]}_`}encryption_cost_pct`] = pct(
          cost(mode),
        )
        results[`${key}_${names[mode] === 'sealed' ? '' : `${names[mode]}_`}encryption_cpu_cost_pct`] = pct(
          cpuCost(mode),
        )
      }
      const also = modes
        .slice(2)
        .map((m) => `${m === 'noble' ? 'noble-only' : 'one record per entry'} ${pct(cost(m))}%`)
      row(
        `durable append, ${label}`,
        `${best.sealed!.toFixed(1)} MiB/s sealed`,
        `plain ${best.plain!.toFixed(1)} MiB/s (${fmt(saves.plain!)} saves/s); encryption costs ${pct(cost('sealed'))}% ` +
          `of throughput (goal <= 15%), ${pct(cpuCost('sealed'))}% more CPU per byte` +
          (also.length ? `; ${also.join(', ')}` : ''),
      )
    }
    native.close()
    noble.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(1)
}

await storeBenchmarks()
await sealBenchmarks()
await fileStorageBenchmarks()
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`)
const w0 = Math.max(...rows.map((r) => r[0].length))
const w1 = Math.max(...rows.map((r) => r[1].length))
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`)
console.log(JSON.stringify(results))
