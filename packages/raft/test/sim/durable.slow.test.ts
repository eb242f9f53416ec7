import { describe, expect, it } from 'vitest'
import { simulateDurable } from './durable-harness.js'

// Default: 200 seeds with membership changes and 200 without; SWARMKIT_SLOW=1: 5,000 each. SWARMKIT_SEED=n: one seed.
const slow = process.env['SWARMKIT_SLOW'] === '1'
const only = process.env['SWARMKIT_SEED'] ? Number(process.env['SWARMKIT_SEED']) : undefined
const seeds = only !== undefined ? [only] : Array.from({ length: slow ? 5000 : 200 }, (_, i) => i + 1)

describe('durable simulation: snapshots, membership changes, crashes that lose unsynced writes', () => {
  it(`keeps every safety invariant and a linearizable history over ${seeds.length} seeds with membership changes`, {
    timeout: 3_600_000,
  }, async () => {
    let installed = 0
    let changes = 0
    let lost = 0
    for (const seed of seeds) {
      const r = await simulateDurable({ seed, steps: 300, membership: true, snapshotThreshold: 8 })
      installed += r.snapshotsInstalled
      changes += r.membershipChanges
      lost += r.lostWrites
    }
    // The faults the simulation is about did happen.
    expect(installed).toBeGreaterThan(0)
    expect(changes).toBeGreaterThan(0)
    expect(lost).toBeGreaterThan(0)
  })

  it(`does the same over ${seeds.length} seeds with a fixed membership`, { timeout: 3_600_000 }, async () => {
    let committed = 0
    for (const seed of seeds) {
      committed += (
        await simulateDurable({ seed: seed + 100_000, steps: 300, membership: false, snapshotThreshold: 5 })
      ).committed
    }
    expect(committed).toBeGreaterThan(seeds.length)
  })

  it('replays a seed bit for bit', async () => {
    const a = await simulateDurable({ seed: 42, steps: 300, membership: true, snapshotThreshold: 8 })
    const b = await simulateDurable({ seed: 42, steps: 300, membership: true, snapshotThreshold: 8 })
    expect(a.digest).toBe(b.digest)
  })
})
