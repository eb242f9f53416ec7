// The simulations are only as good as their checks: each invariant must fire on a history that breaks it.
import { describe, expect, it } from 'vitest'
import type { RaftCore } from '../../src/core.js'
import { RaftLog } from '../../src/internal/log.js'
import type { Entry } from '../../src/storage.js'
import { type CheckedMember, SafetyChecker, SimFailure } from './shared.js'

const enc = new TextEncoder()
const entry = (index: number, term: number, data: string): Entry => ({
  index,
  term,
  type: 0,
  data: enc.encode(data),
})

function fakeCore(role: string, term: number, entries: Entry[], committed: number, snapIndex = 0): RaftCore {
  const log = new RaftLog()
  log.snapIndex = snapIndex
  log.snapTerm = snapIndex === 0 ? 0 : 1
  log.entries = entries
  log.committed = committed
  return { role, term, log } as unknown as RaftCore
}

const member = (id: string, core: RaftCore | null, applied: Entry[] = []): CheckedMember => ({
  id,
  core,
  applied,
})

function checker(): SafetyChecker {
  return new SafetyChecker((msg) => {
    throw new SimFailure(msg)
  })
}

describe('simulation safety checks', () => {
  it('accept members that agree', () => {
    const log = [entry(1, 1, 'a=1'), entry(2, 1, 'b=2')]
    const c = checker()
    c.check([
      member('n1', fakeCore('leader', 1, log, 2), [...log]),
      member('n2', fakeCore('follower', 1, log, 1), [...log]),
    ])
    c.check(
      [member('n1', fakeCore('leader', 1, log, 2)), member('n2', fakeCore('follower', 1, log, 2))],
      true,
    )
    expect(c.committed.size).toBe(2)
  })

  it('catch two leaders in one term', () => {
    expect(() =>
      checker().check([
        member('n1', fakeCore('leader', 3, [], 0)),
        member('n2', fakeCore('leader', 3, [], 0)),
      ]),
    ).toThrow(/two leaders in term 3/)
  })

  it('catch a committed entry that changed', () => {
    const c = checker()
    c.check([member('n1', fakeCore('follower', 1, [entry(1, 1, 'a=1')], 1))])
    expect(() => c.check([member('n2', fakeCore('follower', 2, [entry(1, 2, 'a=2')], 1))])).toThrow(
      /committed 1@2 but 1@1/,
    )
  })

  it('catch a later leader without a committed entry', () => {
    const c = checker()
    c.check([member('n1', fakeCore('follower', 1, [entry(1, 1, 'a=1'), entry(2, 1, 'b=1')], 2))])
    expect(() => c.check([member('n2', fakeCore('leader', 2, [entry(1, 1, 'a=1')], 1))])).toThrow(
      /lacks committed entry 2/,
    )
  })

  it('catch logs that agree at the top but differ below, also above a snapshot', () => {
    const a = [entry(1, 1, 'a=1'), entry(2, 2, 'b=1')]
    const b = [entry(1, 1, 'a=9'), entry(2, 2, 'b=1')]
    expect(() =>
      checker().check([
        member('n1', fakeCore('follower', 2, a, 0)),
        member('n2', fakeCore('follower', 2, b, 0)),
      ]),
    ).toThrow(/log matching: n1 and n2 agree at 2 but differ at 1/)
    const snapped = [entry(6, 2, 'x=1'), entry(7, 2, 'y=1')]
    const other = [entry(6, 2, 'x=2'), entry(7, 2, 'y=1')]
    expect(() =>
      checker().check([
        member('n1', fakeCore('follower', 2, snapped, 0, 5)),
        member('n2', fakeCore('follower', 2, other, 0, 5)),
      ]),
    ).toThrow(/differ at 6/)
  })

  it('catch two members applying different commands at one index', () => {
    const c = checker()
    c.check([member('n1', null, [entry(1, 1, 'a=1')])])
    expect(() => c.check([member('n2', null, [entry(1, 1, 'a=2')])])).toThrow(
      /n2 applied "a=2" at 1, another member applied "a=1"/,
    )
  })
})
