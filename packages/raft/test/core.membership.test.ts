// Membership in the pure core: the configuration in effect is that of the last Config entry in the log.
import { describe, expect, it } from 'vitest'
import { encodeConf } from '../src/internal/conf.js'
import { EntryType } from '../src/storage.js'
import { Cluster, ent, msg, newCore, T } from './helpers/cores.js'

const five = ['a', 'b', 'c', 'd', 'e']

describe('RaftCore configuration from the log', () => {
  it('takes a configuration when its entry is appended, and reverts it when the entry is truncated', () => {
    const c = new Cluster(five)
    c.campaign('a')
    // a removes e; only b receives the entry, and a never hears back, so it stays uncommitted.
    c.filter = (m) => !(m.from === 'a' && m.to !== 'b') && !(m.from === 'b' && m.to === 'a')
    const r = c.get('a').proposeConfChange({ voters: ['a', 'b', 'c', 'd'], learners: [], removed: ['e'] })
    expect(r.index).toBe(2)
    c.deliverAll()
    const b = c.get('b')
    expect(b.lastIndex).toBe(2)
    expect(b.committed).toBe(1)
    expect(b.voters).toEqual(['a', 'b', 'c', 'd'])
    expect(b.removed.has('e')).toBe(true)
    // a and b are cut off; one of c, d, e wins with the other two and overwrites index 2 on b.
    c.heal()
    c.isolate('a')
    c.isolate('b')
    const newLeader = () => ['c', 'd', 'e'].map((id) => c.get(id)).find((k) => k.role === 'leader')
    for (let i = 0; i < 30 && !newLeader(); i++) {
      for (const id of ['c', 'd', 'e']) c.tick(id)
      c.deliverAll()
    }
    const next = newLeader()!
    c.heal()
    c.isolate('a')
    c.tick(next.id, 1)
    c.deliverAll()
    expect(b.log.term(2)).toBe(next.term)
    expect(b.voters).toEqual(five)
    expect(b.removed.size).toBe(0)
  })

  it('restarts with the last Config entry in its log, applied or not', () => {
    const conf = encodeConf({ voters: ['a', 'b', 'c'], learners: ['d'] })
    const core = newCore('a', ['a'], {
      state: {
        hardState: { term: 1, vote: 'a', commit: 3 },
        snapshot: null,
        entries: [ent(1, 1), ent(2, 1, 'x'), { index: 3, term: 1, type: EntryType.Config, data: conf }],
      },
      applied: 0,
    })
    expect(core.voters).toEqual(['a', 'b', 'c'])
    expect(core.learners).toEqual(['d'])
    // Alone it cannot win: its own vote is one of three.
    for (let i = 0; i < 100; i++) core.tick()
    expect(core.role).not.toBe('leader')
  })

  // Durable simulation seed 6729 (slow budget): n6, demoted to a learner and then removed while the leader it
  // had forwarded proposals to crashed, heard from no one again and kept that leader forever (a learner never
  // campaigns), so its proposals never settled. A learner that hears nothing for an election timeout forgets
  // its leader, as a voter does when it campaigns; the node then settles what it was waiting for as unknown.
  it('a learner that hears nothing from its leader for an election timeout forgets it', () => {
    const conf = encodeConf({ voters: ['a', 'b', 'c'], learners: ['d'] })
    const d = newCore('d', ['a'], {
      state: {
        hardState: { term: 1, vote: '', commit: 2 },
        snapshot: null,
        entries: [ent(1, 1), { index: 2, term: 1, type: EntryType.Config, data: conf }],
      },
      applied: 0,
    })
    expect(d.role).toBe('learner')
    d.step(msg({ type: T.Heartbeat, from: 'a', to: 'd', term: 1, commit: 2 }))
    expect(d.leader).toBe('a')
    // Heartbeats keep it.
    for (let i = 0; i < 100; i++) {
      d.tick()
      if (i % 3 === 0) d.step(msg({ type: T.Heartbeat, from: 'a', to: 'd', term: 1, commit: 2 }))
    }
    expect(d.leader).toBe('a')
    for (let i = 0; i < 100; i++) d.tick()
    expect(d.leader).toBe(null)
    expect(d.role).toBe('learner')
  })

  it('records in a snapshot the configuration as of the snapshot index, not a later one', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.propose('a', 'x')
    const a = c.get('a')
    a.proposeConfChange({ voters: ['a', 'b', 'c'], learners: ['d'] })
    expect(a.confAt(2)).toEqual({ voters: ['a', 'b', 'c'], learners: [], removed: [] })
    expect(a.confAt(3)).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'], removed: [] })
  })
})

describe('RaftCore catching up a new member', () => {
  it('catches up a member added to an idle cluster from heartbeat answers, without waiting for a proposal', () => {
    const c = new Cluster(['a', 'b'])
    c.campaign('a')
    c.propose('a', 'x')
    c.deliverAll()
    const a = c.get('a')
    // d is not running yet when the leader adds it: the first appends to it are lost.
    c.add('d', ['a', 'b'])
    c.isolate('d')
    a.proposeConfChange({ voters: ['a', 'b'], learners: ['d'] })
    c.deliverAll()
    expect(a.committed).toBe(a.lastIndex)
    // It starts; from now on nothing is proposed, only heartbeats go out.
    c.heal()
    for (let i = 0; i < 100 && c.get('d').lastIndex < a.lastIndex; i++) {
      c.tick('a')
      c.deliverAll()
    }
    expect(c.get('d').lastIndex).toBe(a.lastIndex)
    expect(c.get('d').learners).toEqual(['d'])
  })
})

describe('RaftCore membership safety rules', () => {
  it('ignores every message from a removed member, even at a higher term', () => {
    const c = new Cluster(['a', 'b', 'c', 'd'])
    c.campaign('a')
    const a = c.get('a')
    a.proposeConfChange({ voters: ['a', 'b', 'c'], learners: [], removed: ['d'] })
    c.deliverAll()
    expect(a.committed).toBe(a.lastIndex)
    expect(a.voters).toEqual(['a', 'b', 'c'])
    // d received the entry that removes it: it knows, and will not campaign.
    expect(c.get('d').voters).toEqual(['a', 'b', 'c'])
    expect(c.get('d').removed.has('d')).toBe(true)
    // d never learned of its removal (say it was partitioned) and keeps talking: as a leader of a later term,
    // as a candidate, asking for reads and sending proposals.
    const term = a.term
    c.trace.length = 0
    for (const to of ['a', 'b', 'c']) {
      const core = c.get(to)
      core.step(msg({ type: T.Append, from: 'd', to, term: term + 5, index: a.lastIndex, logTerm: term }))
      core.step(msg({ type: T.Heartbeat, from: 'd', to, term: term + 5, commit: 99 }))
      core.step(msg({ type: T.Vote, from: 'd', to, term: term + 6, index: 99, logTerm: 99, context: 1 }))
      core.step(msg({ type: T.ReadIndex, from: 'd', to, term, context: 5 }))
      core.step(msg({ type: T.Propose, from: 'd', to, term, context: 6, entries: [ent(0, 0, 'x')] }))
    }
    c.deliverAll()
    expect(a.role).toBe('leader')
    for (const id of ['a', 'b', 'c']) {
      expect(c.get(id).term).toBe(term)
      expect(c.get(id).leader).toBe('a')
    }
    expect(c.trace.filter((t) => t.includes('->d'))).toEqual([])
    expect(c.appliedText('a')).not.toContain('x')
  })

  it('refuses a membership change until the new leader has committed its no-op', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ preVote: false, checkQuorum: false }))
    c.campaign('a')
    c.propose('a', 'x')
    // b is elected, but hears nothing back for its no-op yet.
    c.isolate('a')
    for (let i = 0; i < 100 && c.get('b').role === 'follower'; i++) c.tick('b')
    c.filter = (m) => m.type !== T.AppendResp
    c.deliverAll()
    const b = c.get('b')
    expect(b.role).toBe('leader')
    expect(b.committedInTerm()).toBe(false)
    const change = { voters: ['a', 'b', 'c'], learners: ['d'] }
    expect(b.proposeConfChange(change).index).toBe(-1)
    // Once the no-op is committed (and applied), the change goes in.
    c.filter = null
    c.tick('b')
    c.deliverAll()
    expect(b.committedInTerm()).toBe(true)
    expect(b.proposeConfChange(change).index).toBe(b.lastIndex)
    // And a second change waits for the first to be applied.
    expect(b.proposeConfChange({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] }).index).toBe(-1)
  })
})

describe('RaftCore removals that do not commit', () => {
  it('follows a new leader that an uncommitted entry in its log removes, and drops the entry', () => {
    const c = new Cluster(five, () => ({ preVote: false, checkQuorum: false }))
    c.campaign('a')
    // a removes c; only b receives the entry, which stays uncommitted.
    c.filter = (m) => !(m.from === 'a' && m.to !== 'b') && !(m.from === 'b' && m.to === 'a')
    c.get('a').proposeConfChange({ voters: ['a', 'b', 'd', 'e'], learners: [], removed: ['c'] })
    c.deliverAll()
    const b = c.get('b')
    expect(b.removed.has('c')).toBe(true)
    // c is elected with d and e while a and b are cut off; then b hears from c.
    c.heal()
    c.isolate('a')
    c.isolate('b')
    c.campaign('c')
    const leader = c.get('c')
    expect(leader.role).toBe('leader')
    c.heal()
    c.isolate('a')
    c.tick(leader.id)
    c.deliverAll()
    expect(b.leader).toBe(leader.id)
    expect(b.log.term(2)).toBe(leader.term)
    expect(b.voters).toEqual(five)
    expect(b.removed.size).toBe(0)
    expect(b.committed).toBe(leader.committed)
  })
})
