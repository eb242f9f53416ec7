// The nemesis: a seeded schedule of faults on the manager processes, each healed before the next. Its own
// delays (how long a process stays down or paused) come from the seed, so a failing run replays; everything
// else waits for conditions (a leader, an acknowledged write).
import type { Load } from './load.js'
import { rng } from './load.js'
import { type ChaosCluster, type ManagerProcess, until } from './managers.js'

export type Fault = 'kill-leader' | 'pause-leader' | 'kill-two' | 'kill-follower' | 'partition-leader'

export interface FaultRecord {
  fault: Fault
  targets: string[]
  /** How long the nemesis held the fault (its own schedule). */
  heldMs: number
  /** From the fault to the next acknowledged write. */
  recoveryMs: number
}

export interface NemesisOptions {
  readonly seed: number
  readonly steps: number
  readonly faults: readonly Fault[]
  /** Isolates a manager from the others and heals it (partitions need namespaces). */
  readonly partition?: { cut: (m: ManagerProcess) => void; heal: (m: ManagerProcess) => void }
  readonly log?: (line: string) => void
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs the schedule against `cluster` under `load`; returns what it did. */
export async function runNemesis(
  cluster: ChaosCluster,
  load: Load,
  o: NemesisOptions,
): Promise<FaultRecord[]> {
  const random = rng(o.seed ^ 0x5eed)
  const log = o.log ?? (() => {})
  // Every kind of fault once (in a seeded order), then seeded picks.
  const order = [...o.faults].sort(() => random() - 0.5)
  while (order.length < o.steps) order.push(o.faults[Math.floor(random() * o.faults.length)]!)
  const records: FaultRecord[] = []
  for (const fault of order.slice(0, o.steps)) {
    const leader = await cluster.waitLeader(120_000)
    // A write acknowledged before the fault, so that recovery is measured from a working cluster.
    const before = Date.now()
    await until(
      'a write before the fault',
      () => load.firstAckAfter(before),
      120_000,
      () => cluster.explain(),
    )
    const heldMs = Math.round(500 + random() * 2500)
    const at = Date.now()
    let targets: ManagerProcess[] = []
    switch (fault) {
      case 'kill-leader':
        targets = [leader]
        await leader.kill()
        await wait(heldMs)
        await leader.start()
        break
      case 'kill-follower': {
        const others = cluster.managers.filter((m) => m !== leader && m.running)
        targets = [others[Math.floor(random() * others.length)]!]
        await targets[0]!.kill()
        await wait(heldMs)
        await targets[0]!.start()
        break
      }
      case 'kill-two': {
        const others = cluster.managers.filter((m) => m !== leader && m.running)
        targets = [leader, others[Math.floor(random() * others.length)]!]
        await Promise.all(targets.map((m) => m.kill()))
        await wait(heldMs)
        for (const m of targets) await m.start()
        break
      }
      case 'pause-leader':
        targets = [leader]
        leader.pause()
        await wait(heldMs)
        leader.resume()
        break
      case 'partition-leader':
        if (!o.partition) throw new Error('partition-leader needs namespaces')
        targets = [leader]
        o.partition.cut(leader)
        await wait(heldMs)
        o.partition.heal(leader)
        break
    }
    const next = await until(
      `a write acknowledged after ${fault} of ${targets.map((m) => m.name).join(', ')}`,
      () => load.firstAckAfter(at),
      180_000,
      () => cluster.explain(),
    )
    const record = { fault, targets: targets.map((m) => m.name), heldMs, recoveryMs: next - at }
    records.push(record)
    log(
      `nemesis: ${fault} ${record.targets.join(',')} held ${heldMs} ms; next acknowledged write after ${record.recoveryMs} ms`,
    )
    // Heal fully before the next fault: every manager back and listed as reachable.
    await cluster.waitConverged(`all managers back after ${fault}`, 180_000)
  }
  return records
}
