// Deterministic simulation of the durable side of a RaftNode cluster over MemoryNetwork and a ManualClock:
// snapshots and compaction every few entries (followers catch up through chunked snapshot transfers),
// membership changes (3 voters grow to 5 through learners and shrink back, the leader itself may be removed),
// and crashes that lose every write not yet synced. One seed decides everything; a failing seed replays bit for
// bit. After every step: election safety, agreement of committed entries, leader completeness, log matching
// and state machine safety; at the end the client history must be linearizable.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { isRaftError, MemoryLogStorage, RaftNode } from '../../src/index.js'
import type { RaftCore } from '../../src/internal/core.js'
import { coreOf } from '../../src/internal/inspect.js'
import type { Entry, LogStorage, PersistedState, Snapshot, StorageUpdate } from '../../src/storage.js'
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

/**
 * Storage whose saves become durable only when a (virtual) sync completes a little later; `crash()` loses every
 * save not yet synced, as a power cut loses a write that fsync had not finished.
 */
export class LossyStorage implements LogStorage {
  readonly inner = new MemoryLogStorage()
  private pending: { update: StorageUpdate; resolve: () => void; reject: (e: Error) => void }[] = []
  private timer: unknown = null
  private crashed = false
  lost = 0

  constructor(
    private readonly clock: ManualClock,
    private readonly syncMs: () => number,
  ) {}

  load(): Promise<PersistedState> {
    this.crashed = false
    return this.inner.load()
  }

  save(update: StorageUpdate): Promise<void> {
    // The crashed process writes nothing more; the next incarnation starts with load().
    if (this.crashed) return Promise.reject(new Error('crashed'))
    return new Promise((resolve, reject) => {
      this.pending.push({ update, resolve, reject })
      if (this.timer === null) this.timer = this.clock.setTimeout(this.sync, this.syncMs())
    })
  }

  private readonly sync = (): void => {
    this.timer = null
    const batch = this.pending
    this.pending = []
    for (const p of batch) {
      this.inner.apply(p.update)
      p.resolve()
    }
  }

  snapshot(): Promise<Snapshot | null> {
    return this.inner.snapshot()
  }

  compact(index: number): Promise<void> {
    return this.inner.compact(index)
  }

  async close(): Promise<void> {}

  /** Loses every save not yet synced (their promises reject, as the process would never see them resolve). */
  crash(): void {
    this.crashed = true
    if (this.timer !== null) this.clock.clearTimeout(this.timer)
    this.timer = null
    const batch = this.pending
    this.pending = []
    this.lost += batch.length
    for (const p of batch) p.reject(new Error('crashed before the write was synced'))
  }
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
  readonly storage: LossyStorage
  node: RaftNode | null
  sm: Kv
  applied: Entry[]
  removed: boolean
}

export interface DurableSimOptions {
  readonly seed: number
  readonly steps: number
  /** Grow and shrink the membership. */
  readonly membership: boolean
  /** Snapshot this often (applied entries). */
  readonly snapshotThreshold: number
  /** Sees every event as it happens (debugging a seed). */
  readonly onEvent?: (line: string) => void
}

export interface DurableSimResult {
  readonly digest: string
  readonly committed: number
  readonly completed: number
  readonly snapshotsInstalled: number
  readonly membershipChanges: number
  readonly lostWrites: number
}

export class SimFailure extends Error {}

export async function simulateDurable(o: DurableSimOptions): Promise<DurableSimResult> {
  const r = rng(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  const clock = new ManualClock()
  const net = new MemoryNetwork({ seed: o.seed, clock })
  const boot = ['n1', 'n2', 'n3']
  let nextId = 4
  const members: Member[] = []
  const newMember = (id: string): Member => {
    const m: Member = {
      id,
      storage: new LossyStorage(clock, () => 1 + Math.floor(r() * 4)),
      node: null,
      sm: new Kv(),
      applied: [],
      removed: false,
    }
    members.push(m)
    return m
  }
  for (const id of boot) newMember(id)

  const history: Operation<KvInput, KvOutput>[] = []
  let time = 0
  let valueSeq = 0
  let opsStarted = 0
  let snapshotsInstalled = 0
  let membershipChanges = 0
  let changeInFlight = false
  const trace: string[] = []
  if (o.onEvent) {
    const push = trace.push.bind(trace)
    trace.push = (...lines: string[]) => {
      for (const l of lines) o.onEvent!(l)
      return push(...lines)
    }
  }
  const fail = (msg: string): never => {
    throw new SimFailure(
      `durable sim seed ${o.seed} failed at t=${clock.now()}ms: ${msg}\n` +
        `replay: SWARMKIT_SEED=${o.seed} npx vitest run --project raft test/sim/durable\nlast events:\n${trace.slice(-20).join('\n')}`,
    )
  }

  const leaders = new Map<number, string>()
  // Every entry seen committed on some member (compaction hides older ones from later checks): index -> entry.
  const committed = new Map<number, { term: number; data: string; seenIn: number }>()
  const appliedAt: string[] = []

  const start = async (m: Member) => {
    m.sm = new Kv()
    m.applied = []
    const sm = m.sm
    const applied = m.applied
    const node = new RaftNode({
      id: m.id,
      peers: boot,
      transport: net.transport(m.id),
      storage: m.storage,
      stateMachine: {
        apply: (cmd, index) => {
          applied.push({ index, term: 0, type: 0, data: cmd })
          return sm.apply(cmd)
        },
        snapshot: () => sm.snapshot(),
        restore: (b) => {
          snapshotsInstalled++
          sm.restore(b)
        },
      },
      electionTimeoutMs: [150, 300],
      heartbeatIntervalMs: 50,
      random: rng(Math.floor(r() * 2 ** 31)),
      snapshotThreshold: o.snapshotThreshold,
      trailingEntries: 3,
      snapshotChunkBytes: 64,
    })
    m.node = node
    o.onEvent?.(`  starting ${m.id}`)
    await node.start()
    o.onEvent?.(`  started ${m.id}`)
  }

  const crash = async (m: Member) => {
    const node = m.node
    if (!node) return
    m.node = null
    m.storage.crash()
    const t = net.transport(m.id)
    o.onEvent?.(`  stopping ${m.id}`)
    await node.stop()
    o.onEvent?.(`  stopped ${m.id}`)
    await t.close()
    o.onEvent?.(`  closed ${m.id}`)
  }

  const core = (m: Member): RaftCore | null => (m.node ? (coreOf.get(m.node)?.() ?? null) : null)

  const check = () => {
    for (const m of members) {
      const c = core(m)
      if (!c) continue
      if (c.role === 'leader') {
        const prev = leaders.get(c.term)
        if (prev !== undefined && prev !== m.id) fail(`two leaders in term ${c.term}: ${prev} and ${m.id}`)
        leaders.set(c.term, m.id)
      }
      const log = c.log
      for (let i = log.snapIndex + 1; i <= log.committed; i++) {
        const e = log.entries[i - log.snapIndex - 1]!
        const g = committed.get(i)
        const d = e.type === 0 ? dec.decode(e.data) : `conf:${dec.decode(e.data)}`
        if (g === undefined) committed.set(i, { term: e.term, data: d, seenIn: c.term })
        else if (g.term !== e.term || g.data !== d)
          fail(`${m.id} committed ${i}@${e.term} but ${i}@${g.term} was`)
      }
      if (c.role === 'leader') {
        for (const [i, g] of committed) {
          if (i <= log.snapIndex) continue
          if (g.seenIn < c.term && log.term(i) !== g.term)
            fail(`leader ${m.id} (term ${c.term}) lacks committed ${i}`)
        }
      }
    }
    const live = members.map(core).filter((c): c is RaftCore => c !== null)
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const la = live[a]!.log
        const lb = live[b]!.log
        const floor = Math.max(la.snapIndex, lb.snapIndex)
        let top = Math.min(la.lastIndex(), lb.lastIndex())
        while (top > floor && la.term(top) !== lb.term(top)) top--
        for (let i = top; i > floor; i--) {
          const ea = la.entries[i - la.snapIndex - 1]!
          const eb = lb.entries[i - lb.snapIndex - 1]!
          if (ea.term !== eb.term || dec.decode(ea.data) !== dec.decode(eb.data)) {
            fail(`log matching: ${live[a]!.id} and ${live[b]!.id} agree at ${top} but differ at ${i}`)
          }
        }
      }
    }
    for (const m of members) {
      for (const e of m.applied) {
        const d = dec.decode(e.data)
        const g = appliedAt[e.index - 1]
        if (g === undefined) appliedAt[e.index - 1] = d
        else if (g !== d) fail(`${m.id} applied "${d}" at ${e.index}, another member applied "${g}"`)
      }
      m.applied.length = 0
    }
  }

  const up = () => members.filter((m) => m.node !== null && !m.removed)
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
      () =>
        history.push({
          input: { op: 'get', key },
          output: { value: sm.data.get(key) ?? null },
          call,
          return: ++time,
        }),
      () => {},
    )
  }
  const keys = ['a', 'b', 'c']
  const clientStep = () => {
    const live = up()
    if (live.length === 0) return
    const m = pick(live)
    if (r() < 0.6) propose(m, pick(keys))
    else read(m, pick(keys))
  }

  const changeMembership = async () => {
    const leader = up().find((m) => m.node!.role === 'leader')
    if (!leader || changeInFlight) return
    const node = leader.node!
    const { voters } = node.members()
    changeInFlight = true
    const done = () => {
      changeInFlight = false
    }
    if (voters.length < 5 && r() < 0.6) {
      const m = newMember(`n${nextId++}`)
      trace.push(`${clock.now()} add ${m.id} (via ${leader.id})`)
      await start(m)
      node.addMember(m.id, { learner: false }).then(
        () => {
          membershipChanges++
          trace.push(`${clock.now()} added ${m.id}`)
          done()
        },
        (err) => {
          trace.push(`${clock.now()} add ${m.id} failed: ${(err as Error).message}`)
          done()
        },
      )
    } else if (voters.length > 3) {
      const id = pick(voters)
      trace.push(`${clock.now()} remove ${id} (via ${leader.id})`)
      node.removeMember(id).then(
        async () => {
          membershipChanges++
          trace.push(`${clock.now()} removed ${id}`)
          const gone = members.find((x) => x.id === id)!
          gone.removed = true
          await crash(gone)
          done()
        },
        (err) => {
          trace.push(`${clock.now()} remove ${id} failed: ${(err as Error).message}`)
          done()
        },
      )
    } else done()
  }

  await Promise.all(members.map(start))
  for (let step = 0; step < o.steps; step++) {
    const x = r()
    if (x < 0.45) clientStep()
    else if (x < 0.48) {
      const a = pick(members).id
      trace.push(`${clock.now()} isolate ${a}`)
      net.isolate(a)
    } else if (x < 0.53) {
      trace.push(`${clock.now()} heal`)
      net.heal()
    } else if (x < 0.55) {
      const f = {
        dropRate: r() * 0.15,
        duplicateRate: r() * 0.05,
        delayMs: [0, Math.floor(r() * 30)] as [number, number],
        reorder: r() < 0.5,
      }
      trace.push(`${clock.now()} faults ${JSON.stringify(f)}`)
      net.setFaults(f)
    } else if (x < 0.57) {
      trace.push(`${clock.now()} clear faults`)
      net.setFaults(null)
    } else if (x < 0.6) {
      const m = pick(members.filter((k) => !k.removed))
      if (m.node) {
        trace.push(`${clock.now()} crash ${m.id} (losing unsynced writes)`)
        await crash(m)
      } else {
        trace.push(`${clock.now()} restart ${m.id}`)
        await start(m)
      }
    } else if (x < 0.63 && o.membership) {
      await changeMembership()
    } else if (x < 0.66) {
      await clock.advanceAsync(100 + Math.floor(r() * 400))
    } else {
      await clock.advanceAsync(1 + Math.floor(r() * 40))
    }
    check()
  }
  // Heal and restart everyone still a member: the cluster must make progress again.
  trace.push(`${clock.now()} heal all, restart all`)
  net.heal()
  net.setFaults(null)
  for (const m of members) if (!m.node && !m.removed) await start(m)
  const before = history.filter((h) => h.input.op === 'put' && h.return !== Number.POSITIVE_INFINITY).length
  await clock.advanceAsync(1500)
  for (let step = 0; step < 40; step++) {
    clientStep()
    await clock.advanceAsync(1 + Math.floor(r() * 20))
    check()
  }
  await clock.advanceAsync(4000)
  check()
  const after = history.filter((h) => h.input.op === 'put' && h.return !== Number.POSITIVE_INFINITY).length
  if (after === before) fail('no write completed after the network healed')
  let lostWrites = 0
  for (const m of members) {
    lostWrites += m.storage.lost
    await crash(m)
  }
  const result = checkLinearizability(kvModel, history, { maxSteps: 2_000_000 })
  if (result.outcome === 'illegal')
    fail(`history is not linearizable; partition:\n${JSON.stringify(result.partition)}`)
  const completed = history.filter((h) => h.return !== Number.POSITIVE_INFINITY).length
  const digest = `${committed.size}:${[...committed].map(([i, e]) => `${i}@${e.term}/${e.data}`).join(',')}|${history.length}|${time}`
  return { digest, committed: committed.size, completed, snapshotsInstalled, membershipChanges, lostWrites }
}
