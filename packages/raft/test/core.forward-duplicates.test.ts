// A forwarded proposal delivered twice (a network that duplicates frames). Found by the 5-node simulation at
// its slow budget (sim5 seed 4870): the leader appended the first copy, refused the second during a leadership
// transfer, and the follower, reading the refusal first, told its client PROPOSAL_DROPPED ("not committed")
// for a put that committed and was read.
import { describe, expect, it } from 'vitest'
import type { Message } from '../src/types.js'
import { Cluster, T } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)

describe('RaftCore: a forwarded proposal delivered twice', () => {
  it('answers the duplicate with where the first copy landed, not with a refusal, and appends it once', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const b = c.get('b')
    const answers: unknown[] = []
    const orig = b.ready.bind(b)
    b.ready = (...args) => {
      const r = orig(...args)
      answers.push(...r.forwards)
      return r
    }
    b.propose([enc('x')], 7)
    c.flush()
    const forward = c.queue.find((m: Message) => m.type === T.Propose)!
    c.deliverAll()
    expect(answers).toEqual([{ context: 7, index: 2, term: 1, reason: 0 }])
    // The duplicate arrives while a transfers leadership (new proposals are refused then).
    const a = c.get('a')
    a.transferLeadership('c')
    a.step({ ...forward })
    c.deliverAll()
    expect(answers).toEqual([
      { context: 7, index: 2, term: 1, reason: 0 },
      { context: 7, index: 2, term: 1, reason: 0 },
    ])
    expect(c.appliedText('a').filter((t) => t === 'x')).toEqual(['x'])
  })

  it('refuses a duplicate of a refused forward, even once the transfer that refused it is over', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const b = c.get('b')
    const answers: unknown[] = []
    const orig = b.ready.bind(b)
    b.ready = (...args) => {
      const r = orig(...args)
      answers.push(...r.forwards)
      return r
    }
    const a = c.get('a')
    // The transfer's TimeoutNow is lost: a stays leader, and the transfer ends after an election timeout.
    c.filter = (m) => m.type !== T.TimeoutNow
    a.transferLeadership('c')
    b.propose([enc('z')], 5)
    c.flush()
    const forward = c.queue.find((m: Message) => m.type === T.Propose)!
    c.deliverAll()
    expect(answers).toEqual([{ context: 5, index: -1, term: 1, reason: 2 }])
    for (let i = 0; i < 30; i++) {
      a.tick()
      c.deliverAll()
    }
    expect(a.role).toBe('leader')
    a.step({ ...forward })
    c.deliverAll()
    expect(answers.slice(1)).toEqual([{ context: 5, index: -1, term: 1, reason: 2 }])
    expect(c.appliedText('a')).not.toContain('z')
  })

  it('appends a duplicate arriving at a leader once', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.get('b').propose([enc('y')], 9)
    c.flush()
    const forward = c.queue.find((m: Message) => m.type === T.Propose)!
    c.get('a').step({ ...forward })
    c.deliverAll()
    expect(c.appliedText('a').filter((t) => t === 'y')).toEqual(['y'])
  })
})
