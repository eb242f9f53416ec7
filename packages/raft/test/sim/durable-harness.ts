// Deterministic simulation of the durable side of a RaftNode cluster over MemoryNetwork and a ManualClock:
// snapshots and compaction every few entries (followers catch up through chunked snapshot transfers),
// membership changes (3 voters grow to 5 through learners and shrink back, the leader itself may be removed),
// and crashes that lose every write not yet synced. One seed decides everything; a failing seed replays bit for
// bit. After every step: election safety, agreement of committed entries, leader completeness, log matching
// and state machine safety; at the end the client history must be linearizable.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import type { RaftCore } from '../../src/core.js'
import { MemoryLogStorage, RaftNode } from '../../src/index.js'
import { coreOf } from '../../src/internal/inspect.js'
import type { Entry, LogStorage, PersistedState, Snapshot, StorageUpdate } from '../../src/storage.js'
import { rng } from '../helpers/cores.js'
import { Kv, KvWorkload, SafetyChecker, SimFailure } from './shared.js'

export { SimFailure }

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

  const clients = new KvWorkload((line) => trace.push(`${clock.now()} ${line}`))
  const safety = new SafetyChecker(fail)

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

  const check = (full = false) =>
    safety.check(
      members.map((m) => ({ id: m.id, core: core(m), applied: m.applied })),
      full,
    )

  const up = () => members.filter((m) => m.node !== null && !m.removed)
  const keys = ['a', 'b', 'c']
  const clientStep = () => {
    const live = up()
    if (live.length === 0) return
    const m = pick(live)
    if (r() < 0.6) clients.put(m.id, m.node!, pick(keys))
    else clients.get(m.node!, m.sm, pick(keys))
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
  const before = clients.completedPuts()
  await clock.advanceAsync(1500)
  for (let step = 0; step < 40; step++) {
    clientStep()
    await clock.advanceAsync(1 + Math.floor(r() * 20))
    check()
  }
  await clock.advanceAsync(4000)
  check(true)
  const after = clients.completedPuts()
  if (after === before) fail('no write completed after the network healed')
  let lostWrites = 0
  for (const m of members) {
    lostWrites += m.storage.lost
    await crash(m)
  }
  clients.checkLinearizable(fail)
  const digest = `${safety.digest()}|${clients.history.length}|${clients.time}`
  return {
    digest,
    committed: safety.committed.size,
    completed: clients.completed(),
    snapshotsInstalled,
    membershipChanges,
    lostWrites,
  }
}
