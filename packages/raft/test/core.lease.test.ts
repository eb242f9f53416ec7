// Lease reads rest on one promise: a voter that acknowledged the leader's heartbeat votes for no one else for
// an election timeout. A restart must not break it (the pattern of tikv#15035).
import { describe, expect, it } from 'vitest'
import { Cluster } from './helpers/cores.js'

const three = ['a', 'b', 'c']
/** Fixed election timeouts of 10 ticks, heartbeats every tick, lease reads on. */
const lease = () => ({ leaseRead: true, electionTick: 10, electionTickMax: 10 })

describe('RaftCore lease reads across a restart', () => {
  it('serves no stale lease read when a follower that acknowledged the leader restarts and votes', () => {
    const c = new Cluster(three, lease)
    c.campaign('a')
    c.propose('a', 'x')
    const a = c.get('a')
    // c is cut off from a; a and b go on exchanging heartbeats until c is about to time out.
    c.dropped.add('a>c')
    c.dropped.add('c>a')
    for (let i = 0; i < 9; i++) {
      for (const id of three) c.tick(id)
      c.deliverAll()
    }
    // b acknowledged a's last heartbeat and restarts. c times out and asks b for its vote at once.
    c.restart('b', three)
    c.tick('c')
    c.deliverAll()
    const cc = c.get('c')
    let written = -1
    if (cc.role === 'leader') written = c.propose('c', 'y').index
    const wrote = written > 0 && cc.committed >= written
    // a is still inside its lease and answers a read.
    a.readIndex(7)
    c.deliverAll()
    const answer = c.readStates.get('a')!.find((r) => r.context === 7)
    if (wrote) expect(answer?.index ?? -1).toBe(-1)
    // The restarted b keeps a's lease: it refuses c for an election timeout after its start.
    expect(wrote).toBe(false)
    expect(answer?.index).toBe(a.committed)
  })

  it('a restarted voter grants votes again once an election timeout has passed', () => {
    const c = new Cluster(three, () => ({ leaseRead: true }))
    c.campaign('a')
    c.propose('a', 'x')
    // a is lost; b restarts; c campaigns: b refuses for one election timeout, then votes.
    c.isolate('a')
    c.restart('b', three)
    c.campaign('c')
    expect(c.get('c').role).not.toBe('leader')
    for (let i = 0; i < 40 && c.get('c').role !== 'leader' && c.get('b').role !== 'leader'; i++) {
      c.tick('b')
      c.tick('c')
      c.deliverAll()
    }
    expect([c.get('b').role, c.get('c').role]).toContain('leader')
  })
})
