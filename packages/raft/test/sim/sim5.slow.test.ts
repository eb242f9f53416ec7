import { describe, expect, it } from 'vitest'
import { simulate } from './harness.js'

// Default: 250 seeds here and 250 in sim3 (500 in all); SWARMKIT_SLOW=1: 10,000 each. SWARMKIT_SEED=n: that seed.
const slow = process.env.SWARMKIT_SLOW === '1'
const only = process.env.SWARMKIT_SEED ? Number(process.env.SWARMKIT_SEED) : undefined
const seeds = only !== undefined ? [only] : Array.from({ length: slow ? 10_000 : 250 }, (_, i) => i + 1)

describe('simulation, 5 nodes', () => {
  it(`keeps every safety invariant and a linearizable history over ${seeds.length} seeds`, {
    timeout: 3_600_000,
  }, async () => {
    let committed = 0
    let pauses = 0
    let cuts = 0
    for (const seed of seeds) {
      const r = await simulate({ seed, nodes: 5, steps: 300 })
      committed += r.committed
      pauses += r.pauses
      cuts += r.oneWayCuts
    }
    expect(committed).toBeGreaterThan(seeds.length)
    if (only === undefined) {
      expect(pauses).toBeGreaterThan(0)
      expect(cuts).toBeGreaterThan(0)
    }
  })

  it('replays a seed bit for bit', async () => {
    const a = await simulate({ seed: 78, nodes: 5, steps: 300 })
    const b = await simulate({ seed: 78, nodes: 5, steps: 300 })
    expect(a.digest).toBe(b.digest)
    expect(a.completed).toBeGreaterThan(10)
  })
})
