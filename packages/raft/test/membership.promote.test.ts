// Growing a one-member cluster (as `swarm init` then `swarm join` do): the learner is promoted only once it has
// answered the leader. Promoted before its first answer, it counts as a voter the leader has not heard from, and
// the leader's next CheckQuorum (1 of 2 voters active) makes it step down: the add fails although the
// promotion later commits (found by the durable simulation, seed 5240).
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode } from '../src/index.js'
import { rng } from './helpers/cores.js'

describe('RaftNode promotion of a new member', () => {
  it('keeps its leader when the joining member is slow to answer', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 5, clock })
    const start = async (id: string) => {
      const node = new RaftNode({
        id,
        peers: ['n1'],
        transport: net.transport(id),
        storage: new MemoryLogStorage(),
        stateMachine: { apply: () => undefined, snapshot: () => new Uint8Array(0), restore: () => {} },
        electionTimeoutMs: [150, 300],
        heartbeatIntervalMs: 50,
        random: rng(id.charCodeAt(1)),
      })
      await node.start()
      return node
    }
    const n1 = await start('n1')
    for (let t = 0; n1.role !== 'leader'; t += 10) {
      if (t > 5_000) throw new Error('n1 did not lead alone')
      await clock.advanceAsync(10)
    }
    const n2 = await start('n2')
    const roles: string[] = []
    n1.on('role:change', (r) => roles.push(r))
    // Whatever n1 sends n2 arrives 400 ms late (more than an election timeout): n2's first answer comes after
    // the leader's next quorum check.
    net.setLinkFaults('n1', 'n2', { delayMs: 400 })
    let outcome: string | null = null
    n1.addMember('n2', { learner: false }).then(
      () => {
        outcome = 'added'
      },
      (err: Error) => {
        outcome = `failed: ${err.message}`
      },
    )
    for (let t = 0; outcome === null && t < 10_000; t += 10) await clock.advanceAsync(10)
    expect(outcome).toBe('added')
    expect(roles).toEqual([])
    expect(n1.members().voters.sort()).toEqual(['n1', 'n2'])
    await n1.stop()
    await n2.stop()
  })
})
