import { describe, expect, it } from 'vitest'
import { EntryType } from '../src/storage.js'
import { newCore } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)

/** A single-voter leader with `n` committed 10-byte commands, nothing handed out for apply yet. */
function leaderWith(n: number) {
  const c = newCore('a', ['a'])
  for (let i = 0; i < 20 && c.role !== 'leader'; i++) c.tick()
  const data = Array.from({ length: n }, (_, i) => enc(`cmd-${String(i).padStart(6, '0')}`))
  c.propose(data)
  // Persist everything without taking committed entries, as a driver whose state machine is busy.
  while (c.hasReady({ maxCommittedBytes: 0 })) c.advance(c.ready({ maxCommittedBytes: 0 }))
  return c
}

describe('RaftCore.ready with bounds on committed entries', () => {
  it('hands out no committed entries at a bound of 0, and still everything else', () => {
    const c = leaderWith(5)
    expect(c.committed).toBe(6)
    expect(c.hasReady({ maxCommittedBytes: 0 })).toBe(false)
    expect(c.hasReady({ maxCommittedEntries: 0 })).toBe(false)
    expect(c.hasReady()).toBe(true)
  })

  it('hands out committed entries in order, within the byte and entry bounds, and the rest later', () => {
    const c = leaderWith(5)
    const a = c.ready({ maxCommittedBytes: 25 })
    // The empty no-op, then 10-byte commands while they fit in 25 bytes.
    expect(a.committed.map((e) => e.index)).toEqual([1, 2, 3])
    expect(a.committed[0]!.type).toBe(EntryType.Normal)
    c.advance(a)
    const b = c.ready({ maxCommittedEntries: 1 })
    expect(b.committed.map((e) => e.index)).toEqual([4])
    c.advance(b)
    // One entry larger than the bound still goes alone, so a driver with any room makes progress.
    const d = c.ready({ maxCommittedBytes: 1 })
    expect(d.committed.map((e) => e.index)).toEqual([5])
    c.advance(d)
    const e = c.ready({ maxCommittedBytes: 1_000 })
    expect(e.committed.map((x) => x.index)).toEqual([6])
    c.advance(e)
    expect(c.applied).toBe(6)
    expect(c.hasReady({ maxCommittedBytes: 1_000 })).toBe(false)
  })

  it('refuses bounds that are not integers >= 0 before handing anything out', () => {
    const c = leaderWith(3)
    for (const bad of [
      { maxCommittedBytes: -1 },
      { maxCommittedEntries: Number.NaN },
      { maxCommittedBytes: 1.5 },
    ]) {
      expect(() => c.ready(bad)).toThrow(RangeError)
      expect(() => c.hasReady(bad)).toThrow(RangeError)
    }
    // Nothing was handed out by the refused calls.
    expect(c.ready().committed.map((e) => e.index)).toEqual([1, 2, 3, 4])
  })
})
