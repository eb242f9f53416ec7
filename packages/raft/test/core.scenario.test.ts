// Scripted message schedules with exact expected traces, in the manner of etcd's interaction tests: every
// message the cores exchange is listed in delivery order, so a change in behaviour shows up as a diff.
import { describe, expect, it } from 'vitest'
import { Cluster, ent, msg, T } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)

describe('scenarios', () => {
  it('elects a leader with a pre-vote round, then commits its no-op', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    expect(c.trace).toMatchInlineSnapshot(`
      [
        "a->b PreVote t1 last0/0",
        "a->c PreVote t1 last0/0",
        "b->a PreVoteResp t1 grant",
        "c->a PreVoteResp t1 grant",
        "a->b Vote t1 last0/0",
        "a->c Vote t1 last0/0",
        "b->a VoteResp t1 grant",
        "c->a VoteResp t1 grant",
        "a->b Append t1 i0/0 c0 [1/1]",
        "a->c Append t1 i0/0 c0 [1/1]",
        "b->a AppendResp t1 i1",
        "c->a AppendResp t1 i1",
        "a->b Append t1 i1/1 c1 []",
        "a->c Append t1 i1/1 c1 []",
        "b->a AppendResp t1 i1",
        "c->a AppendResp t1 i1",
      ]
    `)
    expect(['a', 'b', 'c'].map((id) => [c.get(id).role, c.get(id).term, c.get(id).committed])).toEqual([
      ['leader', 1, 1],
      ['follower', 1, 1],
      ['follower', 1, 1],
    ])
  })

  it('replicates a proposal, commits it, and tells followers the commit index', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.trace.length = 0
    c.propose('a', 'x')
    expect(c.trace).toMatchInlineSnapshot(`
      [
        "a->b Append t1 i1/1 c1 [2/1]",
        "a->c Append t1 i1/1 c1 [2/1]",
        "b->a AppendResp t1 i2",
        "c->a AppendResp t1 i2",
        "a->b Append t1 i2/1 c2 []",
        "a->c Append t1 i2/1 c2 []",
        "b->a AppendResp t1 i2",
        "c->a AppendResp t1 i2",
      ]
    `)
  })

  it('forwards a follower proposal to the leader and reports where it landed', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.trace.length = 0
    expect(c.get('b').propose([enc('f')], 42)).toEqual({ index: 0, term: 1, reason: 0 })
    c.flush()
    const rd = c.queue.slice()
    expect(rd.map((m) => m.type)).toEqual([T.Propose])
    // Capture the forward result of b.
    const results: unknown[] = []
    const b = c.get('b')
    const orig = b.ready.bind(b)
    b.ready = () => {
      const r = orig()
      results.push(...r.forwards)
      return r
    }
    c.deliverAll()
    expect(results).toEqual([{ context: 42, index: 2, term: 1, reason: 0 }])
    expect(c.appliedText('b')).toEqual(['f'])
    expect(c.trace).toMatchInlineSnapshot(`
      [
        "b->a Propose t1",
        "a->b Append t1 i1/1 c1 [2/1]",
        "a->c Append t1 i1/1 c1 [2/1]",
        "a->b ProposeResp t1",
        "b->a AppendResp t1 i2",
        "c->a AppendResp t1 i2",
        "a->b Append t1 i2/1 c2 []",
        "a->c Append t1 i2/1 c2 []",
        "b->a AppendResp t1 i2",
        "c->a AppendResp t1 i2",
      ]
    `)
  })

  it('backs up over many conflicting entries in one round trip (fast backtracking by term)', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ checkQuorum: false }))
    c.campaign('a')
    // a (term 1) appends 50 entries nobody else gets.
    c.isolate('a')
    for (let i = 0; i < 50; i++) c.get('a').propose([enc(`lost${i}`)])
    c.deliverAll()
    // b leads term 2 with c and commits 60 entries of its own.
    c.heal()
    c.isolate('a')
    c.campaign('b')
    for (let i = 0; i < 60; i++) c.get('b').propose([enc(`kept${i}`)])
    c.deliverAll()
    // c takes over in term 3: its view of a starts at its own last index, far past the conflict.
    c.campaign('c')
    c.heal()
    c.trace.length = 0
    c.tick('c', 1)
    c.deliverAll()
    const short = c.trace.map((t) => t.replace(/\[(\d+\/\d+),.*,(\d+\/\d+)\]/, '[$1..$2]'))
    expect(short).toMatchInlineSnapshot(`
      [
        "c->a Heartbeat t3 c0",
        "c->b Heartbeat t3 c63",
        "a->c HeartbeatResp t3",
        "b->c HeartbeatResp t3",
        "c->a Append t3 i62/2 c63 [63/3]",
        "a->c AppendResp t3 reject i62 hint51/1",
        "c->a Append t3 i1/1 c63 [2/2..63/3]",
        "a->c AppendResp t3 i63",
      ]
    `)
    expect(c.appliedText('a')).toEqual(Array.from({ length: 60 }, (_, i) => `kept${i}`))
  })

  it('serves a follower ReadIndex only after a heartbeat round confirms leadership', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.propose('a', 'x')
    c.trace.length = 0
    expect(c.get('c').readIndex(7)).toBe(true)
    c.deliverAll()
    expect(c.trace).toMatchInlineSnapshot(`
      [
        "c->a ReadIndex t1 r7",
        "a->b Heartbeat t1 c2 r1",
        "a->c Heartbeat t1 c2 r1",
        "b->a HeartbeatResp t1 r1",
        "c->a HeartbeatResp t1 r1",
        "a->c ReadIndexResp t1 i2 r7",
      ]
    `)
    expect(c.readStates.get('c')).toEqual([{ context: 7, index: 2 }])
  })

  it('holds a read until the new leader has committed an entry of its term', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ checkQuorum: false }))
    c.campaign('a')
    c.propose('a', 'x')
    c.isolate('a')
    c.filter = (m) => m.type !== T.AppendResp
    c.campaign('b')
    const b = c.get('b')
    expect(b.role).toBe('leader')
    expect(b.committedInTerm()).toBe(false)
    b.readIndex(1)
    c.deliverAll()
    expect(c.readStates.get('b')).toEqual([])
    c.heal()
    c.isolate('a')
    b.tick()
    c.deliverAll()
    expect(b.committedInTerm()).toBe(true)
    expect(c.readStates.get('b')).toEqual([{ context: 1, index: b.committed }])
  })

  it('tells which members answered in this leadership: none before an election timeout, then the live ones', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.isolate('c')
    c.campaign('a')
    const a = c.get('a')
    // Too early to tell: nobody had the time to answer.
    expect(a.recentlyHeard()).toBeNull()
    const tickUntil = (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) {
        c.tick('a')
        c.deliverAll()
      }
    }
    tickUntil(() => a.recentlyHeard() !== null)
    // c never answered in this leadership: gone, at once.
    expect(a.recentlyHeard()).toEqual(['a', 'b'])
    c.heal()
    tickUntil(() => a.recentlyHeard()!.includes('c'))
    expect(a.recentlyHeard()).toEqual(['a', 'b', 'c'])
    c.isolate('c')
    tickUntil(() => !a.recentlyHeard()!.includes('c'))
    expect(a.recentlyHeard()).toEqual(['a', 'b'])
    expect(c.get('b').recentlyHeard()).toBeNull()
  })

  it('counts a member added mid-leadership as heard for two election timeouts, as etcd marks it recently active', () => {
    const c = new Cluster(['a', 'b'])
    c.campaign('a')
    const a = c.get('a')
    const tickUntil = (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) {
        c.tick('a')
        c.deliverAll()
      }
    }
    // Long into the leadership, so that "heard in this leadership" no longer covers a newcomer by itself.
    let ticks = 0
    tickUntil(() => ++ticks > 60)
    expect(a.role).toBe('leader')
    // d is added but has not started yet: it cannot have answered.
    c.isolate('d')
    expect(a.proposeConfChange({ voters: ['a', 'b'], learners: ['d'] }).index).toBeGreaterThan(0)
    c.deliverAll()
    expect(a.learners).toContain('d')
    expect(a.recentlyHeard()).toEqual(['a', 'b', 'd'])
    // It gets the same two election timeouts as anyone else to answer; then it is gone.
    tickUntil(() => !a.recentlyHeard()!.includes('d'))
    expect(a.recentlyHeard()).toEqual(['a', 'b'])
  })

  it('transfers leadership: catches the target up, sends TimeoutNow, and the target wins at once', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.isolate('c')
    c.propose('a', 'x')
    c.heal()
    c.trace.length = 0
    expect(c.get('a').transferLeadership('c')).toBe('c')
    c.deliverAll()
    expect(c.trace).toMatchInlineSnapshot(`
      [
        "a->c Append t1 i2/1 c2 []",
        "c->a AppendResp t1 reject i2 hint1/1",
        "a->c Append t1 i1/1 c2 [2/1]",
        "c->a AppendResp t1 i2",
        "a->c TimeoutNow t1",
        "c->a Vote t2 last2/1",
        "c->b Vote t2 last2/1",
        "a->c VoteResp t2 grant",
        "b->c VoteResp t2 grant",
        "c->a Append t2 i2/1 c2 [3/2]",
        "c->b Append t2 i2/1 c2 [3/2]",
        "a->c AppendResp t2 i3",
        "b->c AppendResp t2 i3",
        "c->a Append t2 i3/2 c3 []",
        "c->b Append t2 i3/2 c3 []",
        "a->c AppendResp t2 i3",
        "b->c AppendResp t2 i3",
      ]
    `)
    expect(c.get('c').role).toBe('leader')
    expect(c.get('a').role).toBe('follower')
  })

  it('drops proposals during a transfer and when the uncommitted cap is reached', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ maxUncommittedBytes: 10 }))
    c.campaign('a')
    const a = c.get('a')
    c.isolate('a')
    expect(a.propose([enc('12345678')]).reason).toBe(0)
    expect(a.propose([enc('123')]).reason).toBe(2)
    expect(a.propose([enc('12')]).reason).toBe(0)
    expect(a.propose([enc('1')]).reason).toBe(2)
    c.heal()
    c.deliverAll()
    expect(a.propose([enc('12345678')]).reason).toBe(0)
    c.deliverAll()
    c.isolate('b')
    a.transferLeadership('b')
    expect(a.propose([enc('x')]).reason).toBe(2)
  })

  it('a leader that loses touch with a quorum steps down after an election timeout (CheckQuorum)', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.isolate('a')
    const a = c.get('a')
    for (let i = 0; i < 9; i++) a.tick()
    expect(a.role).toBe('leader')
    for (let i = 0; i < 11 && a.role === 'leader'; i++) a.tick()
    expect(a.role).toBe('follower')
    expect(a.term).toBe(1)
  })

  it('a partitioned node does not raise its term, so it cannot disrupt the cluster when it returns (PreVote)', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.isolate('c')
    for (let i = 0; i < 200; i++) {
      c.tick('c')
      c.deliverAll()
    }
    expect(c.get('c').term).toBe(1)
    expect(c.get('c').role).toBe('precandidate')
    c.heal()
    c.tick('a', 1)
    c.deliverAll()
    expect(c.get('a').role).toBe('leader')
    expect(c.get('c').role).toBe('follower')
    expect(c.get('a').term).toBe(1)
  })

  it('a pre-vote request changes neither the term nor the vote of the member asked, granted or not', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    // c lost touch with a long ago (b's lease ran out), and asks b and a for a pre-vote at term 2.
    c.isolate('a')
    c.tick('b', 40)
    c.deliverAll()
    const b = c.get('b')
    const before = { term: b.term, vote: b.vote }
    b.step(msg({ type: T.PreVote, from: 'c', to: 'b', term: before.term + 1, index: 1, logTerm: 1 }))
    const rd = b.ready()
    b.advance(rd)
    expect(rd.messages.map((m) => [m.type, m.term, m.reject])).toEqual([
      [T.PreVoteResp, before.term + 1, false],
    ])
    expect({ term: b.term, vote: b.vote }).toEqual(before)
    expect(rd.hardState).toBeNull()
    // Refused (the asker's log is behind b's): still no change.
    b.step(msg({ type: T.PreVote, from: 'c', to: 'b', term: before.term + 3, index: 0, logTerm: 0 }))
    const rd2 = b.ready()
    b.advance(rd2)
    expect(rd2.messages.map((m) => [m.type, m.reject])).toEqual([[T.PreVoteResp, true]])
    expect({ term: b.term, vote: b.vote }).toEqual(before)
  })

  it('followers ignore vote requests while they hear from a leader (CheckQuorum lease)', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ preVote: false }))
    c.campaign('a')
    const b = c.get('b')
    b.step(msg({ type: T.Vote, from: 'c', to: 'b', term: 5, index: 9, logTerm: 9 }))
    expect(b.term).toBe(1)
    expect(b.vote).toBe('a')
    // A forced campaign (leadership transfer) is not ignored.
    b.step(msg({ type: T.Vote, from: 'c', to: 'b', term: 5, index: 9, logTerm: 9, context: 1 }))
    expect(b.term).toBe(5)
    expect(b.vote).toBe('c')
  })

  it('pipelines appends up to the in-flight limit, then waits for acknowledgements', () => {
    const c = new Cluster(['a', 'b'], () => ({ maxInflightMsgs: 2, maxMsgEntries: 1 }))
    c.campaign('a')
    const a = c.get('a')
    for (let i = 0; i < 5; i++) a.propose([enc(`p${i}`)])
    c.flush()
    expect(c.queue.filter((m) => m.type === T.Append).map((m) => m.entries.map((e) => e.index))).toEqual([
      [2],
      [3],
    ])
    c.deliverAll()
    expect(c.appliedText('b')).toEqual(['p0', 'p1', 'p2', 'p3', 'p4'])
  })

  it('recovers appends lost in Replicate state from heartbeat answers, without new proposals', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    c.propose('a', 'x')
    const a = c.get('a')
    c.filter = (m) => !(m.type === T.Append && m.to === 'b')
    c.propose('a', 'lost-to-b')
    expect(a.progress.get('b')!.next).toBe(4)
    c.heal()
    for (let i = 0; i < 3; i++) {
      c.tick('a', 1)
      c.deliverAll()
    }
    expect(c.appliedText('b')).toEqual(['x', 'lost-to-b'])
  })

  it('lets a leader send appends while an earlier Ready is still being written, and counts itself only after', () => {
    const c = new Cluster(['a', 'b', 'c'])
    c.campaign('a')
    const a = c.get('a')
    a.propose([enc('first')])
    const rd1 = a.ready() // being "written"
    expect(rd1.entries.map((e) => e.index)).toEqual([2])
    a.propose([enc('second')])
    const early = a.takeMessagesNow()
    expect(early.map((m) => [m.type, m.to, m.entries.map((e) => e.index)])).toEqual([
      [T.Append, 'b', [3]],
      [T.Append, 'c', [3]],
    ])
    // Both followers acknowledge 3 before a's own writes finish: a majority without a, so 3 commits...
    for (const to of ['b', 'c']) {
      a.step(msg({ type: T.AppendResp, from: to, to: 'a', term: 1, index: 3 }))
    }
    expect(a.committed).toBe(3)
    // ...but with one follower only, a must wait for its own write.
    const d = new Cluster(['a', 'b', 'c'])
    d.campaign('a')
    const a2 = d.get('a')
    a2.propose([enc('x')])
    const rd = a2.ready()
    a2.step(msg({ type: T.AppendResp, from: 'b', to: 'a', term: 1, index: 2 }))
    expect(a2.committed).toBe(1)
    a2.advance(rd)
    expect(a2.committed).toBe(2)
    expect(rd1.messagesNow.length).toBe(2)
  })

  it('answers lease reads without a heartbeat round only when CheckQuorum is on and the lease holds', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ leaseRead: true }))
    c.campaign('a')
    const a = c.get('a')
    a.tick()
    c.deliverAll()
    c.trace.length = 0
    a.readIndex(3)
    c.flush()
    expect(c.readStates.get('a')).toEqual([{ context: 3, index: 1 }])
    expect(c.queue).toEqual([])
    // Twenty ticks without hearing from anyone: the lease is gone, the read needs a round.
    c.isolate('a')
    for (let i = 0; i < 9; i++) a.tick()
    c.deliverAll()
    a.readIndex(4)
    c.flush()
    expect(c.readStates.get('a')).toEqual([{ context: 3, index: 1 }])
    const off = new Cluster(['a', 'b', 'c'], () => ({ leaseRead: true, checkQuorum: false }))
    off.campaign('a')
    off.get('a').tick()
    off.deliverAll()
    off.get('a').readIndex(5)
    off.flush()
    expect(off.queue.map((m) => m.type)).toEqual([T.Heartbeat, T.Heartbeat])
  })

  it('restarts from its persisted hard state and log, and never votes twice in a term', () => {
    const c = new Cluster(['a', 'b', 'c'], () => ({ preVote: false }))
    c.campaign('a')
    c.propose('a', 'x')
    const b = c.restart('b', ['a', 'b', 'c'])
    expect([b.term, b.vote, b.log.lastIndex()]).toEqual([1, 'a', 2])
    b.step(msg({ type: T.Vote, from: 'c', to: 'b', term: 1, index: 5, logTerm: 1 }))
    c.flush()
    expect(c.queue.filter((m) => m.type === T.VoteResp).map((m) => m.reject)).toEqual([true])
    c.deliverAll()
    // Committed entries are applied again on restart (the state machine is rebuilt from the log).
    c.tick('a', 1)
    c.deliverAll()
    expect(c.appliedText('b')).toEqual(['x'])
    expect(ent(1, 1).index).toBe(1)
  })
})
