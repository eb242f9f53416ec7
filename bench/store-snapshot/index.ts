// bench/store-snapshot: what a raft snapshot of a large cluster store costs, step by step, and how long each
// step holds the event loop (issue #18: at 1,000 nodes / 50,000 tasks a rolling update stalled the managers
// for 50-140 s once the raft log crossed the 10,000-entry snapshot interval).
//
// For each size (nodes:tasks, `SNAP_SIZES`, default `1000:50000,1000:100000,5000:150000`; a 50,000-task
// service in a rolling update holds 100,000+ task objects) it fills a ClusterStore with realistic objects and
// times each step of a raft snapshot in one call (as before the fix) and in slices (snapshotAsync,
// restoreAsync, the KeyManager's sealAsync/openAsync): the store's snapshot, the seal (encryption at rest),
// the durable save of the snapshot file (FileLogStorage: own snapshot, a follower's install), reading it back
// (what a leader does before streaming it to a follower), reopening the storage (a manager starting), and a
// restore into an empty store (a manager starting) and into a store half its tasks behind with two watches
// open (a follower that fell behind). Each step reports wall time and the longest event-loop block while it
// ran (the largest gap of a 1 ms timer chain), then one JSON line with every figure.
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { EntryType, FileLogStorage, type FileLogStorageOptions } from '@swarmkit/raft'
import { ClusterStore, KeyManager, type NewObject, type Node, type Task } from '@swarmkit/store'

interface Step {
  ms: number
  blockMs: number
}

/**
 * Runs `fn` and reports its wall time and the longest event-loop block seen while it ran: the largest gap
 * between two turns of a 1 ms timer chain, less the timer's own period.
 */
async function measure<T>(fn: () => T | Promise<T>): Promise<[T, Step]> {
  let last = performance.now()
  let maxGap = 0
  let on = true
  let timer: NodeJS.Timeout | undefined
  const tick = () => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    if (on) timer = setTimeout(tick, 1)
  }
  timer = setTimeout(tick, 1)
  await new Promise((r) => setTimeout(r, 5))
  maxGap = 0
  const t0 = performance.now()
  const r = await fn()
  const ms = performance.now() - t0
  // One more turn so a block at the very end is seen.
  await new Promise((r) => setTimeout(r, 3))
  on = false
  clearTimeout(timer)
  return [r, { ms: round(ms), blockMs: round(Math.max(0, maxGap - 1)) }]
}

const round = (x: number) => Math.round(x * 10) / 10

const PEM_LINE = 'MIIBszCCAVmgAwIBAgIUQ2hM3mFzdGVyIGtleSBmb3IgYSBzd2FybSBtYW5hZ2Vy'
const pem = (kind: string, lines: number) =>
  `-----BEGIN ${kind}-----\n${Array.from({ length: lines }, () => PEM_LINE).join('\n')}\n-----END ${kind}-----\n`

function node(i: number): NewObject<Node> {
  const id = `node${String(i).padStart(21, '0')}`.slice(0, 25)
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: `worker-${i}`,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCPUs: 2e9, memoryBytes: 8 * 2 ** 30 },
      engine: {
        engineVersion: '28.0.0',
        labels: {},
        plugins: [
          { type: 'Network', name: 'overlay' },
          { type: 'Volume', name: 'local' },
        ],
      },
      tlsInfo: {
        trustRoot: pem('CERTIFICATE', 10),
        certIssuerSubject: new Uint8Array(40).fill(1),
        certIssuerPublicKey: new Uint8Array(44).fill(2),
      },
    },
    status: { state: 'ready', addr: `127.0.${(i >> 8) & 255}.${i & 255}` },
    certificate: {
      role: 'worker',
      csr: pem('CERTIFICATE REQUEST', 6),
      status: { state: 'issued' },
      certificate: pem('CERTIFICATE', 12),
      cn: id,
    },
  } as NewObject<Node>
}

const SPEC = {
  containerSpec: {
    image: 'busybox:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    args: ['sleep', '86400'],
    env: ['GENERATION=2'],
    init: false,
    stopGracePeriod: 10e9,
    isolation: 'default',
  },
  resources: { limits: {}, reservations: {} },
  restartPolicy: { condition: 'any', delay: 5e9, maxAttempts: 0 },
  placement: {},
  forceUpdate: 0,
  runtime: 'container',
  networks: [],
}

function task(i: number, nodes: number, generation: number): NewObject<Task> {
  const running = generation === 2
  const slot = Math.floor(i / 2) + 1
  return {
    id: `t${String(i).padStart(24, '0')}`,
    spec: SPEC,
    specVersion: { index: 12 + generation },
    serviceId: 'svc0000000000000000000001',
    slot,
    nodeId: `node${String(i % nodes).padStart(21, '0')}`.slice(0, 25),
    serviceAnnotations: { name: 'web', labels: {} },
    status: {
      timestamp: 1_765_000_000_000 + i,
      state: running ? 'running' : 'shutdown',
      message: running ? 'started' : 'shutdown',
      containerStatus: { containerId: `c${String(i).padStart(63, '0')}`, pid: 1000 + i, exitCode: 0 },
    },
    desiredState: running ? 'running' : 'shutdown',
    networks: [],
  } as unknown as NewObject<Task>
}

async function fill(nodes: number, tasks: number): Promise<ClusterStore> {
  const store = new ClusterStore()
  await store.batch(async (b) => {
    for (let i = 0; i < nodes; i++) await b.update((tx) => tx.create('nodes', node(i)))
    // Half the tasks the old generation (shut down), half the new one (running): a rolling update's store.
    for (let i = 0; i < tasks; i++) await b.update((tx) => tx.create('tasks', task(i, nodes, (i % 2) + 1)))
  })
  return store
}

const CONF = { voters: ['a', 'b', 'c'], learners: [] }

/** The durable steps of a snapshot through FileLogStorage with `hooks`: save, read back, install, reopen. */
async function durable(dir: string, hooks: FileLogStorageOptions, version: number, data: Uint8Array) {
  // The leader's own snapshot: entries up to `version`, then the snapshot at `version`.
  const own = await FileLogStorage.open(join(dir, 'own'), hooks)
  await own.load()
  const entries = Array.from({ length: version }, (_, i) => ({
    index: i + 1,
    term: 2,
    type: EntryType.Normal,
    data: new Uint8Array(64),
  }))
  await own.save({ hardState: { term: 2, vote: 'a', commit: version }, entries })
  const [, saveOwn] = await measure(() =>
    own.save({ snapshot: { meta: { index: version, term: 2, conf: CONF }, data } }),
  )
  // What a leader does before streaming it to a follower.
  const [readBack, read] = await measure(() => own.snapshot())
  if (readBack?.data.length !== data.length) throw new Error('snapshot read back differs')
  await own.close()
  // A follower installs it: the snapshot is past its log (discarded), written with the hard state.
  const follower = await FileLogStorage.open(join(dir, 'follower'), hooks)
  await follower.load()
  const [, saveInstall] = await measure(() =>
    follower.save({
      snapshot: { meta: { index: version + 100, term: 2, conf: CONF }, data },
      hardState: { term: 2, vote: null, commit: version + 100 },
    }),
  )
  await follower.close()
  // A manager starting: the storage opens (replays the log, reads the snapshot back), then loads.
  const [reopened, load] = await measure(async () => {
    const s = await FileLogStorage.open(join(dir, 'follower'), hooks)
    await s.load()
    return s
  })
  await reopened.close()
  await rm(join(dir, 'own'), { recursive: true, force: true })
  await rm(join(dir, 'follower'), { recursive: true, force: true })
  return { saveOwn, read, saveInstall, load }
}

/** A copy of `store`'s state with every other task's status changed: a follower some way behind. */
async function behind(data: Uint8Array): Promise<ClusterStore> {
  const s = new ClusterStore()
  await s.restoreAsync(data)
  const ids = s.view((tx) => tx.find('tasks', { all: true }).map((t) => t.id))
  await s.batch(async (b) => {
    for (let i = 0; i < ids.length; i += 2) {
      await b.update((tx) => {
        const t = tx.get('tasks', ids[i]!)!
        tx.update('tasks', { ...t, status: { ...t.status, message: 'older' } })
      })
    }
  })
  return s
}

async function one(nodes: number, tasks: number): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-store-snapshot-'))
  try {
    const [store, filled] = await measure(() => fill(nodes, tasks))
    const version = store.version
    const ctx = { kind: 'snapshot' as const, index: version, term: 2, type: 0 }
    const keys = await KeyManager.open(join(dir, 'keys.json'))
    const hooks = keys.hooks()
    const r: Record<string, unknown> = { nodes, tasks }

    // In one call each (as before issue #18's fix), then in slices.
    const [data, snapshot] = await measure(() => store.snapshot())
    r.bytes = data.length
    r.fill = filled
    r.snapshot = snapshot
    const [asyncData, snapshotAsync] = await measure(() => store.snapshotAsync())
    if (!Buffer.from(asyncData).equals(Buffer.from(data))) throw new Error('snapshotAsync differs')
    r.snapshotAsync = snapshotAsync
    const [sealed, seal] = await measure(() => hooks.seal(data, ctx))
    r.seal = seal
    r.sealAsync = (await measure(() => hooks.sealAsync(data, ctx)))[1]
    r.open = (await measure(() => hooks.open(sealed, ctx)))[1]
    r.openAsync = (await measure(() => hooks.openAsync(sealed, ctx)))[1]
    const oneCall = await durable(dir, { seal: hooks.seal, open: hooks.open }, version, data)
    const sliced = await durable(dir, hooks, version, data)
    for (const k of Object.keys(oneCall) as (keyof typeof oneCall)[]) {
      r[k] = oneCall[k]
      r[`${k}Async`] = sliced[k]
    }

    // A manager starting: restore into an empty store.
    r.restoreEmpty = (await measure(() => new ClusterStore().restore(data)))[1]
    r.restoreEmptyAsync = (await measure(() => new ClusterStore().restoreAsync(data)))[1]
    // A follower behind: half the tasks differ, two watches open (each gets every difference).
    for (const mode of ['restoreBehind', 'restoreBehindAsync'] as const) {
      const s = await behind(data)
      const watches = [s.watch({ queueSize: 1_000_000 }), s.watch({ queueSize: 1_000_000 })]
      const [, step] = await measure(() =>
        mode === 'restoreBehind' ? s.restore(data) : s.restoreAsync(data),
      )
      r[mode] = step
      r.restoreEvents = watches[0]!.pending
      for (const w of watches) w.close()
    }
    r.heapMiB = Math.round(process.memoryUsage().heapUsed / 2 ** 20)
    return r
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const sizes = (process.env.SNAP_SIZES ?? '1000:50000,1000:100000,5000:150000').split(',').map((s) => {
  const [n, t] = s.split(':').map(Number)
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(t)) throw new Error(`bad SNAP_SIZES entry ${s}`)
  return [n!, t!] as const
})

const load = loadavg()
  .map((x) => x.toFixed(1))
  .join(' ')
console.log(`load average ${load}`)
const results: Record<string, unknown>[] = []
for (const [n, t] of sizes) {
  const r = await one(n, t)
  results.push(r)
  const s = (k: string) => {
    const x = r[k] as Step
    return `${x.ms} ms (block ${x.blockMs} ms)`
  }
  console.log(
    `\n${n} nodes / ${t} tasks: ${(Number(r.bytes) / 2 ** 20).toFixed(1)} MiB, heap ${r.heapMiB} MiB`,
  )
  for (const k of [
    'snapshot',
    'seal',
    'open',
    'saveOwn',
    'read',
    'saveInstall',
    'load',
    'restoreEmpty',
    'restoreBehind',
  ]) {
    console.log(`  ${k.padEnd(13)} one call ${s(k).padEnd(28)} sliced ${s(`${k}Async`)}`)
  }
  console.log(`  (a restore behind: ${r.restoreEvents} events to each of 2 watches)`)
  // Let the next size start from a collected heap.
  ;(globalThis as { gc?: () => void }).gc?.()
}
console.log(
  `\nRESULT ${JSON.stringify({ bench: 'store-snapshot', load: loadavg().map((x) => round(x)), results })}`,
)
