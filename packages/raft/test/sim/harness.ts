// Deterministic simulation of a RaftNode cluster over MemoryNetwork and a ManualClock. One seed decides every
// fault, every client operation and every timing, so a failing seed replays bit for bit.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { isRaftError, MemoryLogStorage, RaftNode } from '../../src/index.js'
import type { RaftCore } from '../../src/internal/core.js'
import { coreOf } from '../../src/internal/inspect.js'
import type { Entry } from '../../src/storage.js'
import {
  checkLinearizability,
  type KvInput,
  type KvOutput,
  kvModel,
  type Operation,
} from '../../src/testing/index.js'
import { rng } from '../helpers/cores.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

export interface SimOptions {
  readonly seed: number
  readonly nodes: number
  readonly steps: number
}

export interface SimResult {
  readonly ops: number
  readonly completed: number
  readonly digest: string
  readonly committed: number
}

class Kv {
  readonly data = new Map<string, string>()
  apply(cmd: Uint8Array): unknown {
    const s = dec.decode(cmd)
    const i = s.indexOf('=')
    this.data.set(s.slice(0, i), s.slice(i + 1))
    return undefined
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.data]))
  }
  restore(b: Uint8Array): void {
    this.data.clear()
    for (const [k, v] of JSON.parse(dec.decode(b)) as [string, string][]) this.data.set(k, v)
  }
}

interface Member {
  readonly id: string
  readonly storage: MemoryLogStorage
  node: RaftNode | null
  sm: Kv
  /** Entries this member applied, in order, since its last start. */
  applied: Entry[]
}

export class SimFailure extends Error {}

/** Runs one seeded simulation; throws SimFailure (with the seed in the message) on any violation. */
export async function simulate(o: SimOptions): Promise<SimResult> {
  const r = rng(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const clock = new ManualClock()
  const net = new MemoryNetwork({ seed: o.seed, clock })
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`)
  const members: Member[] = ids.map((id) => ({
    id,
    storage: new MemoryLogStorage(),
    node: null,
    sm: new Kv(),
    applied: [],
  }))
  const history: Operation<KvInput, KvOutput>[] = []
  let time = 0 // logical time of client events: a total order of calls and returns
  let valueSeq = 0
  let opsStarted = 0
  const trace: string[] = []
  const fail = (msg: string): never => {
    throw new SimFailure(
      `seed ${o.seed} (${o.nodes} nodes) failed at t=${clock.now()}ms: ${msg}\n` +
        `replay: SWARMKIT_SEED=${o.seed} npx vitest run --project raft test/sim\nlast events:\n${trace.slice(-15).join('\n')}`,
    )
  }

  const leaders = new Map<number, string>() // term -> leader (election safety)
  // Global committed log (index i+1), with the term of the first member seen holding it committed.
  const committed: { term: number; data: Uint8Array; seenIn: number }[] = []
  const appliedAt: Uint8Array[] = [] // first command applied at each index (state machine safety)

  const start = async (m: Member) => {
    m.sm = new Kv()
    m.applied = []
    const sm = m.sm
    const applied = m.applied
    const node = new RaftNode({
      id: m.id,
      peers: ids,
      transport: net.transport(m.id),
      storage: m.storage,
      stateMachine: {
        apply: (cmd, index) => {
          applied.push({ index, term: 0, type: 0, data: cmd })
          return sm.apply(cmd)
        },
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
    const t = net.transport(m.id)
    await node.stop()
    await t.close()
  }

  const core = (m: Member): RaftCore | null => (m.node ? (coreOf.get(m.node)?.() ?? null) : null)

  const same = (a: Uint8Array, b: Uint8Array): boolean => {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  // How far each core's committed prefix has been checked (committed entries never change).
  const checkedTo = new WeakMap<RaftCore, number>()

  /** Checks every invariant; `full` also compares whole logs byte for byte (otherwise terms plus a recent window). */
  const check = (full = false) => {
    for (const m of members) {
      const c = core(m)
      if (!c) continue
      // Election safety: one leader per term.
      if (c.role === 'leader') {
        const prev = leaders.get(c.term)
        if (prev !== undefined && prev !== m.id) fail(`two leaders in term ${c.term}: ${prev} and ${m.id}`)
        leaders.set(c.term, m.id)
      }
      // Committed entries: agree with the global committed log, and extend it.
      const log = c.log
      for (let i = full ? 1 : (checkedTo.get(c) ?? 0) + 1; i <= log.committed; i++) {
        const e = log.entries[i - 1]!
        const g = committed[i - 1]
        if (g === undefined) committed.push({ term: e.term, data: e.data, seenIn: c.term })
        else if (g.term !== e.term || !same(g.data, e.data))
          fail(`${m.id} committed ${i}@${e.term} but ${i}@${g.term} was committed`)
      }
      checkedTo.set(c, log.committed)
      // Leader completeness: a leader of a later term holds every committed entry.
      if (c.role === 'leader') {
        for (let i = 1; i <= committed.length; i++) {
          const g = committed[i - 1]!
          if (g.seenIn < c.term && log.term(i) !== g.term)
            fail(`leader ${m.id} (term ${c.term}) lacks committed entry ${i}`)
        }
      }
    }
    // Log matching: same index and term imply the same entries up to there.
    const live = members.map(core).filter((c): c is RaftCore => c !== null)
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const la = live[a]!.log
        const lb = live[b]!.log
        let top = Math.min(la.lastIndex(), lb.lastIndex())
        while (top > 0 && la.term(top) !== lb.term(top)) top--
        for (let i = top; i > 0; i--) {
          const ea = la.entries[i - 1]!
          const eb = lb.entries[i - 1]!
          if (ea.term !== eb.term || ((full || i > top - 8) && ea !== eb && !same(ea.data, eb.data))) {
            fail(`log matching: ${live[a]!.id} and ${live[b]!.id} agree at ${top} but differ at ${i}`)
          }
        }
      }
    }
    // State machine safety: every member applies the same command at each index.
    for (const m of members) {
      for (const e of m.applied) {
        const g = appliedAt[e.index - 1]
        if (g === undefined) appliedAt[e.index - 1] = e.data
        else if (!same(g, e.data))
          fail(
            `${m.id} applied "${dec.decode(e.data)}" at ${e.index}, another member applied "${dec.decode(g)}"`,
          )
      }
      m.applied.length = 0
    }
    // Nothing committed is lost: a majority of storages hold each committed entry.
    const quorum = (ids.length >> 1) + 1
    for (let i = committed.length; i >= 1 && i > (full ? 0 : committed.length - 3); i--) {
      let n = 0
      for (const m of members) {
        const s = m.storage as unknown as { entries: Entry[]; offset: number }
        const e = s.entries[i - 1 - s.offset]
        if (e && e.term === committed[i - 1]!.term) n++
      }
      if (n < quorum) fail(`committed entry ${i} is stored on only ${n} members`)
    }
  }

  const propose = (m: Member, key: string) => {
    const node = m.node
    if (!node) return
    const value = `v${++valueSeq}`
    const call = ++time
    opsStarted++
    trace.push(`${clock.now()} ${m.id} put ${key}=${value}`)
    node.propose(enc.encode(`${key}=${value}`)).then(
      () =>
        history.push({
          client: opsStarted,
          input: { op: 'put', key, value },
          output: { ok: true },
          call,
          return: ++time,
        }),
      (err) => {
        // NO_LEADER and PROPOSAL_DROPPED mean "not committed": leave it out, so a read of it is a violation.
        if (isRaftError(err, 'NO_LEADER') || isRaftError(err, 'PROPOSAL_DROPPED')) return
        history.push({
          input: { op: 'put', key, value },
          output: undefined,
          call,
          return: Number.POSITIVE_INFINITY,
        })
      },
    )
  }

  const read = (m: Member, key: string) => {
    const node = m.node
    if (!node) return
    const call = ++time
    const sm = m.sm
    opsStarted++
    node.readIndex().then(
      () => {
        const value = sm.data.get(key) ?? null
        history.push({ input: { op: 'get', key }, output: { value }, call, return: ++time })
      },
      () => {},
    )
  }

  await Promise.all(members.map(start))
  const keys = ['a', 'b', 'c']
  const clientStep = () => {
    const m = pick(members)
    if (r() < 0.6) propose(m, pick(keys))
    else read(m, pick(keys))
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
    } else if (x < 0.51) {
      trace.push(`${clock.now()} heal`)
      net.heal()
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
  net.heal()
  net.setFaults(null)
  for (const m of members) if (!m.node) await start(m)
  const before = history.filter((h) => h.input.op === 'put' && h.return !== Number.POSITIVE_INFINITY).length
  await clock.advanceAsync(1000)
  for (let step = 0; step < 40; step++) {
    clientStep()
    await clock.advanceAsync(1 + Math.floor(r() * 20))
    check()
  }
  await clock.advanceAsync(3000)
  check(true)
  const after = history.filter((h) => h.input.op === 'put' && h.return !== Number.POSITIVE_INFINITY).length
  if (after === before) fail('no write completed after the network healed')
  const top = Math.max(...members.map((m) => m.node!.commitIndex))
  for (const m of members) {
    if (m.node!.appliedIndex !== top)
      fail(`${m.id} applied ${m.node!.appliedIndex} of ${top} after the network healed`)
  }
  for (const m of members) await stop(m)

  const result = checkLinearizability(kvModel, history, { maxSteps: 2_000_000 })
  if (result.outcome === 'illegal') {
    fail(`history is not linearizable; partition:\n${JSON.stringify(result.partition)}`)
  }
  const completed = history.filter((h) => h.return !== Number.POSITIVE_INFINITY).length
  const digest = `${committed.length}:${committed.map((e) => `${e.term}/${dec.decode(e.data)}`).join(',')}|${history.length}|${time}`
  return { ops: opsStarted, completed, digest, committed: committed.length }
}
