// Deterministic simulation of the durable side of a RaftNode cluster over MemoryNetwork and a ManualClock:
// snapshots and compaction every few entries (followers catch up through chunked snapshot transfers),
// membership changes (3 voters grow to 5 through learners and shrink back, the leader itself may be removed),
// and crashes that lose every write not yet synced. One seed decides everything; a failing seed replays bit for
// bit. After every step: election safety, agreement of committed entries, leader completeness, log matching
// and state machine safety; at the end the client history must be linearizable.
import { type Clock, MemoryNetwork } from '@swarmkit/transport'
import type { RaftCore } from '../../src/core.js'
import { FileLogStorage, MemoryLogStorage, RaftNode } from '../../src/index.js'
import { coreOf } from '../../src/internal/inspect.js'
import type { Entry, LogStorage, PersistedState, Snapshot, StorageUpdate } from '../../src/storage.js'
import { type PowerLossFileSystem, powerLossFileSystem } from '../../src/testing/index.js'
import { rng } from '../helpers/cores.js'
import { type FullDiskFileSystem, fullDiskFileSystem } from '../helpers/full-disk-fs.js'
import { DelayedApply, type NodeClock, pauseNode, resumeNode, seedShape, skewedClock } from './faults.js'
import { Kv, KvWorkload, SafetyChecker, SimFailure, WatchedClock, watchdog } from './shared.js'

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
    private readonly clock: Clock,
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
  readonly clock: NodeClock
  /** Saves lost at crashes (LossyStorage), or the disk that loses them (FileLogStorage on a power-loss disk). */
  readonly storage: LossyStorage | null
  disk: PowerLossFileSystem | null
  /** That disk as the node's file system sees it: it runs out of space while the simulation says so. */
  full: FullDiskFileSystem | null
  /** Members on a power-loss disk: writes lost or torn at power cuts so far. */
  diskLost: number
  node: RaftNode | null
  sm: Kv
  applied: Entry[]
  removed: boolean
  applier: DelayedApply<unknown> | null
  /** While the node starts, its disk answers at once (nothing advances the simulation's clock meanwhile). */
  opening: boolean
}

export interface DurableSimOptions {
  readonly seed: number
  readonly steps: number
  /** Grow and shrink the membership. */
  readonly membership: boolean
  /** Snapshot this often (applied entries). */
  readonly snapshotThreshold: number
  /**
   * `'lossy'`: storage in memory that loses unsynced saves at a crash; `'file'`: FileLogStorage on a disk that
   * loses or tears unsynced writes at a power cut. Default: drawn per seed.
   */
  readonly storage?: 'lossy' | 'file'
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
  /** How often each fault was injected. */
  readonly injected: Injected
}

export interface Injected {
  pauses: number
  oneWayCuts: number
  /** Removed members that stayed up and kept sending. */
  zombies: number
  /** 1 when the seed applied entries after random delays. */
  asyncApply: number
  /** 1 when the seed ran FileLogStorage on a disk that loses unsynced writes. */
  powerLossDisk: number
  /** 1 when the nodes' clocks drifted apart. */
  skewedClocks: number
  /** Disks that filled (ENOSPC) while their node ran. */
  fullDisks: number
}

/** Runs one seed under its watchdog; throws SimFailure (with the seed in the message) on any violation. */
export function simulateDurable(o: DurableSimOptions): Promise<DurableSimResult> {
  return watchdog(`durable sim seed ${o.seed}`, (signal) => run(o, signal))
}

async function run(o: DurableSimOptions, signal: AbortSignal): Promise<DurableSimResult> {
  const r = rng(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  // Full disks come from a stream of their own, so that the other faults of a seed are drawn as before.
  const rd = rng(o.seed ^ 0x2545f491)
  const clock = new WatchedClock(signal)
  const shape = seedShape(r)
  const onDisk = (o.storage ?? (r() < 0.3 ? 'file' : 'lossy')) === 'file'
  const net = new MemoryNetwork({ seed: o.seed, clock, highWaterMarkBytes: shape.highWaterMarkBytes })
  // Half the seeds with membership changes bootstrap as `swarm init` does: n1 alone, then n2 and n3 added.
  const single = o.membership && r() < 0.5
  const boot = single ? ['n1'] : ['n1', 'n2', 'n3']
  // Some of those without snapshots: the configuration is then only in the log.
  const snapshotThreshold = single && r() < 0.5 ? 0 : o.snapshotThreshold
  let nextId = 4
  const members: Member[] = []
  const newMember = (id: string): Member => {
    const nodeClock = skewedClock(clock, r, shape.drift)
    const diskSeed = Math.floor(r() * 2 ** 31)
    const m: Member = {
      id,
      clock: nodeClock,
      storage: onDisk ? null : new LossyStorage(nodeClock, () => 1 + Math.floor(r() * 4)),
      disk: onDisk
        ? powerLossFileSystem({
            seed: diskSeed,
            // A write or sync takes 1-4 ms of the node's time; a crash before then loses or tears it.
            latency: () =>
              m.opening
                ? Promise.resolve()
                : new Promise((resolve) => nodeClock.setTimeout(resolve, 1 + (diskSeed % 4))),
          })
        : null,
      full: null,
      diskLost: 0,
      opening: false,
      applier: null,
      node: null,
      sm: new Kv(),
      applied: [],
      removed: false,
    }
    members.push(m)
    return m
  }
  for (const id of ['n1', 'n2', 'n3']) newMember(id)

  const injected: Injected = {
    pauses: 0,
    oneWayCuts: 0,
    zombies: 0,
    asyncApply: shape.maxApplyDelayMs > 0 ? 1 : 0,
    powerLossDisk: onDisk ? 1 : 0,
    skewedClocks: shape.drift > 0 ? 1 : 0,
    fullDisks: 0,
  }
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
        `replay: SWARMKIT_SEED=${o.seed} npx vitest run --project raft test/sim/durable -t "${o.membership ? 'membership changes' : 'fixed membership'}"\nlast events:\n${trace.slice(-20).join('\n')}`,
    )
  }

  const clients = new KvWorkload((line) => trace.push(`${clock.now()} ${line}`))
  const safety = new SafetyChecker(fail)

  const start = async (m: Member) => {
    m.sm = new Kv(shape.snapshotPadding)
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
    )
    m.applier = applier
    m.opening = true
    // A node restarts with space on its disk (it cannot lock or recover its directory on a full one).
    if (m.disk) m.full = fullDiskFileSystem(m.disk)
    const storage: LogStorage =
      m.storage ?? (await FileLogStorage.open(`/raft/${m.id}`, { fileSystem: m.full!, segmentBytes: 8192 }))
    const node = new RaftNode({
      id: m.id,
      peers: boot,
      transport: net.transport(m.id),
      clock: m.clock,
      storage,
      stateMachine: {
        apply: applier.fn,
        snapshot: () => sm.snapshot(),
        restore: (b) => {
          snapshotsInstalled++
          sm.restore(b)
        },
      },
      electionTimeoutMs: [150, 300],
      heartbeatIntervalMs: 50,
      random: rng(Math.floor(r() * 2 ** 31)),
      snapshotThreshold,
      trailingEntries: 3,
      snapshotChunkBytes: shape.snapshotChunkBytes,
    })
    m.node = node
    o.onEvent?.(`  starting ${m.id}`)
    await node.start()
    m.opening = false
    o.onEvent?.(`  started ${m.id}`)
  }

  const crash = async (m: Member) => {
    const node = m.node
    if (!node) return
    m.node = null
    resumeNode(net, m.id, m.clock)
    m.applier?.crash()
    if (m.storage) m.storage.crash()
    else {
      m.disk = m.disk!.powerCut()
      m.diskLost += m.disk.lastCut.dropped + m.disk.lastCut.torn
    }
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
    // A paused process takes no requests (they would wait for it): clients go to the others.
    const live = up().filter((m) => !m.clock.paused)
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
          if (r() < 0.5) {
            // It does not learn it was removed, or does not care: it stays up and keeps sending.
            trace.push(`${clock.now()} ${id} stays alive after its removal`)
            injected.zombies++
          } else await crash(gone)
          done()
        },
        (err) => {
          trace.push(`${clock.now()} remove ${id} failed: ${(err as Error).message}`)
          done()
        },
      )
    } else done()
  }

  const oneWay: [string, string][] = []
  const heal = () => {
    net.heal()
    for (const [a, b] of oneWay.splice(0)) net.setLinkFaults(a, b, null)
  }
  if (single) {
    await start(members[0]!)
    for (const m of members.slice(1)) {
      await start(m)
      let added = false
      let tries = 0
      while (!added && tries++ < 50) {
        const leader = up().find((k) => k.node!.role === 'leader')?.node
        if (leader) {
          // An attempt that failed may still have gone through (a promotion committed by the next leader),
          // or stopped half-way (a learner): go by the leader's configuration, as an operator would.
          const { voters, learners } = leader.members()
          const attempt = voters.includes(m.id)
            ? Promise.resolve()
            : learners.includes(m.id)
              ? leader.promote(m.id)
              : leader.addMember(m.id, { learner: false })
          attempt.then(
            () => {
              added = true
            },
            (err: Error) => trace.push(`${clock.now()} bootstrap: adding ${m.id} failed: ${err.message}`),
          )
        }
        for (let t = 0; !added && t < 20; t++) await clock.advanceAsync(50)
      }
      if (!added) fail(`could not add ${m.id} to the single-node bootstrap`)
      trace.push(`${clock.now()} bootstrap: added ${m.id}`)
    }
  } else await Promise.all(members.map(start))
  const fillOrFree = () => {
    const m = members[Math.floor(rd() * members.length)]!
    if (!m.full || !m.node) return
    if (m.full.room === Number.POSITIVE_INFINITY) {
      m.full.room = Math.floor(rd() * 4000)
      trace.push(`${clock.now()} the disk of ${m.id} fills (${m.full.room} bytes left)`)
      injected.fullDisks++
    } else {
      m.full.room = Number.POSITIVE_INFINITY
      trace.push(`${clock.now()} space returns on ${m.id}`)
    }
  }
  for (let step = 0; step < o.steps; step++) {
    if (onDisk && rd() < 0.03) fillOrFree()
    const x = r()
    if (x < 0.43) clientStep()
    else if (x < 0.46) {
      const a = pick(members).id
      trace.push(`${clock.now()} isolate ${a}`)
      net.isolate(a)
    } else if (x < 0.48) {
      // One-way: frames from a to b are lost, b to a still arrive (connections stay up).
      const a = pick(members).id
      const b = pick(members).id
      if (a !== b) {
        trace.push(`${clock.now()} cut ${a} -> ${b}`)
        net.setLinkFaults(a, b, { dropRate: 1 })
        oneWay.push([a, b])
        injected.oneWayCuts++
      }
    } else if (x < 0.53) {
      trace.push(`${clock.now()} heal`)
      heal()
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
    } else if (x < 0.645) {
      // A process pause (GC, SIGSTOP, a stalled VM) of up to 3 s: longer than an election timeout.
      const m = pick(members)
      if (m.node && !m.clock.paused) {
        pauseNode(net, clock, m.id, m.clock, 50 + Math.floor(r() * 3000), (l) =>
          trace.push(`${clock.now()} ${l}`),
        )
        injected.pauses++
      }
    } else if (x < 0.67) {
      await clock.advanceAsync(100 + Math.floor(r() * 400))
    } else {
      await clock.advanceAsync(1 + Math.floor(r() * 40))
    }
    check()
  }
  // Heal and restart everyone still a member: the cluster must make progress again.
  trace.push(`${clock.now()} heal all, restart all, space on every disk`)
  heal()
  for (const m of members) if (m.full) m.full.room = Number.POSITIVE_INFINITY
  net.setFaults(null)
  for (const m of members) if (m.node) resumeNode(net, m.id, m.clock)
  for (const m of members) if (!m.node && !m.removed) await start(m)
  const before = clients.completedPuts()
  await clock.advanceAsync(1500)
  for (let step = 0; step < 40; step++) {
    clientStep()
    await clock.advanceAsync(1 + Math.floor(r() * 20))
    check()
  }
  // Every operation started by now settles (resolves, or rejects with why) once the cluster caught up.
  const startedBeforeCatchUp = clients.started
  await clock.advanceAsync(4000)
  // Slow state machines (up to 0.5 s an entry) may still be working through a backlog.
  for (let waited = 0; clients.completedPuts() === before && waited < 60_000; waited += 500) {
    await clock.advanceAsync(500)
  }
  check(true)
  const after = clients.completedPuts()
  if (after === before) fail('no write completed after the network healed')
  // Every member catches up with what the cluster committed (through appends or snapshot transfers).
  const lagging = () => {
    // Members as the cluster has them (a removal reported as failed may still have committed).
    let leader: RaftNode | null = null
    for (const m of up())
      if (m.node!.role === 'leader' && (!leader || m.node!.term > leader.term)) leader = m.node
    if (!leader) return ['no leader']
    const { voters, learners } = leader.members()
    const live = up().filter((m) => voters.includes(m.id) || learners.includes(m.id))
    const top = Math.max(0, ...live.map((m) => m.node!.commitIndex))
    return live
      .filter((m) => m.node!.appliedIndex < top)
      .map(
        (m) =>
          `${m.id} at ${m.node!.appliedIndex} of ${top} (${m.node!.role}, term ${m.node!.term}, ` +
          `commit ${m.node!.commitIndex}, leader ${m.node!.leaderId}; the leader is ${leader!.id} in term ` +
          `${leader!.term}, voters ${voters.join(',')}, learners ${learners.join(',') || 'none'})`,
      )
  }
  for (let waited = 0; lagging().length > 0 && waited < 60_000; waited += 500) await clock.advanceAsync(500)
  if (lagging().length > 0) fail(`members did not catch up after the network healed: ${lagging().join(', ')}`)
  check(true)
  const hung = clients.unsettled(startedBeforeCatchUp)
  if (hung.length > 0) fail(`operations never settled: ${hung.slice(0, 10).join(', ')}`)
  let lostWrites = 0
  for (const m of members) {
    await crash(m)
    lostWrites += m.storage ? m.storage.lost : m.diskLost
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
    injected,
  }
}
