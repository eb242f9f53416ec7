// Real-time cluster tests over MemoryNetwork, in the spirit of the classic Raft lab suites. Real timers,
// seeded faults; every wait is for a condition, never a fixed sleep.
import { describe, expect, it } from 'vitest'
import { isRaftError } from '../src/index.js'
import { rng } from './helpers/cores.js'
import { enc, LiveCluster, until } from './helpers/live.js'

describe('RaftNode cluster', () => {
  it('elects a leader initially, and keeps it (and its term) while nothing fails', async () => {
    const c = new LiveCluster(3, 1)
    await c.startAll()
    const l = await c.waitLeader()
    const term = l.node!.term
    // Watch for five election timeouts' worth of heartbeats; the term must not move.
    const hb0 = c.messagesSent()
    await until(() => c.messagesSent() > hb0 + 2 * 5 * 10, 15_000, 'heartbeats')
    expect(l.node!.role).toBe('leader')
    expect(c.members.every((m) => m.node!.term === term)).toBe(true)
    await c.stopAll()
  })

  it('elects a new leader after the leader is lost, and the old one rejoins as follower', async () => {
    const c = new LiveCluster(3, 2)
    await c.startAll()
    const seen = new Map<number, string>()
    const l1 = await c.waitLeader()
    c.net.isolate(l1.id)
    const rest = c.members.filter((m) => m !== l1)
    const l2 = await c.waitLeader(rest)
    c.checkOneLeaderPerTerm(seen)
    expect(l2.id).not.toBe(l1.id)
    c.net.heal()
    await until(
      () => l1.node!.role === 'follower' && l1.node!.leaderId !== null,
      15_000,
      'old leader to follow',
    )
    c.checkOneLeaderPerTerm(seen)
    // With two of three gone there is no leader; with one back there is.
    const l3 = await c.waitLeader()
    const others = c.members.filter((m) => m !== l3)
    c.net.isolate(others[0]!.id, others[1]!.id)
    await until(() => l3.node!.role !== 'leader', 15_000, 'a leader without quorum to step down')
    c.net.heal()
    await c.waitLeader()
    await c.stopAll()
  })

  it('runs many elections with 7 nodes, never two leaders in a term', async () => {
    const c = new LiveCluster(7, 3)
    await c.startAll()
    const seen = new Map<number, string>()
    const r = rng(3)
    for (let round = 0; round < 6; round++) {
      const down = c.members
        .slice()
        .sort(() => r() - 0.5)
        .slice(0, 3)
      c.net.heal()
      c.net.isolate(...down.map((m) => m.id))
      const up = c.members.filter((m) => !down.includes(m))
      await c.waitLeader(up)
      c.checkOneLeaderPerTerm(seen)
    }
    c.net.heal()
    await c.waitLeader()
    c.checkOneLeaderPerTerm(seen)
    await c.stopAll()
  })

  it('agrees with a failed follower, and the follower catches up when it returns', async () => {
    const c = new LiveCluster(3, 4)
    await c.startAll()
    await c.waitLeader()
    await c.commit('a')
    const l = c.leader()!
    const f = c.members.find((m) => m !== l)!
    c.net.isolate(f.id)
    for (const x of ['b', 'c', 'd']) await c.commit(x)
    await until(() => c.applied('d').count === 2, 15_000, 'the connected follower to apply d')
    c.net.heal()
    await until(() => c.applied('d').count === 3, 15_000, 'the follower to catch up')
    c.checkAgreement()
    await c.stopAll()
  })

  it('commits nothing without a majority', async () => {
    const c = new LiveCluster(5, 5)
    await c.startAll()
    const l = await c.waitLeader()
    await c.commit('before')
    const others = c.members.filter((m) => m !== l)
    c.net.isolate(...others.slice(0, 3).map((m) => m.id))
    const commit = l.node!.commitIndex
    const err = await l.node!.propose(enc('minority')).catch((e) => e)
    // The leader steps down (CheckQuorum) and the outcome is reported as unknown, not as success.
    expect(isRaftError(err, 'LOST_LEADERSHIP')).toBe(true)
    expect(l.node!.commitIndex).toBe(commit)
    expect(c.applied('minority').count).toBe(0)
    c.net.heal()
    await c.commit('after')
    c.checkAgreement()
    await c.stopAll()
  })

  it('discards a partitioned leader’s uncommitted entries when it rejoins', async () => {
    const c = new LiveCluster(3, 6)
    await c.startAll()
    const l1 = await c.waitLeader()
    await c.commit('x')
    c.net.isolate(l1.id)
    const lost = l1.node!.propose(enc('lost')).catch((e) => e)
    const rest = c.members.filter((m) => m !== l1)
    await c.waitLeader(rest)
    await c.commit('y')
    const err = await lost
    expect(isRaftError(err)).toBe(true)
    c.net.heal()
    await c.commit('z')
    await until(() => c.applied('z').count === 3, 15_000, 'everyone to apply z')
    expect(c.applied('lost').count).toBe(0)
    c.checkAgreement()
    await c.stopAll()
  })

  it('backs up quickly over 50 conflicting entries', async () => {
    const c = new LiveCluster(5, 7)
    await c.startAll()
    const l1 = await c.waitLeader()
    await c.commit('base')
    // The leader and one follower are cut off with 50 uncommitted entries.
    const f1 = c.members.find((m) => m !== l1)!
    const rest = c.members.filter((m) => m !== l1 && m !== f1)
    c.net.partition(
      [l1.id, f1.id],
      rest.map((m) => m.id),
    )
    const doomed = Array.from({ length: 50 }, (_, i) =>
      l1.node!.propose(enc(`doomed${i}`)).catch(() => 'failed'),
    )
    // The other three commit 50 of their own.
    await c.waitLeader(rest)
    const ok = Array.from({ length: 50 }, (_, i) => c.commit(`ok${i}`))
    await Promise.all(ok)
    await Promise.all(doomed)
    c.net.heal()
    await until(() => c.applied('ok49').count === 5, 15_000, 'everyone to apply ok49')
    expect(c.members.every((m) => !m.applied.some((a) => a.cmd.startsWith('doomed')))).toBe(true)
    c.checkAgreement()
    await c.stopAll()
  })

  it('elects a leader in at most 30 messages, and an idle leader sends one heartbeat per follower per interval', async () => {
    const c = new LiveCluster(3, 8, { electionTimeoutMs: [150, 300], heartbeatIntervalMs: 50 })
    await c.startAll()
    const l = await c.waitLeader()
    const n = c.messagesSent()
    expect(n).toBeLessThanOrEqual(30)
    const before = c.net.stats()[l.id]!.messagesSent
    const t0 = performance.now()
    await until(() => performance.now() - t0 > 1000, 5000, 'one second')
    const elapsed = performance.now() - t0
    const sent = c.net.stats()[l.id]!.messagesSent - before
    // Two followers, one frame each per 50 ms interval (plus one interval of slack).
    expect(sent).toBeLessThanOrEqual(2 * (Math.floor(elapsed / 50) + 1))
    expect(sent).toBeGreaterThan(0)
    await c.stopAll()
  })

  it('comes back from a full restart with its log, term and votes', async () => {
    const c = new LiveCluster(3, 9)
    await c.startAll()
    await c.waitLeader()
    for (let i = 0; i < 10; i++) await c.commit(`p${i}`)
    const terms = c.members.map((m) => m.node!.term)
    await c.stopAll()
    await c.startAll()
    for (const [i, m] of c.members.entries()) expect(m.node!.term).toBeGreaterThanOrEqual(terms[i]!)
    await c.waitLeader()
    await c.commit('after-restart')
    await until(() => c.applied('after-restart').count === 3, 15_000, 'replay and apply')
    for (const m of c.members)
      expect(m.applied.slice(0, 10).map((a) => a.cmd)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`))
    c.checkAgreement()
    await c.stopAll()
  })

  it('stays safe through Figure 8 conditions on an unreliable network (leader crashes, drops, reordering)', async () => {
    const c = new LiveCluster(5, 10)
    const r = rng(10)
    await c.startAll()
    const seen = new Map<number, string>()
    c.net.setFaults({ dropRate: 0.1, duplicateRate: 0.05, delayMs: [0, 15], reorder: true })
    const pending: Promise<unknown>[] = []
    for (let round = 0; round < 12; round++) {
      const l = c.leader()
      if (l?.node) pending.push(l.node.propose(enc(`f8-${round}`)).catch(() => {}))
      await new Promise((res) => setTimeout(res, 20 + Math.floor(r() * 80)))
      if (l && r() < 0.5) await c.crash(l)
      const down = c.members.filter((m) => !m.node)
      if (down.length >= 2) await c.start(down[Math.floor(r() * down.length)]!)
      c.checkOneLeaderPerTerm(seen)
    }
    c.net.setFaults(null)
    for (const m of c.members) if (!m.node) await c.start(m)
    await Promise.all(pending)
    await c.commit('final')
    await until(() => c.applied('final').count === 5, 20_000, 'everyone to apply final')
    c.checkAgreement()
    await c.stopAll()
  })

  it('survives churn: members crash and restart while clients write', async () => {
    const c = new LiveCluster(5, 11)
    const r = rng(11)
    await c.startAll()
    let stop = false
    let done = 0
    const clients = Array.from({ length: 3 }, async (_, k) => {
      for (let i = 0; !stop; i++) {
        const m = c.members[Math.floor(r() * 5)]!
        if (m.node)
          await m.node.propose(enc(`c${k}-${i}`)).then(
            () => done++,
            () => {},
          )
        else await new Promise((res) => setTimeout(res, 5))
      }
    })
    for (let round = 0; round < 8; round++) {
      const m = c.members[Math.floor(r() * 5)]!
      if (m.node && c.members.filter((x) => x.node).length > 3) await c.crash(m)
      else if (!m.node) await c.start(m)
      await new Promise((res) => setTimeout(res, 50 + Math.floor(r() * 100)))
    }
    for (const m of c.members) if (!m.node) await c.start(m)
    await c.commit('end')
    stop = true
    await Promise.all(clients)
    await until(() => c.applied('end').count === 5, 20_000, 'everyone to apply end')
    expect(done).toBeGreaterThan(0)
    c.checkAgreement()
    await c.stopAll()
  })
})
