// Forwarded proposals meet the apply pipeline: the leader's answer (where the proposal went) can arrive after
// the pipeline has taken up that entry, since applying runs beside the loop that reads the answers.
import { describe, expect, it } from 'vitest'
import type { RaftCore } from '../src/core.js'
import { Proposals } from '../src/internal/proposals.js'

const enc = (s: string) => new TextEncoder().encode(s)

function follower() {
  let ctx = 0
  const proposals = new Proposals({
    leaderWaitMs: 1_000,
    electionMaxMs: 300,
    maxAppendBytes: 1 << 20,
    now: () => 0,
    nextContext: () => ++ctx,
  })
  // A follower that knows its leader: proposals are forwarded under context 1, 2, ...
  const core = { role: 'follower', leader: 'n1', propose: () => ({ index: 0, term: 1, reason: 0 }) }
  return { proposals, core: core as unknown as RaftCore }
}

describe('Proposals', () => {
  it('settles a forwarded proposal whose answer arrives while its entry is being applied', async () => {
    const { proposals, core } = follower()
    let outcome = 'pending'
    proposals.add(enc('x'), undefined).then(
      () => {
        outcome = 'resolved'
      },
      (e: { code?: string }) => {
        outcome = e.code ?? 'rejected'
      },
    )
    proposals.submit(core)
    // The pipeline takes up entry 5 (no proposal known there yet) and the state machine starts on it ...
    expect(proposals.take(5)).toBeUndefined()
    // ... when the leader's answer says the proposal went to index 5.
    proposals.onForwards([{ context: 1, index: 5, term: 1, reason: 0 }])
    await Promise.resolve()
    // Its result went nowhere: it is reported as unknown instead of waiting forever.
    expect(outcome).toBe('LOST_LEADERSHIP')
    expect(proposals.byIndex.size).toBe(0)
  })

  it('resolves a forwarded proposal whose entry the pipeline has not reached yet', async () => {
    const { proposals, core } = follower()
    const result = proposals.add(enc('x'), undefined)
    proposals.submit(core)
    proposals.take(4)
    proposals.onForwards([{ context: 1, index: 5, term: 1, reason: 0 }])
    const p = proposals.take(5)!
    p.resolve({ index: 5, term: 1, result: 'ok' })
    await expect(result).resolves.toEqual({ index: 5, term: 1, result: 'ok' })
  })
})
