// Leadership-scoped proposals: a deposed leader's duty writes never commit, by any path (refused at propose,
// refused at apply when forwarded to the new leader), while the current leader's scoped writes commit as usual.
import { describe, expect, it } from 'vitest'
import {
  decodeScoped,
  encodeScoped,
  isRaftError,
  proposeScoped,
  ScopeRefused,
  scopedStateMachine,
} from '../src/index.js'
import { enc, LiveCluster, until } from './helpers/live.js'

describe('leadership-scoped proposals', () => {
  it('round-trips the scope and leaves plain commands alone', () => {
    const s = encodeScoped(7, enc('x'))
    expect(decodeScoped(s)).toEqual({ term: 7, command: enc('x') })
    expect(decodeScoped(enc('x'))).toBeUndefined()
    expect(decodeScoped(new Uint8Array([0x93, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))).toBeUndefined()
    expect(() => encodeScoped(0, enc('x'))).toThrow(RangeError)
  })

  it("commits the leader's scoped writes, and never a deposed leader's", async () => {
    const c = new LiveCluster(3, 11, {}, scopedStateMachine)
    await c.startAll()
    try {
      const old = await c.waitLeader()
      const term = old.node!.term
      const ok = await proposeScoped(old.node!, term, enc('duty-1'))
      expect(ok.result).toBe(ok.index)
      await until(() => c.applied('duty-1').count === 3, 15_000, 'duty-1 everywhere')

      // Depose the leader: cut it off until the others elect a new one, then let it hear of the new term.
      c.net.isolate(old.id)
      const next = await c.waitLeader(c.members.filter((m) => m !== old))
      c.net.heal()
      await until(() => old.node!.role === 'follower' && old.node!.leaderId === next.id, 15_000, 'step-down')
      expect(old.node!.term).toBeGreaterThan(term)

      // Its duty, still running on the old term, is refused at once: nothing is forwarded.
      const before = next.node!.commitIndex
      const refused = await proposeScoped(old.node!, term, enc('stale-1')).catch((e: unknown) => e)
      expect(isRaftError(refused) && refused.code).toBe('PROPOSAL_DROPPED')
      expect(next.node!.commitIndex).toBe(before)

      // A scoped command that slipped past the check (leadership lost in between) is forwarded by the plain
      // propose path and appended by the new leader in its own term: every member refuses it at apply.
      const slipped = await old.node!.propose(encodeScoped(term, enc('stale-2')))
      expect(slipped.result).toBeInstanceOf(ScopeRefused)
      const marker = await next.node!.propose(enc('after'))
      await until(() => c.applied('after').count === 3, 15_000, 'the marker everywhere')
      expect(c.applied('stale-1').count).toBe(0)
      expect(c.applied('stale-2').count).toBe(0)
      expect(marker.index).toBeGreaterThan(slipped.index)
      c.checkAgreement()

      // The new leader's scoped writes in its own term commit.
      await proposeScoped(next.node!, next.node!.term, enc('duty-2'))
      await until(() => c.applied('duty-2').count === 3, 15_000, 'duty-2 everywhere')
    } finally {
      await c.stopAll()
    }
  }, 60_000)
})
