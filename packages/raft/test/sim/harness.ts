// Deterministic simulation of a RaftNode cluster over MemoryNetwork and a ManualClock. One seed decides every
// fault, every client operation and every timing, so a failing seed replays bit for bit. Besides partitions,
// drops, delays, duplicates, reordering, crashes and transfers: process pauses, clocks that drift apart, one-way
// partitions and state machines that apply after random delays.
import { MemoryNetwork } from '@swarmkit/transport'
import type { RaftCore } from '../../src/core.js'
import { MemoryLogStorage, RaftNode } from '../../src/index.js'
import { coreOf } from '../../src/internal/inspect.js'
import type { Entry } from '../../src/storage.js'
import { rng } from '../helpers/cores.js'
import { DelayedApply, type NodeClock, pauseNode, resumeNode, seedShape, skewedClock } from './faults.js'
import { Kv, KvWorkload, SafetyChecker, SimFailure, WatchedClock, watchdog } from './shared.js'

export { SimFailure }

export interface SimOptions {
  readonly seed: number
  readonly nodes: number
  readonly steps: number
  /** Apply entries after random delays in [min, max] ms (default: drawn per seed, at most 30). */
  readonly applyDelayMs?: readonly [number, number]
}

export interface SimResult {
  readonly ops: number
  readonly completed: number
  readonly digest: string
  readonly committed: number
  /** Pauses and one-way cuts injected. */
  readonly pauses: number
  readonly oneWayCuts: number
}

interface Member {
  readonly id: string
  readonly clock: NodeClock
  applier: DelayedApply<unknown> | null
  readonly storage: MemoryLogStorage
  node: RaftNode | null
  sm: Kv
  /** Entries this member applied, in order, since its last start. */
  applied: Entry[]
}

/** Runs one seed under its watchdog; throws SimFailure (with the seed in the message) on any violation. */
export function simulate(o: SimOptions): Promise<SimResult> {
  return watchdog(`seed ${o.seed} (${o.nodes} nodes)`, (signal) => run(o, signal))
}

async function run(o: SimOptions, signal: AbortSignal): Promise<SimResult> {
  const r = rng(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const clock = new WatchedClock(signal)
  const drawn = seedShape(r)
  const shape = { ...drawn, maxApplyDelayMs: o.applyDelayMs?.[1] ?? drawn.maxApplyDelayMs }
  const net = new MemoryNetwork({ seed: o.seed, clock, highWaterMarkBytes: shape.highWaterMarkBytes })
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`)
  let pauses = 0
  let oneWayCuts = 0
  const members: Member[] = ids.map((id) => ({
    id,
    clock: skewedClock(clock, r, shape.drift),
    applier: null,
    storage: new MemoryLogStorage(),
    node: null,
    sm: new Kv(),
    applied: [],
  }))
  const trace: string[] = []
  const fail = (msg: string): never => {
    throw new SimFailure(
      `seed ${o.seed} (${o.nodes} nodes) failed at t=${clock.now()}ms: ${msg}\n` +
        `replay: SWARMKIT_SEED=${o.seed} npx vitest run --project raft test/sim\nlast events:\n${trace.slice(-15).join('\n')}`,
    )
  }
  const clients = new KvWorkload((line) => trace.push(`${clock.now()} ${line}`))
  const safety = new SafetyChecker(fail)

  const start = async (m: Member) => {
    m.sm = new Kv()
    m.applied = []
    const sm = m.sm
    const applied = m.applied
    const applier = new DelayedApply(
      (cmd: Uint8Array, index: number) => {
        applied.push({ index, term: 0, type: 0, data: cmd })
        return sm.apply(cmd)
      },
      m.clock,
      rng(Math.floor(r() * 2 ** 31)),
      shape.maxApplyDelayMs,
      o.applyDelayMs?.[0] ?? 0,
    )
    m.applier = applier
    const node = new RaftNode({
      id: m.id,
      peers: ids,
      transport: net.transport(m.id),
      clock: m.clock,
      storage: m.storage,
      stateMachine: {
        apply: applier.fn,
        snapshot: () => sm.snapshot(),
        restore: (b) => sm.restore(b),
      },
      electionTimeoutMs: [150, 300],
      heartbeatIntervalMs: 50,
      random: rng(Math.floor(r() * 2 ** 31)),
      leaseReads: r() < 0.3,
    })
    m.node = node
    await node.start()
  }

  const stop = async (m: Member) => {
    const node = m.node
    if (!node) return
    m.node = null
    resumeNode(net, m.id, m.clock)
    m.applier?.crash()
    const t = net.transport(m.id)
    await node.stop()
    await t.close()
  }

  const core = (m: Member): RaftCore | null => (m.node ? (coreOf.get(m.node)?.() ?? null) : null)

  /** Every safety invariant; `full` also compares whole logs byte for byte (otherwise a recent window). */
  const check = (full = false) => {
    safety.check(
      members.map((m) => ({ id: m.id, core: core(m), applied: m.applied })),
      full,
    )
    // Nothing committed is lost: a majority of storages hold each committed entry.
    const quorum = (ids.length >> 1) + 1
    const top = safety.committed.size
    for (let i = top; i >= 1 && i > (full ? 0 : top - 3); i--) {
      let n = 0
      for (const m of members) {
        const s = m.storage as unknown as { entries: Entry[]; offset: number }
        const e = s.entries[i - 1 - s.offset]
        if (e && e.term === safety.committed.get(i)!.term) n++
      }
      if (n < quorum) fail(`committed entry ${i} is stored on only ${n} members`)
    }
  }

  await Promise.all(members.map(start))
  const keys = ['a', 'b', 'c']
  const clientStep = () => {
    const m = pick(members)
    const isPut = r() < 0.6
    const key = pick(keys)
    // A paused process takes no requests (they would wait for it).
    if (!m.node || m.clock.paused) return
    if (isPut) clients.put(m.id, m.node, key)
    else clients.get(m.node, m.sm, key)
  }
  const debug = (step: number) => {
    if (!process.env.SIM_DEBUG || (step % 20 !== 0 && process.env.SIM_DEBUG !== '2')) return
    const state = members.map((m) =>
      m.node
        ? `${m.id}:${m.node.role}:${m.node.term}:${m.node.commitIndex}/${core(m)?.lastIndex}`
        : `${m.id}:down`,
    )
    console.log(step, clock.now(), state.join(' '), trace.slice(-3).join('; '))
  }
  const oneWay: [string, string][] = []
  const heal = () => {
    net.heal()
    for (const [a, b] of oneWay.splice(0)) net.setLinkFaults(a, b, null)
  }
  // Phase 1: chaos.
  for (let step = 0; step < o.steps; step++) {
    const x = r()
    if (x < 0.4) clientStep()
    else if (x < 0.43) {
      const a = pick(ids)
      trace.push(`${clock.now()} isolate ${a}`)
      net.isolate(a)
    } else if (x < 0.46) {
      const cut = 1 + Math.floor(r() * (ids.length - 1))
      const shuffled = ids.slice().sort(() => r() - 0.5)
      trace.push(`${clock.now()} partition ${shuffled.slice(0, cut)} | ${shuffled.slice(cut)}`)
      net.partition(shuffled.slice(0, cut), shuffled.slice(cut))
    } else if (x < 0.475) {
      // One-way: frames from a to b are lost, b to a still arrive.
      const a = pick(ids)
      const b = pick(ids)
      if (a !== b) {
        trace.push(`${clock.now()} cut ${a} -> ${b}`)
        net.setLinkFaults(a, b, { dropRate: 1 })
        oneWay.push([a, b])
        oneWayCuts++
      }
    } else if (x < 0.49) {
      // A process pause (GC, SIGSTOP, a stalled VM) of up to 3 s: longer than an election timeout.
      const m = pick(members)
      if (m.node && !m.clock.paused) {
        pauseNode(net, clock, m.id, m.clock, 50 + Math.floor(r() * 3000), (l) =>
          trace.push(`${clock.now()} ${l}`),
        )
        pauses++
      }
    } else if (x < 0.51) {
      trace.push(`${clock.now()} heal`)
      heal()
    } else if (x < 0.53) {
      const f = {
        dropRate: r() * 0.2,
        duplicateRate: r() * 0.1,
        delayMs: [0, Math.floor(r() * 40)] as [number, number],
        reorder: r() < 0.5,
      }
      trace.push(`${clock.now()} faults ${JSON.stringify(f)}`)
      net.setFaults(f)
    } else if (x < 0.55) {
      trace.push(`${clock.now()} clear faults`)
      net.setFaults(null)
    } else if (x < 0.57) {
      const m = pick(members)
      if (m.node) {
        trace.push(`${clock.now()} crash ${m.id}`)
        await stop(m)
      } else {
        trace.push(`${clock.now()} restart ${m.id}`)
        await start(m)
      }
    } else if (x < 0.575) {
      const l = members.find((m) => m.node?.role === 'leader')
      if (l?.node) {
        trace.push(`${clock.now()} transfer from ${l.id}`)
        l.node.transferLeadership().catch(() => {})
      }
    } else if (x < 0.6) {
      await clock.advanceAsync(100 + Math.floor(r() * 400))
    } else {
      await clock.advanceAsync(1 + Math.floor(r() * 40))
    }
    check()
    debug(step)
  }
  // Phase 2: the network heals and everyone is up; the cluster must make progress again.
  trace.push(`${clock.now()} heal all, restart all`)
  heal()
  net.setFaults(null)
  for (const m of members) if (m.node) resumeNode(net, m.id, m.clock)
  for (const m of members) if (!m.node) await start(m)
  const before = clients.completedPuts()
  await clock.advanceAsync(1000)
  for (let step = 0; step < 40; step++) {
    clientStep()
    await clock.advanceAsync(1 + Math.floor(r() * 20))
    check()
  }
  // Every operation started by now settles (resolves, or rejects with why) once the cluster caught up.
  const startedBeforeCatchUp = clients.started
  await clock.advanceAsync(3000)
  // Slow state machines (up to 0.5 s an entry) may still be working through a backlog.
  const behind = () =>
    clients.completedPuts() === before ||
    members.some((m) => m.node!.appliedIndex < Math.max(...members.map((k) => k.node!.commitIndex)))
  for (let waited = 0; behind() && waited < 60_000; waited += 500) await clock.advanceAsync(500)
  check(true)
  const after = clients.completedPuts()
  if (after === before) fail('no write completed after the network healed')
  const top = Math.max(...members.map((m) => m.node!.commitIndex))
  for (const m of members) {
    if (m.node!.appliedIndex !== top)
      fail(
        `${m.id} applied ${m.node!.appliedIndex} of ${top} after the network healed ` +
          `(${m.node!.role}, term ${m.node!.term}, commit ${m.node!.commitIndex}, paused ${m.clock.paused}); ` +
          members
            .map((k) => `${k.id}:${k.node!.role}:${k.node!.term}:${k.node!.commitIndex}:${k.node!.leaderId}`)
            .join(' '),
      )
  }
  const hung = clients.unsettled(startedBeforeCatchUp)
  if (hung.length > 0) fail(`operations never settled: ${hung.slice(0, 10).join(', ')}`)
  for (const m of members) await stop(m)

  clients.checkLinearizable(fail)
  const digest = `${safety.digest()}|${clients.history.length}|${clients.time}`
  return {
    ops: clients.started,
    completed: clients.completed(),
    digest,
    committed: safety.committed.size,
    pauses,
    oneWayCuts,
  }
}
