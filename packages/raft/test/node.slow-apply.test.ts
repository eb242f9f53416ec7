// Applying runs beside the node's raft duties: a member whose state machine is slow keeps acknowledging appends
// and heartbeats and keeps voting, while what waits for its state machine (its own proposals, its linearizable
// reads) waits. Its apply backlog is bounded.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type RaftNodeOptions } from '../src/index.js'
import { coreOf } from '../src/internal/inspect.js'
import { rng } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

interface Member {
  readonly id: string
  readonly node: RaftNode
  /** Commands this member's state machine applied, in order. */
  readonly applied: string[]
}

/** Three members over one ManualClock; n3's state machine takes `slowMs` per command. */
async function cluster(slowMs: number, more: Partial<RaftNodeOptions> = {}) {
  const clock = new ManualClock()
  const net = new MemoryNetwork({ seed: 9, clock })
  const ids = ['n1', 'n2', 'n3']
  const members: Member[] = []
  for (const id of ids) {
    const applied: string[] = []
    const node = new RaftNode({
      id,
      peers: ids,
      transport: net.transport(id),
      storage: new MemoryLogStorage(),
      stateMachine: {
        apply: (cmd) => {
          if (id !== 'n3') {
            applied.push(dec(cmd))
            return undefined
          }
          return new Promise((resolve) =>
            clock.setTimeout(() => {
              applied.push(dec(cmd))
              resolve(undefined)
            }, slowMs),
          )
        },
        snapshot: () => new Uint8Array(0),
        restore: () => {},
      },
      electionTimeoutMs: [150, 300],
      heartbeatIntervalMs: 50,
      // n1 times out first and leads.
      random: rng(id === 'n1' ? 1 : 1000 + id.charCodeAt(1)),
      ...(id === 'n1' ? { electionTimeoutMs: [150, 160] as const } : {}),
      ...more,
    })
    await node.start()
    members.push({ id, node, applied })
  }
  const advanceUntil = async (cond: () => boolean, what: string, ms = 120_000) => {
    for (let t = 0; !cond(); t += 10) {
      if (t > ms) throw new Error(`timed out waiting for ${what}`)
      await clock.advanceAsync(10)
    }
  }
  const settle = async <T>(p: Promise<T>, what: string): Promise<T> => {
    let done = false
    const q = p.finally(() => {
      done = true
    })
    q.catch(() => {})
    await advanceUntil(() => done, what)
    return q
  }
  const [m1, m2, m3] = members as [Member, Member, Member]
  await advanceUntil(() => m1.node.role === 'leader', 'n1 to lead')
  // Stopping waits for the command being applied (its timer needs the clock to move).
  const stop = () => settle(Promise.all(members.map((m) => m.node.stop())), 'the members to stop')
  return { clock, net, m1, m2, m3, advanceUntil, settle, stop }
}

describe('RaftNode with a slow state machine', () => {
  it('keeps acknowledging appends, so the leader commits with it while the other follower is down', async () => {
    const { net, m1, m3, settle, stop } = await cluster(2_000)
    const roles: string[] = []
    m1.node.on('role:change', (r) => roles.push(r))
    // n2 is cut off: every commit needs n3, which applies a command every 2 s.
    net.isolate('n2')
    const term = m1.node.term
    const results = []
    for (let i = 0; i < 10; i++) results.push(await settle(m1.node.propose(enc(`k${i}`)), `write ${i}`))
    // Ten commits took far less than n3's 20 s of applying: its acknowledgements did not wait for it.
    expect(m3.applied.length).toBeLessThan(10)
    expect(m1.node.term).toBe(term)
    expect(roles).toEqual([])
    expect(results.map((r) => r.index)).toEqual([...results.map((r) => r.index)].sort((a, b) => a - b))
    await stop()
  })

  it('votes while it applies, so a new leader is elected with it', async () => {
    const { net, m1, m2, m3, advanceUntil, settle, stop } = await cluster(5_000)
    for (let i = 0; i < 5; i++) await settle(m1.node.propose(enc(`k${i}`)), `write ${i}`)
    // n3 has 25 s of applying ahead of it; the leader goes away and n2 needs n3's vote.
    net.isolate('n1')
    await advanceUntil(() => m2.node.role === 'leader' || m3.node.role === 'leader', 'a new leader', 5_000)
    expect(m3.applied.length).toBeLessThan(5)
    await stop()
  })

  it('answers a linearizable read only once its state machine applied the writes before it', async () => {
    const { m1, m3, settle, stop } = await cluster(1_000)
    for (let i = 0; i < 4; i++) await settle(m1.node.propose(enc(`k${i}`)), `write ${i}`)
    const index = await settle(m3.node.readIndex(), 'a read on n3')
    expect(m3.node.appliedIndex).toBeGreaterThanOrEqual(index)
    expect(m3.applied).toEqual(['k0', 'k1', 'k2', 'k3'])
    await stop()
  })

  it('bounds the entries waiting for the state machine (maxApplyBacklogBytes)', async () => {
    const { m1, m3, clock, settle, stop } = await cluster(500, { maxApplyBacklogBytes: 100 })
    const core = coreOf.get(m3.node)!()!
    let most = 0
    const writes = []
    // 60 commands of 10 bytes: n3 may hold about 10 of them (100 bytes) and one more, never all.
    for (let i = 0; i < 60; i++) writes.push(m1.node.propose(enc(`key-${String(i).padStart(5, '0')}`)))
    for (const w of writes) {
      await settle(w, 'a write')
      most = Math.max(most, core.log.applying - m3.node.appliedIndex)
    }
    for (let t = 0; t < 40_000; t += 10) {
      await clock.advanceAsync(10)
      most = Math.max(most, core.log.applying - m3.node.appliedIndex)
    }
    expect(most).toBeGreaterThan(1)
    // 100 bytes of 10-byte commands, one more taken while there is room, and the leader's empty no-op.
    expect(most).toBeLessThanOrEqual(12)
    expect(m3.applied.length).toBe(60)
    await stop()
  })
})
