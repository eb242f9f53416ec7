// bench/store-apply: what a replicated cluster store spends per task status update (issue #18: on a 150,000-task
// `service create` the store took 22% of the leader's main thread and 40% of a follower's).
//
// A "leader" store proposes the writes as the reference cluster makes them (the orchestrator's creates, 200 per
// commit; the scheduler's assignment; then the agents' accepted, preparing, starting and running, committed by
// the dispatcher with `applyStatuses`, about 150 updates per transaction) and applies its own commands; a
// "follower" store then applies the same commands, as every other manager does. Each round (one write per
// task) reports, per task: the proposing side (the transaction and encoding the command), the proposer's own
// apply, and a follower's apply (decode, rebuild deltas, validate, apply), in microseconds of CPU time (the
// process's: other jobs on the machine count for little; the collector's helper threads count), and bytes
// allocated (heap growth plus what each collection freed: what the collector has to deal with).
//
// STORE_APPLY_BASELINE=path/to/another/build/of/packages/store/dist/index.js runs that build side by side with
// this one (interleaved round by round, each with its own stores), e.g. main's, copied under bench/.out so that
// it finds the workspace's node_modules. STORE_APPLY_TASKS (default 150000), STORE_APPLY_BATCH (updates per
// transaction, default 150), STORE_APPLY_REPEAT (runs of the whole sequence, default 1), STORE_APPLY_HISTORY
// (the stores' `historySize`). STORE_APPLY_PROFILE=DIR writes a CPU profile and a sampling heap profile
// (collected objects included: what was allocated, not what stays) of this build's follower applies
// (follower-apply.cpuprofile, .heapprofile) and leader rounds (leader.*) to DIR, the last round's of each;
// STORE_APPLY_PROFILE_CPU_ONLY=1 samples the heap coarsely (fine sampling slows what is measured).
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import v8 from 'node:v8'
import type { ClusterStore, NewObject, Task, TaskState } from '@swarmkit/store'
import * as current from '@swarmkit/store'
import type { TaskStatusUpdate } from '../../examples/cluster/src/dispatcher.js'
import { applyStatuses } from '../../examples/cluster/src/task-status.js'

const TASKS = Number(process.env['STORE_APPLY_TASKS'] ?? 150_000)
const BATCH = Number(process.env['STORE_APPLY_BATCH'] ?? 150)
const REPEAT = Number(process.env['STORE_APPLY_REPEAT'] ?? 1)
const HISTORY = process.env['STORE_APPLY_HISTORY']
const PER_NODE = 30
const NODES = Math.ceil(TASKS / PER_NODE)

type StoreModule = { ClusterStore: typeof ClusterStore }

interface Variant {
  name: string
  leader: ClusterStore
  follower: ClusterStore
  /** Commands of the round, for the follower. */
  log: Uint8Array[]
  index: number
  /** Set by the leader's transaction when it starts; the proposer reads it. */
  txStart: number
  proposeMs: number
  leaderApplyMs: number
  bytes: number
}

/** CPU time of this process (all threads, so a collector's helpers count too), in ms: other jobs share the machine. */
const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const id = (prefix: string, i: number) => `${prefix}${i.toString(36).padStart(24, '0')}`
const taskId = (i: number) => id('t', i)
const nodeId = (n: number) => id('n', n)

function variant(name: string, mod: StoreModule): Variant {
  const v: Variant = {
    name,
    log: [],
    index: 0,
    txStart: 0,
    proposeMs: 0,
    leaderApplyMs: 0,
    bytes: 0,
  } as unknown as Variant
  v.leader = new mod.ClusterStore({
    maxCommandBytes: 4 * 1024 * 1024,
    ...(HISTORY ? { historySize: Number(HISTORY) } : {}),
    proposer: async (command) => {
      const t = cpuMs()
      v.proposeMs += t - v.txStart
      v.bytes += command.length
      v.log.push(command)
      const r = v.leader.apply(command, ++v.index)
      v.leaderApplyMs += cpuMs() - t
      if (!r.ok) throw new Error(`leader refused its own command: ${r.message}`)
    },
  })
  v.follower = new mod.ClusterStore(HISTORY ? { historySize: Number(HISTORY) } : {})
  return v
}

/** A task as the orchestrator makes it for `docker service create` (the spec shared, frozen by the store). */
function newTask(i: number, spec: Task['spec']): NewObject<Task> {
  return {
    id: taskId(i),
    spec,
    specVersion: { index: 11 },
    serviceId: 'svc0000000000000000000001',
    slot: i + 1,
    nodeId: '',
    serviceAnnotations: { name: 'scale', labels: {} },
    status: { timestamp: Date.now(), state: 'pending', message: 'pending task scheduling' },
    desiredState: 'running',
    networks: [],
  }
}

const SPEC = {
  containerSpec: {
    image: 'busybox:latest',
    env: ['GEN=1'],
    init: false,
    stopGracePeriod: 10_000_000_000,
    isolation: 'default',
  },
  resources: { limits: {}, reservations: {} },
  restartPolicy: { condition: 'any', delay: 5_000_000_000, maxAttempts: 0 },
  placement: {},
  forceUpdate: 0,
  runtime: 'container',
} as unknown as Task['spec']

async function tx(v: Variant, fn: Parameters<ClusterStore['update']>[0]): Promise<void> {
  await v.leader.update((t) => {
    v.txStart = cpuMs()
    fn(t)
  })
}

const PROFILE = process.env['STORE_APPLY_PROFILE']
const session = PROFILE ? new Session() : undefined
session?.connect()
const post = (method: string, params?: object) =>
  new Promise<any>((res, rej) => session!.post(method, params ?? {}, (err, r) => (err ? rej(err) : res(r))))
if (session) {
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 100 })
  await post('HeapProfiler.enable')
}

async function profiled(v: Variant, what: string, fn: () => Promise<void> | void): Promise<void> {
  if (!session || v.name !== 'this') return fn()
  await post('Profiler.start')
  await post('HeapProfiler.startSampling', {
    // Fine sampling slows the code measured: a coarse one when only the CPU profile is wanted.
    samplingInterval: process.env['STORE_APPLY_PROFILE_CPU_ONLY'] ? 1 << 24 : 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  await fn()
  const heap = await post('HeapProfiler.stopSampling')
  const cpu = await post('Profiler.stop')
  const append = (file: string, data: unknown) => {
    const prev = profiles.get(file)
    profiles.set(file, prev ? merge(prev, data) : data)
    writeFileSync(`${PROFILE}/${file}`, JSON.stringify(profiles.get(file)))
  }
  append(`${what}.cpuprofile`, cpu.profile)
  append(`${what}.heapprofile`, heap.profile)
}
const profiles = new Map<string, unknown>()
/** Keeps the last profile of each kind (the rounds are alike). */
const merge = (_a: unknown, b: unknown) => b

function followerApply(v: Variant): void {
  for (const c of v.log) {
    const r = v.follower.apply(c, v.follower.version + 1)
    if (!r.ok) throw new Error(`follower refused a command: ${r.message}`)
  }
  v.log = []
}

/** Runs `fn` and returns its CPU time and the bytes it allocated (heap growth plus what each GC freed). */
async function measured(fn: () => Promise<void> | void): Promise<{ ms: number; bytes: number }> {
  const gc = new v8.GCProfiler()
  const before = v8.getHeapStatistics().used_heap_size
  gc.start()
  const t0 = cpuMs()
  await fn()
  const ms = cpuMs() - t0
  const stats = gc.stop()
  const after = v8.getHeapStatistics().used_heap_size
  let freed = 0
  for (const s of stats?.statistics ?? [])
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
  return { ms, bytes: after - before + freed }
}

async function setup(v: Variant): Promise<void> {
  await v.leader.update((t) => {
    for (let n = 0; n < NODES; n++)
      t.create('nodes', {
        id: nodeId(n),
        spec: { role: 'worker', availability: 'active', labels: {} },
        role: 'worker',
        status: { state: 'ready', addr: `10.0.${n >> 8}.${n & 255}` },
        description: { hostname: `sim-${n}` },
      } as never)
  })
  followerApply(v)
}

/** The orchestrator's creates (`pending`), in commits of 200 (the store's default `maxChangesPerCommit`). */
async function create(v: Variant): Promise<void> {
  for (let i = 0; i < TASKS; i += 200)
    await tx(v, (t) => {
      for (let j = i; j < Math.min(TASKS, i + 200); j++) t.create('tasks', newTask(j, SPEC))
    })
}

/** The scheduler's assignment of every task (`assigned`, on the leader only). */
async function assign(v: Variant): Promise<void> {
  for (let i = 0; i < TASKS; i += BATCH) {
    await tx(v, (t) => {
      const now = Date.now()
      for (let j = i; j < Math.min(TASKS, i + BATCH); j++) {
        const task = t.get('tasks', taskId(j))!
        t.update('tasks', {
          ...task,
          nodeId: nodeId(Math.floor(j / PER_NODE)),
          status: { timestamp: now, state: 'assigned', message: 'scheduler assigned task to node' },
        })
      }
    })
  }
}

/** Every task's agent reports `state`, committed per `BATCH` updates (whole nodes) as the dispatcher does. */
async function report(v: Variant, state: TaskState, message: string): Promise<void> {
  const nodesPerTx = Math.max(1, Math.round(BATCH / PER_NODE))
  for (let n = 0; n < NODES; n += nodesPerTx) {
    const batch: { nodeId: string; updates: TaskStatusUpdate[] }[] = []
    for (let k = n; k < Math.min(NODES, n + nodesPerTx); k++) {
      const updates: TaskStatusUpdate[] = []
      for (let j = k * PER_NODE; j < Math.min(TASKS, (k + 1) * PER_NODE); j++)
        updates.push({ taskId: taskId(j), state, message } as TaskStatusUpdate)
      batch.push({ nodeId: nodeId(k), updates })
    }
    await tx(v, (t) => {
      const now = Date.now()
      for (const b of batch) applyStatuses(t, b.nodeId, b.updates, now)
    })
  }
}

const ROUNDS: [string, (v: Variant) => Promise<void>][] = [
  ['created', create],
  ['assigned', assign],
  ['accepted', (v) => report(v, 'accepted', 'accepted')],
  ['preparing', (v) => report(v, 'preparing', 'preparing')],
  ['starting', (v) => report(v, 'starting', 'starting')],
  ['running', (v) => report(v, 'running', 'started')],
]

interface Figures {
  proposeUs: number
  leaderApplyUs: number
  followerApplyUs: number
  leaderBytes: number
  followerBytes: number
  commandBytes: number
}

async function main(): Promise<void> {
  const mods: [string, StoreModule][] = []
  const baseline = process.env['STORE_APPLY_BASELINE']
  if (baseline) mods.push(['baseline', (await import(pathToFileURL(resolve(baseline)).href)) as StoreModule])
  mods.push(['this', current as unknown as StoreModule])
  console.log(
    `${TASKS} tasks on ${NODES} nodes, ${BATCH} updates per transaction; load average ${loadavg()[0]!.toFixed(2)}`,
  )
  const totals = new Map<string, Figures>()
  for (let rep = 0; rep < REPEAT; rep++) {
    const variants = mods.map(([name, mod]) => variant(name, mod))
    for (const v of variants) await setup(v)
    for (const [round, run] of ROUNDS) {
      for (const v of variants) {
        globalThis.gc?.()
        v.proposeMs = v.leaderApplyMs = v.bytes = 0
        const lead = await measured(() => profiled(v, 'leader', () => run(v)))
        const follow = await measured(() => profiled(v, 'follower-apply', () => followerApply(v)))
        // The dispatcher reads tasks by node: that index is built on every manager.
        if (round === 'created')
          for (const s of [v.leader, v.follower]) s.view((t) => t.find('tasks', { nodeId: nodeId(0) }))
        const f: Figures = {
          proposeUs: (v.proposeMs * 1000) / TASKS,
          leaderApplyUs: (v.leaderApplyMs * 1000) / TASKS,
          followerApplyUs: (follow.ms * 1000) / TASKS,
          leaderBytes: lead.bytes / TASKS,
          followerBytes: follow.bytes / TASKS,
          commandBytes: v.bytes / TASKS,
        }
        const sum = totals.get(v.name) ?? {
          proposeUs: 0,
          leaderApplyUs: 0,
          followerApplyUs: 0,
          leaderBytes: 0,
          followerBytes: 0,
          commandBytes: 0,
        }
        if (round !== 'created') {
          for (const k of Object.keys(f) as (keyof Figures)[]) sum[k] += f[k] / ((ROUNDS.length - 1) * REPEAT)
          totals.set(v.name, sum)
        }
        console.log(
          `${round.padEnd(9)} ${v.name.padEnd(8)} propose ${f.proposeUs.toFixed(2)} µs, leader apply ${f.leaderApplyUs.toFixed(2)} µs, follower apply ${f.followerApplyUs.toFixed(2)} µs per update; allocated ${Math.round(f.leaderBytes)} B (leader: propose + apply), ${Math.round(f.followerBytes)} B (follower); command ${f.commandBytes.toFixed(1)} B`,
        )
      }
    }
    for (const v of variants) {
      v.leader.close()
      v.follower.close()
    }
  }
  console.log('\nmean per status update over the rounds (creates not counted):')
  for (const [name, f] of totals)
    console.log(
      `${name.padEnd(8)} propose ${f.proposeUs.toFixed(2)} µs + leader apply ${f.leaderApplyUs.toFixed(2)} µs, follower apply ${f.followerApplyUs.toFixed(2)} µs; allocated ${Math.round(f.leaderBytes)} B leader, ${Math.round(f.followerBytes)} B follower; command ${f.commandBytes.toFixed(1)} B`,
    )
  console.log(
    JSON.stringify({
      tasks: TASKS,
      batch: BATCH,
      load_avg_1m_end: Number(loadavg()[0]!.toFixed(2)),
      ...Object.fromEntries(
        [...totals].map(([n, f]) => [
          n,
          Object.fromEntries(Object.entries(f).map(([k, x]) => [k, Number(x.toFixed(2))])),
        ]),
      ),
    }),
  )
}

await main()
