// The simulations are only as good as their checks: each invariant must fire on a history that breaks it.

import { ManualClock } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import type { RaftCore } from '../../src/internal/core.js'
import { RaftLog } from '../../src/internal/log.js'
import type { Entry } from '../../src/storage.js'
import { NodeClock } from './faults.js'
import { type CheckedMember, SafetyChecker, SimFailure, WatchedClock, watchdog } from './shared.js'

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

  it('fail a seed that livelocks instead of hanging the run', async () => {
    const started = Date.now()
    const livelock = watchdog(
      'seed 7',
      async (signal) => {
        const clock = new WatchedClock(signal)
        // A timer that re-arms itself with no delay: virtual time never passes.
        const spin = () => clock.setTimeout(spin, 0)
        spin()
        await clock.advanceAsync(1000)
      },
      300,
    )
    await expect(livelock).rejects.toThrow(SimFailure)
    await expect(livelock).rejects.toThrow(/seed 7 did not finish within 300 ms/)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it('fail a seed whose run never settles', async () => {
    await expect(watchdog('seed 8', () => new Promise(() => {}), 100)).rejects.toThrow(/seed 8/)
  })

  it('give each node a clock that drifts and pauses as a stopped process does', async () => {
    const base = new ManualClock()
    const fast = new NodeClock(base, 1.02, 5000)
    const fired: string[] = []
    fast.setTimeout(() => fired.push('fast 102'), 102)
    const slow = new NodeClock(base, 0.98, 0)
    slow.setTimeout(() => fired.push('slow 98'), 98)
    await base.advanceAsync(99)
    expect(fired).toEqual([])
    await base.advanceAsync(2)
    expect(fired.sort()).toEqual(['fast 102', 'slow 98'])
    expect(fast.now()).toBeCloseTo(5000 + 101 * 1.02)
    // Paused: timers wait, the clock goes on; on resume they fire, in order.
    fast.pause()
    fast.setTimeout(() => fired.push('a'), 10)
    fast.setTimeout(() => fired.push('b'), 20)
    const cancelled = fast.setTimeout(() => fired.push('never'), 5)
    fast.clearTimeout(cancelled)
    await base.advanceAsync(500)
    expect(fired.length).toBe(2)
    expect(fast.now()).toBeCloseTo(5000 + 601 * 1.02)
    fast.resume()
    await base.advanceAsync(0)
    expect(fired.slice(2)).toEqual(['a', 'b'])
  })
})
