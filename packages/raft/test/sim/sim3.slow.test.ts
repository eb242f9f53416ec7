import { describe, expect, it } from 'vitest'
import { simulate } from './harness.js'

// Default: 250 seeds here and 250 in sim5 (500 in all); SWARMKIT_SLOW=1: 10,000 each. SWARMKIT_SEED=n: that seed.
const slow = process.env.SWARMKIT_SLOW === '1'
const only = process.env.SWARMKIT_SEED ? Number(process.env.SWARMKIT_SEED) : undefined
const seeds = only !== undefined ? [only] : Array.from({ length: slow ? 10_000 : 250 }, (_, i) => i + 1)

describe('simulation, 3 nodes', () => {
  it(`keeps every safety invariant and a linearizable history over ${seeds.length} seeds`, {
    timeout: 3_600_000,
  }, async () => {
    let committed = 0
    let pauses = 0
    let cuts = 0
    for (const seed of seeds) {
      const r = await simulate({ seed, nodes: 3, steps: 300 })
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
    const a = await simulate({ seed: 77, nodes: 3, steps: 300 })
    const b = await simulate({ seed: 77, nodes: 3, steps: 300 })
    expect(a.digest).toBe(b.digest)
    expect(a.completed).toBeGreaterThan(10)
  })

  // A finding of the async state machine fault: RaftNode used to send a Ready's votes and append
  // acknowledgements only after it had applied that Ready's committed entries, so a state machine taking
  // 100-500 ms an entry held back every acknowledgement of its node, and no write completed. Applying now runs
  // in its own pipeline beside the node's raft duties.
  it('keeps completing writes when the state machine applies slowly (100-500 ms an entry)', {
    timeout: 600_000,
  }, async () => {
    for (const seed of [1, 2, 3]) {
      const r = await simulate({ seed, nodes: 3, steps: 300, applyDelayMs: [100, 500] })
      expect(r.completed).toBeGreaterThan(20)
    }
  })
})
