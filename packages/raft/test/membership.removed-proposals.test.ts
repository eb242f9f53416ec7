// A member removed from the cluster while its own proposal is in flight: once its log holds its removal, the
// leader stops replicating to it after the removal commits, so it may never learn whether the proposal
// committed. The proposal must settle (as unknown), not wait forever (found by the durable simulation, seed
// 725, with the check that every client operation settles).
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode } from '../src/index.js'
import { coreOf } from '../src/internal/inspect.js'
import { rng } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)

describe('RaftNode removed while proposing', () => {
  it('settles the proposal of a member that learns of its removal but not of the commit', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 4, clock })
    const ids = ['n1', 'n2', 'n3', 'n4']
    const nodes = new Map<string, RaftNode>()
    for (const id of ids) {
      const node = new RaftNode({
        id,
        peers: ids,
        transport: net.transport(id),
        storage: new MemoryLogStorage(),
        stateMachine: { apply: () => undefined, snapshot: () => new Uint8Array(0), restore: () => {} },
        electionTimeoutMs: id === 'n1' ? [150, 160] : [400, 450],
        random: rng(id.charCodeAt(1)),
      })
      await node.start()
      nodes.set(id, node)
    }
    const n1 = nodes.get('n1')!
    const n4 = nodes.get('n4')!
    const until = async (cond: () => boolean, what: string) => {
      for (let t = 0; !cond(); t += 5) {
        if (t > 10_000) throw new Error(`timed out waiting for ${what}`)
        await clock.advanceAsync(5)
      }
    }
    await until(() => n1.role === 'leader' && n4.leaderId === 'n1' && n1.commitIndex > 0, 'n1 to lead')
    // n2 and n3 cannot hear n1 for now: nothing new commits.
    net.setLinkFaults('n1', 'n2', { dropRate: 1 })
    net.setLinkFaults('n1', 'n3', { dropRate: 1 })
    const core4 = coreOf.get(n4)!()!
    const before = core4.lastIndex
    let outcome = 'pending'
    n4.propose(enc('x')).then(
      () => {
        outcome = 'committed'
      },
      (e: { code?: string }) => {
        outcome = e.code ?? 'rejected'
      },
    )
    await until(() => core4.lastIndex > before, 'the proposal in n4’s log')
    const removal = n1.removeMember('n4')
    removal.catch(() => {})
    await until(() => core4.removed.has('n4'), 'n4 to append its removal')
    // Settled as soon as n4 knows of its removal, well before an election timeout of silence (400 ms) would make
    // it forget its leader and settle the proposal that way.
    await clock.advanceAsync(50)
    expect(outcome).toBe('LOST_LEADERSHIP')
    // n4 hears nothing more; n2 and n3 are back, and the proposal and the removal commit without n4.
    net.isolate('n4')
    net.setLinkFaults('n1', 'n2', null)
    net.setLinkFaults('n1', 'n3', null)
    await until(() => n1.members().voters.length === 3 && n1.commitIndex >= core4.lastIndex, 'the removal')
    await clock.advanceAsync(2_000)
    expect(outcome).toBe('LOST_LEADERSHIP')
    for (const node of nodes.values()) await node.stop()
  })
})
