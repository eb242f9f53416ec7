// CheckQuorum's window (checkQuorumTick) and the reasons a leader reports when it stops leading.
import { describe, expect, it } from 'vitest'
import { Cluster, msg, newCore, T } from './helpers/cores.js'

/** a leads b and c (election timeout 10 ticks); c is gone (since before a's election). */
function twoLeft(checkQuorumTick?: number) {
  const c = new Cluster(['a', 'b', 'c'], () => (checkQuorumTick ? { checkQuorumTick } : {}))
  c.dropped.add('down:c')
  c.campaign('a')
  expect(c.get('a').role).toBe('leader')
  return c
}

/** b stalls for `ticks` of a's ticks (hears and answers nothing), then catches up; a ticks throughout. */
function stallB(c: Cluster, ticks: number): void {
  c.isolate('b')
  for (let i = 0; i < ticks; i++) {
    c.tick('a')
    c.deliverAll()
  }
  c.heal()
  c.dropped.add('down:c')
  for (let i = 0; i < 3; i++) {
    c.tick('a')
    c.deliverAll()
  }
}

describe('CheckQuorum window', () => {
  it('by default one voter silent for more than two election timeouts deposes the leader of a two-member quorum', () => {
    const c = twoLeft()
    stallB(c, 25)
    expect(c.get('a').role).toBe('follower')
  })

  it('a longer window keeps the leader through the same silence, and still deposes it after two windows', () => {
    const c = twoLeft(30)
    const a = c.get('a')
    stallB(c, 25)
    expect(a.role).toBe('leader')
    expect(a.term).toBe(1)
    // Cut off for good: it steps down within two windows (60 ticks), not before one (30).
    c.isolate('a')
    let ticks = 0
    while (a.role === 'leader' && ticks < 100) {
      a.tick()
      c.deliverAll()
      ticks++
    }
    expect(a.role).toBe('follower')
    expect(ticks).toBeGreaterThanOrEqual(30)
    expect(ticks).toBeLessThanOrEqual(60)
  })

  it('refuses a window that is not a whole number of ticks above 0', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => newCore('a', ['a', 'b', 'c'], { checkQuorumTick: bad })).toThrow(RangeError)
  })

  it('a window shorter than the election timeout is taken as the election timeout', () => {
    const c = twoLeft(3)
    stallB(c, 8)
    expect(c.get('a').role).toBe('leader')
  })
})

describe('step-down reasons', () => {
  it('CheckQuorum: names the voters not heard within the window and how long ago each last answered', () => {
    const c = twoLeft(30)
    const a = c.get('a')
    a.tick()
    c.deliverAll()
    c.isolate('a')
    let ticks = 0
    while (a.role === 'leader') {
      a.tick()
      ticks++
    }
    c.flush()
    const s = a.takeStepDown()
    expect(s).toEqual({
      reason: 'check-quorum',
      term: 1,
      windowTicks: 30,
      unheard: [
        { id: 'b', sinceTicks: ticks },
        { id: 'c', sinceTicks: null },
      ],
    })
    // Taken once.
    expect(a.takeStepDown()).toBeNull()
  })

  it('a higher term: from whom and in which message', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const a = c.get('a')
    a.step(msg({ type: T.AppendResp, from: 'c', to: 'a', term: 4, reject: true }))
    expect(a.role).toBe('follower')
    expect(a.takeStepDown()).toEqual({
      reason: 'higher-term',
      term: 1,
      from: 'c',
      newTerm: 4,
      message: T.AppendResp,
    })
  })

  it('a leadership transfer: the target whose vote request ended it', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const a = c.get('a')
    expect(a.transferLeadership('b')).toBe('b')
    c.deliverAll()
    expect(c.get('b').role).toBe('leader')
    expect(a.takeStepDown()).toEqual({ reason: 'transfer', term: 1, from: 'b', newTerm: 2, message: T.Vote })
  })

  it('a removal: the leader removed itself', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const a = c.get('a')
    expect(a.proposeConfChange({ voters: ['b', 'c'], learners: [], removed: ['a'] }).index).toBe(2)
    c.deliverAll()
    expect(a.role).toBe('follower')
    expect(a.takeStepDown()).toEqual({ reason: 'removed', term: 1 })
  })

  it('a follower that never led reports nothing', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const b = c.get('b')
    b.step(msg({ type: T.Append, from: 'c', to: 'b', term: 3 }))
    expect(b.takeStepDown()).toBeNull()
  })
})
