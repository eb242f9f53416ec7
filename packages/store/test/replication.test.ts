import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryStore, type Proposer } from '../src/index.js'
import { secret } from './fixtures.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'

function raftError(code: string): Error {
  const e = new Error(`raft: ${code}`)
  e.name = 'RaftError'
  ;(e as Error & { code: string }).code = code
  return e
}

/**
 * A simulated replicated log with the failure modes of a real one: a proposal commits, is refused outright,
 * or fails ambiguously (leadership lost) and then either commits later, after other entries, or never.
 */
function simulatedCluster(members: number, choices: () => number) {
  const stores: MemoryStore[] = []
  let index = 0
  const limbo: Uint8Array[] = []
  const commit = (cmd: Uint8Array) => {
    index++
    for (const s of stores) s.apply(cmd, index)
  }
  const drainLimbo = () => {
    while (limbo.length > 0) {
      const cmd = limbo.shift()!
      if (choices() % 2 === 0) commit(cmd)
    }
  }
  const proposer: Proposer = async (cmd) => {
    await Promise.resolve()
    const c = choices() % 6
    if (c === 0) {
      drainLimbo()
      throw raftError('PROPOSAL_DROPPED')
    }
    if (c === 1) {
      limbo.push(cmd)
      throw raftError('LOST_LEADERSHIP')
    }
    if (c === 2) {
      // Committed, but the proposer hears of a leadership change first.
      drainLimbo()
      commit(cmd)
      throw raftError('LOST_LEADERSHIP')
    }
    drainLimbo()
    commit(cmd)
    return { index }
  }
  for (let i = 0; i < members; i++) stores.push(new MemoryStore({ proposer, clock: () => 1000 }))
  return { stores, drainLimbo }
}

describe('replicated MemoryStore', () => {
  it('a transaction whose proposal fails changes nothing anywhere; one that succeeds is everywhere', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(1000), { minLength: 50, maxLength: 200 }),
        fc.integer({ min: 5, max: 40 }),
        async (rolls, n) => {
          let i = 0
          const { stores, drainLimbo } = simulatedCluster(3, () => rolls[i++ % rolls.length]!)
          const outcomes = new Map<string, string>()
          for (let k = 0; k < n; k++) {
            const writer = stores[k % 3]!
            const id = `s${k}`
            try {
              await writer.update((tx) => tx.create('secrets', secret(id, id)))
              outcomes.set(id, 'OK')
            } catch (err) {
              outcomes.set(id, (err as { code: string }).code)
            }
          }
          drainLimbo()
          const present = (s: MemoryStore) => new Set(s.view((tx) => tx.find('secrets').map((x) => x.id)))
          const first = present(stores[0]!)
          for (const s of stores) {
            expect(present(s)).toEqual(first)
            expect(s.version).toBe(stores[0]!.version)
          }
          for (const [id, o] of outcomes) {
            expect(['OK', 'PROPOSAL_FAILED', 'OUTCOME_UNKNOWN']).toContain(o)
            if (o === 'OK') expect(first.has(id), id).toBe(true)
            if (o === 'PROPOSAL_FAILED') expect(first.has(id), id).toBe(false)
          }
        },
      ),
      { seed: 1234, numRuns: SLOW ? 2000 : 200, endOnFailure: true },
    )
  })

  it('applies the same outcome everywhere when concurrent writers conflict', async () => {
    let index = 0
    const stores: MemoryStore[] = []
    const log: Uint8Array[] = []
    // Proposals are queued and committed later, so both writers build on the same state.
    const proposer: Proposer = (cmd) =>
      new Promise((resolve) => {
        log.push(cmd)
        setImmediate(() => {
          const next = log.shift()!
          index++
          for (const s of stores) s.apply(next, index)
          resolve(undefined)
        })
      })
    for (let i = 0; i < 2; i++) stores.push(new MemoryStore({ proposer }))
    const [a, b] = stores as [MemoryStore, MemoryStore]
    const r = await Promise.allSettled([
      a.update((tx) => tx.create('secrets', secret('x1', 'same'))),
      b.update((tx) => tx.create('secrets', secret('x2', 'same'))),
    ])
    expect(r.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect((r.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason.code).toBe(
      'NAME_CONFLICT',
    )
    expect(a.view((tx) => tx.find('secrets').map((s) => s.id))).toEqual(
      b.view((tx) => tx.find('secrets').map((s) => s.id)),
    )
    expect(a.version).toBe(2)
  })

  it('refuses malformed commands the same way on every member', () => {
    const s = new MemoryStore({ proposer: async () => undefined })
    expect(s.apply(new Uint8Array([0xc1]), 1)).toMatchObject({ ok: false, code: 'CORRUPT', version: 1 })
    expect(s.apply(new Uint8Array(0), 2)).toMatchObject({ ok: true, version: 2 })
    expect(s.apply(new Uint8Array([1]), 2)).toMatchObject({ ok: true, version: 2, changes: 0 })
    expect(() => s.apply(new Uint8Array(1), 0)).toThrow(RangeError)
  })
})
