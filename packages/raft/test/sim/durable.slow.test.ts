import { describe, expect, it } from 'vitest'
import { type Injected, simulateDurable } from './durable-harness.js'

const noFaults = (): Injected => ({
  pauses: 0,
  oneWayCuts: 0,
  zombies: 0,
  asyncApply: 0,
  powerLossDisk: 0,
  skewedClocks: 0,
  fullDisks: 0,
})
const add = (sum: Injected, one: Injected) => {
  for (const k of Object.keys(sum) as (keyof Injected)[]) sum[k] += one[k]
}

// Default: 200 seeds with membership changes and 200 without; SWARMKIT_SLOW=1: 10,000 each. SWARMKIT_SEED=n: one seed.
const slow = process.env['SWARMKIT_SLOW'] === '1'
const only = process.env['SWARMKIT_SEED'] ? Number(process.env['SWARMKIT_SEED']) : undefined
const seeds = only !== undefined ? [only] : Array.from({ length: slow ? 10_000 : 200 }, (_, i) => i + 1)

// Besides partitions, drops, delays, duplicates and reordering: process pauses, clocks that drift apart, one-way
// partitions, removed members that stay up and keep sending, state machines that apply after random delays,
// snapshots larger than the transport's high-water mark (chunks run into backpressure), and crashes that lose
// unsynced saves (in memory) or lose and tear unsynced writes of FileLogStorage on a power-loss disk.
describe('durable simulation: snapshots, membership changes, crashes that lose unsynced writes', () => {
  it(`keeps every safety invariant and a linearizable history over ${seeds.length} seeds with membership changes`, {
    timeout: 3_600_000,
  }, async () => {
    let installed = 0
    let changes = 0
    let lost = 0
    const injected = noFaults()
    for (const seed of seeds) {
      const r = await simulateDurable({ seed, steps: 300, membership: true, snapshotThreshold: 8 })
      installed += r.snapshotsInstalled
      changes += r.membershipChanges
      lost += r.lostWrites
      add(injected, r.injected)
    }
    // The faults the simulation is about did happen (over many seeds; one replayed seed need not have them all).
    if (only === undefined) {
      expect(installed).toBeGreaterThan(0)
      expect(changes).toBeGreaterThan(0)
      expect(lost).toBeGreaterThan(0)
      for (const [fault, n] of Object.entries(injected)) expect(n, fault).toBeGreaterThan(0)
    }
  })

  it(`does the same over ${seeds.length} seeds with a fixed membership`, { timeout: 3_600_000 }, async () => {
    let committed = 0
    const injected = noFaults()
    for (const seed of seeds) {
      const r = await simulateDurable({
        // Its seeds are offset by 100,000; SWARMKIT_SEED may name one as reported (101787) or as 1787.
        seed: only !== undefined && only >= 100_000 ? only : seed + 100_000,
        steps: 300,
        membership: false,
        snapshotThreshold: 5,
      })
      committed += r.committed
      add(injected, r.injected)
    }
    expect(committed).toBeGreaterThan(seeds.length)
    if (only === undefined) {
      for (const [fault, n] of Object.entries(injected))
        if (fault !== 'zombies') expect(n, fault).toBeGreaterThan(0)
    }
  })

  // A finding of the slow budget: a leader that appended "remove n3", lost leadership before it committed, and
  // then saw n3 elected used to ignore n3 forever (the removal silenced n3 before it was committed) and never
  // caught up. Only a committed removal silences a member now.
  it('a member whose log ends in an uncommitted removal of the next leader still catches up', {
    timeout: 120_000,
  }, async () => {
    for (const seed of [290, 725])
      await simulateDurable({ seed, steps: 300, membership: true, snapshotThreshold: 8 })
  })

  // A finding of the slow budget: growing the single-node bootstrap, the leader promoted n2 before n2 had
  // answered once, its next CheckQuorum counted 1 of 2 voters, it stepped down, and the add failed although the
  // next leader committed the promotion; the harness then retried "add n2" forever ("already a member").
  it('grows a single-node bootstrap when the new member is slow to answer', {
    timeout: 120_000,
  }, async () => {
    await simulateDurable({ seed: 5240, steps: 300, membership: true, snapshotThreshold: 8 })
  })

  it('replays a seed bit for bit', async () => {
    const a = await simulateDurable({ seed: 42, steps: 300, membership: true, snapshotThreshold: 8 })
    const b = await simulateDurable({ seed: 42, steps: 300, membership: true, snapshotThreshold: 8 })
    expect(a.digest).toBe(b.digest)
  })
})
