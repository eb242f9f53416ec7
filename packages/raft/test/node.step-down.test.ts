// RaftNode reports why it stopped leading (the third argument of leader:change), in milliseconds, and checks
// checkQuorumMs.
import { MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type StepDownInfo } from '../src/index.js'

const sm = () => ({ apply: () => undefined, snapshot: () => new Uint8Array(0), restore: () => {} })

async function until(cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

function three(extra: { checkQuorumMs?: number } = {}) {
  const net = new MemoryNetwork({ seed: 7 })
  const ids = ['n1', 'n2', 'n3']
  return ids.map(
    (id) =>
      new RaftNode({
        id,
        peers: ids,
        transport: net.transport(id),
        storage: new MemoryLogStorage(),
        stateMachine: sm(),
        electionTimeoutMs: [50, 100],
        heartbeatIntervalMs: 10,
        ...extra,
      }),
  )
}

describe('RaftNode step-down reports', () => {
  it('a leader whose followers stop says it lost the quorum, naming them, in ms', async () => {
    const nodes = three({ checkQuorumMs: 80 })
    await Promise.all(nodes.map((n) => n.start()))
    await until(() => nodes.some((n) => n.role === 'leader'))
    const leader = nodes.find((n) => n.role === 'leader')!
    const infos: StepDownInfo[] = []
    leader.on('leader:change', (_id, _term, s) => {
      if (s) infos.push(s)
    })
    const term = leader.term
    const followers = nodes.filter((n) => n !== leader)
    await Promise.all(followers.map((n) => n.stop()))
    await until(() => infos.length > 0)
    const s = infos[0]!
    expect(s).toMatchObject({ reason: 'check-quorum', term, windowMs: 80 })
    expect(s.unheard!.map((u) => u.id).sort()).toEqual(followers.map((n) => n.id).sort())
    // A follower stopped before its first answer arrived was not heard once in this leadership (null).
    for (const u of s.unheard!) if (u.ms !== null) expect(u.ms).toBeGreaterThanOrEqual(80)
    expect(s.text).toMatch(
      /^check quorum: no answer within 80 ms from n\d \((last \d+ ms ago|not once this term)\), n\d \(/,
    )
    await leader.stop()
  })

  it('a leader that hands over its leadership says to whom', async () => {
    const nodes = three()
    await Promise.all(nodes.map((n) => n.start()))
    await until(() => nodes.some((n) => n.role === 'leader'))
    const leader = nodes.find((n) => n.role === 'leader')!
    const target = nodes.find((n) => n !== leader)!
    const infos: StepDownInfo[] = []
    leader.on('leader:change', (_id, _term, s) => {
      if (s) infos.push(s)
    })
    const term = leader.term
    await leader.transferLeadership(target.id)
    expect(infos).toEqual([
      {
        reason: 'transfer',
        term,
        from: target.id,
        newTerm: term + 1,
        message: 'Vote',
        text: `leadership transferred to ${target.id} (its Vote of term ${term + 1})`,
      },
    ])
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('checks checkQuorumMs: positive, and not below the election timeout', () => {
    expect(() => three({ checkQuorumMs: 0 })).toThrow(/checkQuorumMs must be a positive number/)
    expect(() => three({ checkQuorumMs: 49 })).toThrow(/checkQuorumMs must be at least the election timeout/)
    expect(() => three({ checkQuorumMs: 50 })).not.toThrow()
  })
})
