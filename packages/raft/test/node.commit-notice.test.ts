// A leader answers a committed proposal before it tells the followers the new commit index: the followers need
// it only to apply, the proposer is waiting for it (on a real network the two notices are two socket writes).
// A bare notice waits for a later append to carry the commit index instead (dropped if one does), or for the next
// tick.
import { type Connection, ManualClock, MemoryNetwork, type Transport } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode } from '../src/index.js'
import { BATCH_KIND, decodeBatch } from '../src/internal/wire.js'
import { type Message, MessageType } from '../src/types.js'
import { rng } from './helpers/cores.js'

/** `transport`, recording the raft messages its node sends (decoded from the frames it writes). */
function recording(transport: Transport, from: string, sent: Message[]): Transport {
  return new Proxy(transport, {
    get(target, key) {
      if (key !== 'dial') return Reflect.get(target, key)
      return async (address: string, options?: object) => {
        const conn: Connection = await target.dial(address, options)
        const send = conn.send.bind(conn)
        conn.send = (frame: Uint8Array) => {
          if (frame[0] === BATCH_KIND) sent.push(...decodeBatch(frame, from, address, 1 << 20))
          return send(frame)
        }
        return conn
      }
    },
  })
}

const isBareAppend = (m: Message) => m.type === MessageType.Append && m.entries.length === 0

/** Three members on a network without latency, n1 elected, everything from the election delivered. */
async function electedCluster() {
  const clock = new ManualClock()
  const net = new MemoryNetwork({ seed: 7, clock })
  const ids = ['n1', 'n2', 'n3']
  const applied = ids.map(() => [] as number[])
  const leaderSent: Message[] = []
  const nodes = ids.map(
    (id, i) =>
      new RaftNode({
        id,
        peers: ids,
        transport: i === 0 ? recording(net.transport(id), id, leaderSent) : net.transport(id),
        storage: new MemoryLogStorage(),
        stateMachine: {
          apply: (_cmd, index) => {
            applied[i]!.push(index)
          },
          snapshot: () => new Uint8Array(),
          restore: () => {},
        },
        electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
        heartbeatIntervalMs: 50,
        random: rng(i + 1),
      }),
  )
  await Promise.all(nodes.map((n) => n.start()))
  await clock.advanceAsync(400)
  const leader = nodes[0]!
  expect(leader.role).toBe('leader')
  await clock.advanceAsync(40)
  return { clock, net, nodes, applied, leader, leaderSent }
}

describe('RaftNode commit notices', () => {
  it('resolves a proposal before it sends the new commit index, and the followers still learn it', async () => {
    const { clock, net, nodes, applied, leader, leaderSent } = await electedCluster()
    const sent = () => net.stats()['n1']!.messagesSent
    const before = sent()
    const from = leaderSent.length
    let sentAtAnswer = -1
    let index = -1
    void leader.propose(new Uint8Array([1])).then((r) => {
      sentAtAnswer = sent()
      index = r.index
    })
    // Every frame is delivered at once (no latency on this network): no tick falls due meanwhile.
    await clock.advanceAsync(0)
    expect(index).toBeGreaterThan(0)
    // Only the two appends carrying the entry left before the answer.
    expect(sentAtAnswer - before).toBe(2)
    // Nothing more goes out at once: the notices wait for a later append to carry the commit index.
    await clock.advanceAsync(0)
    expect(sent() - before).toBe(2)
    // With none coming, the notices go at the next tick (a fifth of the heartbeat interval; a heartbeat may go
    // out with them), and both followers apply the entry.
    await clock.advanceAsync(10)
    expect(sent() - before).toBeGreaterThanOrEqual(4)
    expect(sent() - before).toBeLessThanOrEqual(6)
    const notices = leaderSent.slice(from).filter(isBareAppend)
    expect(notices.map((m) => [m.to, m.commit]).sort()).toEqual([
      ['n2', index],
      ['n3', index],
    ])
    expect(applied[1]).toContain(index)
    expect(applied[2]).toContain(index)
    for (const n of nodes) await n.stop()
  })

  it('sends no bare commit notice when the next append carries the commit index', async () => {
    const { clock, net, nodes, applied, leader } = await electedCluster()
    const sent = () => net.stats()['n1']!.messagesSent
    const before = sent()
    let first = -1
    let second = -1
    // The proposer writes again as soon as it is answered, as a busy client does.
    void leader.propose(new Uint8Array([1])).then((r) => {
      first = r.index
      void leader.propose(new Uint8Array([2])).then((r2) => {
        second = r2.index
      })
    })
    await clock.advanceAsync(0)
    await clock.advanceAsync(0)
    expect(second).toBeGreaterThan(first)
    // Two appends per proposal, and no bare notice for the first: the second's appends carried its commit.
    expect(sent() - before).toBe(4)
    expect(applied[1]).toContain(first)
    expect(applied[2]).toContain(first)
    // The second's commit index, with nothing after it, still reaches the followers at the next tick.
    await clock.advanceAsync(10)
    expect(sent() - before).toBeGreaterThanOrEqual(6)
    expect(applied[1]).toContain(second)
    expect(applied[2]).toContain(second)
    for (const n of nodes) await n.stop()
  })

  it('sends the commit notices of an answered proposal on stop() if that comes first', async () => {
    const { clock, nodes, applied, leader } = await electedCluster()
    let index = -1
    void leader.propose(new Uint8Array([2])).then((r) => {
      index = r.index
      // Stopped at once, before the notices went out.
      void leader.stop()
    })
    await clock.advanceAsync(0)
    await clock.advanceAsync(0)
    expect(index).toBeGreaterThan(0)
    expect(applied[1]).toContain(index)
    expect(applied[2]).toContain(index)
    for (const n of nodes) await n.stop()
  })
})
