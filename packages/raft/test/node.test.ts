import { MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { isRaftError, MemoryLogStorage, RaftNode } from '../src/index.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

function kv() {
  const data = new Map<string, string>()
  return {
    data,
    apply(cmd: Uint8Array) {
      const [k, v] = dec(cmd).split('=')
      data.set(k!, v!)
      return v
    },
    snapshot: () => enc(JSON.stringify([...data])),
    restore(s: Uint8Array) {
      data.clear()
      for (const [k, v] of JSON.parse(dec(s))) data.set(k, v)
    },
  }
}

async function until(cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

function cluster(n: number, net = new MemoryNetwork({ seed: 1 })) {
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`)
  const storages = ids.map(() => new MemoryLogStorage())
  const sms = ids.map(() => kv())
  const make = (i: number) =>
    new RaftNode({
      id: ids[i]!,
      peers: ids,
      transport: net.transport(ids[i]!),
      storage: storages[i]!,
      stateMachine: sms[i]!,
      electionTimeoutMs: [50, 100],
      heartbeatIntervalMs: 10,
    })
  const nodes = ids.map((_, i) => make(i))
  return { ids, nodes, storages, sms, make, net }
}

describe('RaftNode', () => {
  it('elects a leader, commits proposals from every node, and applies them everywhere', async () => {
    const c = cluster(3)
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const results = await Promise.all(c.nodes.map((n, i) => n.propose(enc(`k${i}=v${i}`))))
    for (const r of results) expect(r.result).toMatch(/^v\d$/)
    await until(() => c.sms.every((s) => s.data.size === 3))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    expect(c.nodes.every((n) => n.leaderId === leader.id)).toBe(true)
    await Promise.all(c.nodes.map((n) => n.stop()))
  })

  it('reads linearizably on followers: readIndex covers every completed write', async () => {
    const c = cluster(3)
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    for (let i = 0; i < 20; i++) {
      const { index } = await leader.propose(enc(`x=${i}`))
      const f = c.nodes.find((n) => n !== leader)!
      const ri = await f.readIndex()
      expect(ri).toBeGreaterThanOrEqual(index)
      expect(c.sms[c.nodes.indexOf(f)]!.data.get('x')).toBe(`${i}`)
    }
    await Promise.all(c.nodes.map((n) => n.stop()))
  })

  it('restarts from MemoryLogStorage with its term, vote and log, and replays the state machine', async () => {
    const c = cluster(3)
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    for (let i = 0; i < 10; i++) await leader.propose(enc(`k=${i}`))
    const i = c.nodes.findIndex((n) => n !== leader)
    await until(() => c.sms[i]!.data.get('k') === '9')
    const term = c.nodes[i]!.term
    await c.nodes[i]!.stop()
    c.sms[i] = kv()
    const again = c.make(i)
    await again.start()
    expect(again.term).toBe(term)
    await until(() => c.sms[i]!.data.get('k') === '9')
    c.nodes[i] = again
    await Promise.all(c.nodes.map((n) => n.stop()))
  })

  it('transfers leadership to a chosen follower', async () => {
    const c = cluster(3)
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    const target = c.nodes.find((n) => n !== leader)!
    const changes: (string | null)[] = []
    leader.on('leader:change', (id) => changes.push(id))
    await leader.transferLeadership(target.id)
    expect(leader.leaderId).toBe(target.id)
    expect(changes).toContain(target.id)
    await until(() => target.role === 'leader')
    await expect(leader.transferLeadership()).rejects.toMatchObject({ code: 'NOT_LEADER' })
    await Promise.all(c.nodes.map((n) => n.stop()))
  })

  it('rejects with TOO_LARGE, STOPPED and NO_LEADER', async () => {
    const c = cluster(3)
    const n = c.nodes[0]!
    await n.start()
    await expect(n.propose(new Uint8Array(2 << 20))).rejects.toMatchObject({ code: 'TOO_LARGE' })
    const lonely = new RaftNode({
      id: 'z1',
      peers: ['z1', 'z2', 'z3'],
      transport: c.net.transport('z1'),
      storage: new MemoryLogStorage(),
      stateMachine: kv(),
      electionTimeoutMs: [50, 100],
      heartbeatIntervalMs: 10,
      leaderWaitMs: 200,
    })
    await lonely.start()
    const err = await lonely.propose(enc('a=1')).catch((e) => e)
    expect(isRaftError(err, 'NO_LEADER')).toBe(true)
    const r = lonely.readIndex()
    await lonely.stop()
    await expect(r).rejects.toMatchObject({ code: 'STOPPED' })
    await expect(lonely.propose(enc('a=1'))).rejects.toMatchObject({ code: 'STOPPED' })
    await n.stop()
  })

  it('validates its options', () => {
    const base = {
      id: 'a',
      peers: ['a'],
      transport: new MemoryNetwork({ seed: 1 }).transport('a'),
      storage: new MemoryLogStorage(),
      stateMachine: kv(),
    }
    expect(() => new RaftNode({ ...base, id: '' })).toThrow(TypeError)
    expect(() => new RaftNode({ ...base, peers: [] })).toThrow(TypeError)
    expect(() => new RaftNode({ ...base, electionTimeoutMs: [300, 100] })).toThrow(RangeError)
    expect(() => new RaftNode({ ...base, heartbeatIntervalMs: 500 })).toThrow(RangeError)
  })

  it('runs a single-member cluster', async () => {
    const n = new RaftNode({
      id: 'solo',
      peers: ['solo'],
      transport: new MemoryNetwork({ seed: 1 }).transport('solo'),
      storage: new MemoryLogStorage(),
      stateMachine: kv(),
      electionTimeoutMs: [20, 40],
      heartbeatIntervalMs: 5,
    })
    await n.start()
    await until(() => n.role === 'leader')
    const r = await n.propose(enc('a=1'))
    expect(r).toMatchObject({ index: 2, term: 1, result: '1' })
    expect(await n.readIndex()).toBe(2)
    await n.stop()
  })
})
