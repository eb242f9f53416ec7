// Reads answered by the leader wait for this member to reach the read index: as long as its state machine
// takes to apply what is committed, but only until their deadline for what no leader has brought here yet
// (a member cut off for good, or removed, would wait forever; found by the durable simulation, seed 760).
import { describe, expect, it } from 'vitest'
import type { RaftCore } from '../src/core.js'
import { ReadWaiters } from '../src/internal/read-waiters.js'

function reads() {
  let ctx = 0
  const w = new ReadWaiters({ electionMaxMs: 300, now: () => 0, nextContext: () => ++ctx })
  const core = { readIndex: () => true } as unknown as RaftCore
  const outcome = (p: Promise<number>) => {
    const o = { value: 'pending' }
    p.then(
      (i) => {
        o.value = `read at ${i}`
      },
      (e: { code?: string }) => {
        o.value = e.code ?? 'rejected'
      },
    )
    return o
  }
  return { w, core, outcome }
}

describe('ReadWaiters', () => {
  it('rejects at its deadline a read whose index this member has not seen committed', async () => {
    const { w, core, outcome } = reads()
    const o = outcome(w.add(1_000, undefined))
    w.submit(core)
    w.onReadStates([{ context: 1, index: 10 }], 5)
    w.checkDeadlines(999, true, 8)
    await Promise.resolve()
    expect(o.value).toBe('pending')
    w.checkDeadlines(1_000, true, 8)
    await Promise.resolve()
    expect(o.value).toBe('NO_LEADER')
  })

  it('waits past its deadline for the state machine to apply what is committed', async () => {
    const { w, core, outcome } = reads()
    const o = outcome(w.add(1_000, undefined))
    w.submit(core)
    w.onReadStates([{ context: 1, index: 10 }], 5)
    w.checkDeadlines(5_000, true, 10)
    await Promise.resolve()
    expect(o.value).toBe('pending')
    w.release(10)
    await Promise.resolve()
    expect(o.value).toBe('read at 10')
  })
})
