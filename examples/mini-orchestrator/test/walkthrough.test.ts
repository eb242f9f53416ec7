import { describe, expect, it } from 'vitest'
import { runWalkthrough } from '../src/walkthrough.js'

describe('mini-orchestrator walkthrough', () => {
  it('spreads a service over zones, survives the leader, then scales and drains under the new one', async () => {
    const lines: string[] = []
    const report = await runWalkthrough((l) => lines.push(l), { seed: 7 })
    expect(report.secondLeader).not.toBe(report.firstLeader)
    // Spread preference: 6 replicas over two zones of two nodes each.
    expect(report.perZoneAtStart).toEqual({ east: 3, west: 3 })
    // Spread: 8 replicas over 4 nodes.
    expect(Object.values(report.perNodeAfterScale).sort()).toEqual([2, 2, 2, 2])
    // Drain worker1: nothing left on it; the zone preference keeps 4 tasks in each zone, so the east zone's
    // remaining node takes all of east's.
    expect(report.drainedNode).toBe('worker1')
    expect(report.perNodeAfterDrain).toEqual({ worker2: 4, worker3: 2, worker4: 2 })
    expect(lines.filter((l) => /^\d\. /.test(l))).toHaveLength(5)
  }, 120_000)
})
