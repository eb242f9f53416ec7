// One test per rule of Figure 2 and per section 5.1-5.4 of the Raft paper (Ongaro & Ousterhout, 2014), on the
// pure core. PreVote and CheckQuorum are off here unless a test says otherwise, to match the paper's algorithm.
import { describe, expect, it } from 'vitest'
import type { RaftCore } from '../src/core.js'
import { Cluster, ent, msg, newCore, rng, T } from './helpers/cores.js'

const paper = { preVote: false, checkQuorum: false }
const ids3 = ['a', 'b', 'c']

function electA(c: Cluster): RaftCore {
  c.campaign('a')
  const a = c.get('a')
  expect(a.role).toBe('leader')
  return a
}

function drain(core: RaftCore) {
  const rd = core.ready()
  core.advance(rd)
  return rd
}

describe('Figure 2: rules for all servers', () => {
  it('applies committed entries in log order, each exactly once', () => {
    const c = new Cluster(ids3, () => paper)
    electA(c)
    for (const x of ['x', 'y', 'z']) c.propose('a', x)
    for (const id of ids3) expect(c.appliedText(id)).toEqual(['x', 'y', 'z'])
    const idx = c.applied.get('b')!.map((e) => e.index)
    expect(idx).toEqual([1, 2, 3, 4])
  })

  for (const role of ['follower', 'candidate', 'leader'] as const) {
    it(`a ${role} that sees a higher term adopts it and becomes follower`, () => {
      const a = newCore('a', ids3, paper)
      if (role === 'candidate') for (let i = 0; i < 30 && a.role === 'follower'; i++) a.tick()
      if (role === 'leader') {
        for (let i = 0; i < 30 && a.role === 'follower'; i++) a.tick()
        a.step(msg({ type: T.VoteResp, from: 'b', to: 'a', term: a.term }))
      }
      expect(a.role).toBe(role)
      a.step(msg({ type: T.Append, from: 'c', to: 'a', term: 7 }))
      expect(a.term).toBe(7)
      expect(a.role).toBe('follower')
      expect(a.leader).toBe('c')
      expect(a.vote).toBeNull()
    })
  }
})

describe('Figure 2: followers (§5.2)', () => {
  it('become candidates when the election timeout elapses without hearing from a leader', () => {
    const a = newCore('a', ids3, { ...paper, electionTick: 10 })
    let ticks = 0
    while (a.role === 'follower') {
      a.tick()
      ticks++
    }
    expect(a.role).toBe('candidate')
    expect(ticks).toBeGreaterThanOrEqual(10)
    expect(ticks).toBeLessThanOrEqual(19)
  })

  it('do not time out while a leader keeps sending heartbeats', () => {
    const a = newCore('a', ids3, paper)
    for (let i = 0; i < 100; i++) {
      a.tick()
      a.step(msg({ type: T.Heartbeat, from: 'b', to: 'a', term: 1 }))
    }
    expect(a.role).toBe('follower')
    expect(a.leader).toBe('b')
  })
})

describe('Figure 2: candidates (§5.2)', () => {
  it('increment the term, vote for themselves and ask every other voter for a vote', () => {
    const a = newCore('a', ids3, paper)
    while (a.role === 'follower') a.tick()
    expect(a.term).toBe(1)
    expect(a.vote).toBe('a')
    const rd = drain(a)
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 })
    // Vote requests wait for the vote to be durable.
    expect(rd.messagesNow).toEqual([])
    expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([
      [T.Vote, 'b', 1],
      [T.Vote, 'c', 1],
    ])
  })

  it('become leader with votes from a majority', () => {
    const a = newCore('a', ['a', 'b', 'c', 'd', 'e'], paper)
    while (a.role === 'follower') a.tick()
    a.step(msg({ type: T.VoteResp, from: 'b', to: 'a', term: 1 }))
    expect(a.role).toBe('candidate')
    a.step(msg({ type: T.VoteResp, from: 'c', to: 'a', term: 1, reject: true }))
    a.step(msg({ type: T.VoteResp, from: 'd', to: 'a', term: 1 }))
    expect(a.role).toBe('leader')
  })

  it('return to follower when a majority rejects them', () => {
    const a = newCore('a', ids3, paper)
    while (a.role === 'follower') a.tick()
    a.step(msg({ type: T.VoteResp, from: 'b', to: 'a', term: 1, reject: true }))
    a.step(msg({ type: T.VoteResp, from: 'c', to: 'a', term: 1, reject: true }))
    expect(a.role).toBe('follower')
  })

  it('become follower on an AppendEntries from a leader of the same term', () => {
    const a = newCore('a', ids3, paper)
    while (a.role === 'follower') a.tick()
    a.step(msg({ type: T.Append, from: 'b', to: 'a', term: 1 }))
    expect(a.role).toBe('follower')
    expect(a.leader).toBe('b')
  })

  it('start a new election when the election times out', () => {
    const a = newCore('a', ids3, paper)
    while (a.role === 'follower') a.tick()
    expect(a.term).toBe(1)
    for (let i = 0; i < 20 && a.term === 1; i++) a.tick()
    expect(a.role).toBe('candidate')
    expect(a.term).toBe(2)
  })
})

describe('Figure 2: leaders (§5.3)', () => {
  it('send an append (the no-op) to every follower on election, and heartbeats while idle', () => {
    const a = newCore('a', ids3, { ...paper, heartbeatTick: 2 })
    while (a.role === 'follower') a.tick()
    drain(a)
    a.step(msg({ type: T.VoteResp, from: 'b', to: 'a', term: 1 }))
    const rd = drain(a)
    expect(rd.entries.map((e) => [e.index, e.term, e.data.length])).toEqual([[1, 1, 0]])
    expect(rd.messagesNow.map((m) => [m.type, m.to, m.entries.length])).toEqual([
      [T.Append, 'b', 1],
      [T.Append, 'c', 1],
    ])
    a.tick()
    expect(a.hasReady()).toBe(false)
    a.tick()
    expect(drain(a).messagesNow.map((m) => [m.type, m.to])).toEqual([
      [T.Heartbeat, 'b'],
      [T.Heartbeat, 'c'],
    ])
  })

  it('append client commands to their log and answer after they are applied', () => {
    const c = new Cluster(ids3, () => paper)
    const a = electA(c)
    const r = a.propose([new TextEncoder().encode('cmd')])
    expect(r).toEqual({ index: 2, term: 1, reason: 0 })
    expect(a.log.term(2)).toBe(1)
    c.deliverAll()
    expect(a.committed).toBe(2)
    expect(c.appliedText('a')).toEqual(['cmd'])
  })

  it('update nextIndex and matchIndex on success, and decrement nextIndex and retry on a mismatch', () => {
    const c = new Cluster(ids3, () => paper)
    const a = electA(c)
    c.propose('a', 'x')
    const pb = a.progress.get('b')!
    expect([pb.match, pb.next]).toEqual([2, 3])
    // b rejects a probe at index 2: a backs up and retries lower.
    pb.match = 1
    pb.becomeProbe()
    pb.next = 3
    a.step(
      msg({ type: T.AppendResp, from: 'b', to: 'a', term: 1, reject: true, index: 2, hint: 1, logTerm: 1 }),
    )
    expect(pb.next).toBeLessThanOrEqual(2)
  })

  it('commit an entry of the current term once a majority stores it', () => {
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], () => paper)
    const a = electA(c)
    c.isolate('d')
    c.isolate('e')
    c.propose('a', 'x')
    expect(a.committed).toBe(2)
    c.heal()
    c.isolate('c')
    c.isolate('d')
    c.isolate('e')
    c.propose('a', 'y')
    expect(a.committed).toBe(2)
  })

  it('commit with an even number of voters only once more than half store it (three of four)', () => {
    const c = new Cluster(['a', 'b', 'c', 'd'], () => paper)
    const a = electA(c)
    const before = a.committed
    c.isolate('c')
    c.isolate('d')
    c.propose('a', 'x')
    expect(a.committed).toBe(before)
    c.heal()
    c.isolate('d')
    c.propose('a', 'y')
    expect(a.committed).toBe(before + 2)
  })
})

describe('Figure 2: AppendEntries receiver', () => {
  function follower(entries: [number, number][], term = 3) {
    const f = newCore('b', ids3, {
      ...paper,
      state: {
        hardState: { term, vote: null, commit: 0 },
        snapshot: null,
        entries: entries.map(([i, t]) => ent(i, t)),
      },
    })
    return f
  }
  function append(f: RaftCore, p: Partial<Parameters<typeof msg>[0]>) {
    f.step(msg({ type: T.Append, from: 'a', to: 'b', term: 3, ...p }))
    return drain(f).messages.find((m) => m.type === T.AppendResp)!
  }

  it('1. replies false (with its term) if term < currentTerm', () => {
    const f = follower([[1, 1]], 3)
    f.step(msg({ type: T.Append, from: 'a', to: 'b', term: 2, index: 1, logTerm: 1 }))
    const r = drain(f).messages
    expect(r.map((m) => [m.type, m.term])).toEqual([[T.AppendResp, 3]])
    expect(f.log.lastIndex()).toBe(1)
  })

  it('2. replies false if the log has no entry at prevLogIndex with prevLogTerm', () => {
    const f = follower([
      [1, 1],
      [2, 2],
    ])
    const r = append(f, { index: 2, logTerm: 3, entries: [ent(3, 3)] })
    expect(r.reject).toBe(true)
    const r2 = append(f, { index: 5, logTerm: 3 })
    expect(r2.reject).toBe(true)
    expect(f.log.lastIndex()).toBe(2)
  })

  it('3. deletes a conflicting entry and all that follow it', () => {
    const f = follower([
      [1, 1],
      [2, 2],
      [3, 2],
    ])
    const r = append(f, { index: 1, logTerm: 1, entries: [ent(2, 3)] })
    expect(r.reject).toBe(false)
    expect(r.index).toBe(2)
    expect([f.log.lastIndex(), f.log.term(2)]).toEqual([2, 3])
  })

  it('4. appends entries not already in the log, and keeps entries past a stale, shorter append', () => {
    const f = follower([
      [1, 1],
      [2, 3],
      [3, 3],
    ])
    const r = append(f, { index: 1, logTerm: 1, entries: [ent(2, 3)] })
    expect(r.index).toBe(2)
    expect(f.log.lastIndex()).toBe(3)
    append(f, { index: 3, logTerm: 3, entries: [ent(4, 3), ent(5, 3)] })
    expect(f.log.lastIndex()).toBe(5)
  })

  it('5. sets commitIndex = min(leaderCommit, index of last new entry)', () => {
    const f = follower([[1, 1]])
    append(f, { index: 1, logTerm: 1, entries: [ent(2, 3)], commit: 10 })
    expect(f.committed).toBe(2)
    append(f, { index: 2, logTerm: 3, entries: [ent(3, 3), ent(4, 3)], commit: 3 })
    expect(f.committed).toBe(3)
  })

  it('5. with a log longer than the new entries, commits no further than the last new entry', () => {
    // Entries 3 and 4 are left from an old term; the leader's log differs there, and its commit index is 4.
    const f = follower([
      [1, 1],
      [2, 1],
      [3, 2],
      [4, 2],
    ])
    // A delayed append holding only entry 2 arrives: it proves nothing about entries 3 and 4.
    const r = append(f, { index: 1, logTerm: 1, entries: [ent(2, 1)], commit: 4 })
    expect(r.index).toBe(2)
    expect(f.log.lastIndex()).toBe(4)
    expect(f.committed).toBe(2)
    // The leader's entry 3 then replaces the stale one, which was never committed.
    append(f, { index: 2, logTerm: 1, entries: [ent(3, 3)], commit: 4 })
    expect([f.log.lastIndex(), f.log.term(3), f.committed]).toEqual([3, 3, 3])
  })
})

describe('Figure 2: RequestVote receiver', () => {
  function voter(entries: [number, number][], term = 2, vote: string | null = null) {
    return newCore('b', ids3, {
      ...paper,
      state: {
        hardState: { term, vote, commit: 0 },
        snapshot: null,
        entries: entries.map(([i, t]) => ent(i, t)),
      },
    })
  }
  function ask(v: RaftCore, from: string, term: number, index: number, logTerm: number) {
    v.step(msg({ type: T.Vote, from, to: 'b', term, index, logTerm }))
    return drain(v).messages.find((m) => m.type === T.VoteResp)!
  }

  it('1. replies false if term < currentTerm', () => {
    const v = voter([[1, 1]], 3)
    v.step(msg({ type: T.Vote, from: 'a', to: 'b', term: 2, index: 5, logTerm: 2 }))
    expect(drain(v).messages).toEqual([])
    expect(v.vote).toBeNull()
  })

  it('2. grants when it has not voted (or voted for this candidate) and the log is at least as up to date', () => {
    const v = voter([[1, 1]], 2)
    expect(ask(v, 'a', 2, 1, 1).reject).toBe(false)
    expect(v.vote).toBe('a')
    expect(ask(v, 'a', 2, 1, 1).reject).toBe(false)
    expect(ask(v, 'c', 2, 9, 2).reject).toBe(true)
  })

  it('2. refuses a candidate whose log is behind (§5.4.1), by last term then length', () => {
    const v = voter(
      [
        [1, 1],
        [2, 2],
      ],
      2,
    )
    expect(ask(v, 'a', 3, 5, 1).reject).toBe(true)
    expect(ask(v, 'c', 4, 1, 2).reject).toBe(true)
    expect(ask(v, 'a', 5, 2, 2).reject).toBe(false)
  })

  it('persists the vote before the grant leaves', () => {
    const v = voter([], 1)
    v.step(msg({ type: T.Vote, from: 'a', to: 'b', term: 2, index: 0, logTerm: 0 }))
    const rd = drain(v)
    expect(rd.hardState).toEqual({ term: 2, vote: 'a', commit: 0 })
    expect(rd.messagesNow).toEqual([])
    expect(rd.messages.map((m) => [m.type, m.reject])).toEqual([[T.VoteResp, false]])
  })
})

describe('§5.1 Raft basics', () => {
  it('terms only increase, and stale-term messages are ignored', () => {
    const c = new Cluster(ids3, () => paper)
    electA(c)
    const b = c.get('b')
    const before = b.term
    b.step(msg({ type: T.Append, from: 'c', to: 'b', term: before - 1, entries: [ent(9, 0)] }))
    expect(b.term).toBe(before)
    expect(b.leader).toBe('a')
  })
})

describe('§5.2 Leader election', () => {
  it('elects at most one leader per term over many random elections', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const c = new Cluster(['a', 'b', 'c', 'd', 'e'], () => ({ ...paper }))
      const leaders = new Map<number, string>()
      let r = seed
      for (let step = 0; step < 400; step++) {
        r = (r * 1103515245 + 12345) & 0x7fffffff
        const id = 'abcde'[r % 5]!
        c.tick(id)
        c.flush()
        // Deliver a random prefix of the queue, drop some.
        const n = c.queue.length
        for (let i = 0; i < n; i++) {
          const m = c.queue.shift()!
          if ((r >> (i % 16)) & 1) c.deliver(m)
          c.flush()
        }
        for (const core of c.cores.values()) {
          if (core.role !== 'leader') continue
          const prev = leaders.get(core.term)
          expect(prev === undefined || prev === core.id, `two leaders in term ${core.term}`).toBe(true)
          leaders.set(core.term, core.id)
        }
      }
    }
  })

  it('randomizes election timeouts within [electionTick, 2 * electionTick - 1]', () => {
    const seen = new Set<number>()
    for (let s = 0; s < 200; s++) {
      const a = newCore('a', ids3, { ...paper, random: rng(s) })
      let n = 0
      while (a.role === 'follower') {
        a.tick()
        n++
      }
      seen.add(n)
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(10)
    expect(Math.max(...seen)).toBeLessThanOrEqual(19)
    expect(seen.size).toBeGreaterThan(5)
  })
})

describe('§5.3 Log replication', () => {
  it('log matching: equal index and term imply equal prefixes, after a leader brings followers in line', () => {
    const c = new Cluster(ids3, () => paper)
    electA(c)
    c.propose('a', 'x')
    c.isolate('a')
    c.get('a').propose([new TextEncoder().encode('lost')])
    c.deliverAll()
    c.heal()
    c.campaign('b')
    c.propose('b', 'y')
    c.deliverAll()
    const logs = ids3.map((id) => c.get(id).log.entries.map((e) => `${e.index}/${e.term}`))
    expect(logs[0]).toEqual(logs[1])
    expect(logs[1]).toEqual(logs[2])
    expect(ids3.map((id) => c.appliedText(id))).toEqual([
      ['x', 'y'],
      ['x', 'y'],
      ['x', 'y'],
    ])
  })
})

describe('§5.4 Safety', () => {
  it('§5.4.1 election restriction: a node missing a committed entry cannot win', () => {
    const c = new Cluster(ids3, () => paper)
    electA(c)
    c.isolate('c')
    c.propose('a', 'x')
    expect(c.get('a').committed).toBe(2)
    c.heal()
    c.isolate('a')
    // c has the shorter log: b refuses it.
    c.campaign('c')
    expect(c.get('c').role).not.toBe('leader')
    c.campaign('b')
    expect(c.get('b').role).toBe('leader')
  })

  it('§5.4.2 Figure 8: a leader does not commit an old-term entry by counting replicas', () => {
    // One entry per append, so that entry 2 can reach a majority before the new leader's no-op does.
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], () => ({ ...paper, maxMsgEntries: 1 }))
    // (a) a leads term 1 and replicates entry 2 to b only.
    electA(c)
    c.isolate('a')
    c.get('a').propose([new TextEncoder().encode('old')])
    c.flush()
    for (const m of c.queue.splice(0)) if (m.to === 'b' && m.type === T.Append) c.get('b').step(m)
    c.flush()
    c.queue = []
    expect(c.get('b').log.lastIndex()).toBe(2)
    // (b) e wins term 2 with votes from c, d (and itself), appends its no-op, crashes before replicating.
    c.heal()
    c.isolate('a')
    c.isolate('b')
    c.filter = (m) => !(m.from === 'e' && m.type === T.Append)
    c.campaign('e')
    expect(c.get('e').role).toBe('leader')
    c.isolate('e')
    // (c) a comes back, wins term 3 with b and c, and replicates entry 2 (term 1) to c: a majority.
    c.heal()
    c.isolate('e')
    c.filter = (m) => m.to !== 'd' && m.from !== 'd'
    c.get('a').step(msg({ type: T.Heartbeat, from: 'x', to: 'a', term: 3 }))
    const a = c.get('a')
    for (let i = 0; i < 100 && a.role === 'follower'; i++) a.tick()
    // Message by message, the intermediate invariant: a's commit index covers entry 2 only once an entry of
    // a's own term is stored on a majority (with entry 2 on a, b and c but a's no-op on a and b alone, the
    // entry from term 1 could still be overwritten by e, as in Figure 8 (d)).
    let states = 0
    let windows = 0
    c.flush()
    while (c.queue.length > 0) {
      c.deliver(c.queue.shift()!)
      c.flush()
      if (a.role !== 'leader') continue
      // a's no-op follows entry 2.
      const noop = 3
      const ownOnMajority = ['a', 'b', 'c', 'd', 'e'].filter((id) => c.get(id).log.term(noop) === a.term)
      const oldOnMajority = ['a', 'b', 'c', 'd', 'e'].filter((id) => c.get(id).log.term(2) === 1)
      if (oldOnMajority.length >= 3 && ownOnMajority.length < 3) windows++
      if (a.committed >= 2) expect(ownOnMajority.length).toBeGreaterThanOrEqual(3)
      states++
    }
    expect(states).toBeGreaterThan(0)
    // The schedule did reach the dangerous state: entry 2 on a majority, the no-op not yet.
    expect(windows).toBeGreaterThan(0)
    expect(a.role).toBe('leader')
    expect(a.term).toBeGreaterThanOrEqual(3)
    expect(a.log.term(3)).toBe(a.term)
    // Entry 2 (term 1) is now on a, b and c, but must not count as committed until a's own no-op is.
    for (const id of ['a', 'b', 'c']) expect(c.get(id).log.term(2)).toBe(1)
    expect(ids3.map((id) => c.appliedText(id))).toEqual([['old'], ['old'], ['old']])
    expect(a.committed).toBe(a.log.lastIndex())
  })

  it('§5.4.2 a new leader commits prior-term entries only through an entry of its own term', () => {
    const a = newCore('a', ids3, {
      ...paper,
      state: { hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: [ent(1, 1, 'p')] },
    })
    while (a.role === 'follower') a.tick()
    drain(a)
    a.step(msg({ type: T.VoteResp, from: 'b', to: 'a', term: 2 }))
    expect(a.role).toBe('leader')
    drain(a)
    // b acknowledges only the old entry: no commit.
    a.step(msg({ type: T.AppendResp, from: 'b', to: 'a', term: 2, index: 1 }))
    expect(a.committed).toBe(0)
    // b acknowledges the no-op: both commit.
    a.step(msg({ type: T.AppendResp, from: 'b', to: 'a', term: 2, index: 2 }))
    expect(a.committed).toBe(2)
  })

  it('§5.4.3 leader completeness: every later leader holds every committed entry', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster(['a', 'b', 'c', 'd', 'e'], () => paper)
      const committed: string[] = []
      let r = seed * 7919
      for (let step = 0; step < 300; step++) {
        r = (r * 1103515245 + 12345) & 0x7fffffff
        const id = 'abcde'[r % 5]!
        c.tick(id)
        const l = c.leader()
        if (l && r % 3 === 0) l.propose([new TextEncoder().encode(`v${step}`)])
        c.flush()
        const n = c.queue.length
        for (let i = 0; i < n; i++) {
          const m = c.queue.shift()!
          if ((r >> (i % 20)) & 3) c.deliver(m)
          c.flush()
        }
        for (const core of c.cores.values()) {
          for (let i = committed.length; i < core.committed; i++) {
            committed.push(`${core.log.term(i + 1)}`)
          }
          if (core.role === 'leader') {
            for (let i = 0; i < committed.length; i++) expect(`${core.log.term(i + 1)}`).toBe(committed[i])
          }
        }
      }
    }
  })
})

describe('§7 InstallSnapshot receiver', () => {
  const conf = { voters: ids3, learners: [] }
  function follower(entries: [number, number][]) {
    return newCore('b', ids3, {
      ...paper,
      state: {
        hardState: { term: 3, vote: null, commit: 0 },
        snapshot: null,
        entries: entries.map(([i, t]) => ent(i, t)),
      },
    })
  }
  function install(f: RaftCore, index: number, term: number) {
    const snapshot = { meta: { index, term, conf }, data: new Uint8Array([1]) }
    f.step(msg({ type: T.Snapshot, from: 'a', to: 'b', term: 3, index, logTerm: term, snapshot }))
    return drain(f)
  }

  // Rule 6 and 7: a log that does not hold the snapshot's last entry is discarded as a whole, whether it ends
  // before the snapshot or runs past it with entries of another term.
  for (const [name, entries] of [
    [
      'shorter',
      [
        [1, 1],
        [2, 1],
        [3, 1],
      ],
    ],
    [
      'longer, diverging',
      [
        [1, 1],
        [2, 1],
        [3, 1],
        [4, 1],
        [5, 1],
        [6, 1],
        [7, 1],
        [8, 1],
        [9, 1],
        [10, 1],
      ],
    ],
  ] as const) {
    it(`discards the whole ${name} log and keeps only the snapshot's point`, () => {
      const f = follower(entries.map(([i, t]) => [i, t]))
      const rd = install(f, 8, 2)
      expect(rd.snapshot?.meta.index).toBe(8)
      expect(rd.messages.find((m) => m.type === T.AppendResp)?.index).toBe(8)
      expect(f.log.lastIndex()).toBe(8)
      expect(f.log.term(8)).toBe(2)
      expect(f.committed).toBe(8)
      // The next append continues right after the snapshot.
      f.step(
        msg({
          type: T.Append,
          from: 'a',
          to: 'b',
          term: 3,
          index: 8,
          logTerm: 2,
          entries: [ent(9, 3)],
          commit: 9,
        }),
      )
      const r = drain(f).messages.find((m) => m.type === T.AppendResp)!
      expect([r.reject, r.index]).toEqual([false, 9])
      expect(f.log.lastIndex()).toBe(9)
    })
  }

  it('keeps the entries after a snapshot whose last entry its log already holds (rule 6)', () => {
    const f = follower([
      [1, 1],
      [2, 2],
      [3, 2],
      [4, 3],
    ])
    const rd = install(f, 3, 2)
    expect(rd.snapshot).toBeFalsy()
    expect(f.log.lastIndex()).toBe(4)
    expect(f.committed).toBe(3)
  })
})
