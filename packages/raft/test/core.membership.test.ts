// Membership in the pure core: the configuration in effect is that of the last Config entry in the log.
import { describe, expect, it } from 'vitest'
import { encodeConf } from '../src/internal/conf.js'
import { EntryType } from '../src/storage.js'
import { Cluster, ent, newCore } from './helpers/cores.js'

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
