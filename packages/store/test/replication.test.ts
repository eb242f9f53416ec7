import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ClusterStore, type Proposer, type Tx } from '../src/index.js'
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
  const stores: ClusterStore[] = []
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
  for (let i = 0; i < members; i++) stores.push(new ClusterStore({ proposer, clock: () => 1000 }))
  return { stores, drainLimbo }
}

describe('replicated ClusterStore', () => {
  it('fails a transaction at once, as not committed, when raft refused it before it reached a log', async () => {
    // A full disk: raft refuses the command up front (NO_SPACE, never proposed). No fence is needed to
    // settle it, and the caller hears it did not commit, with raft's reason.
    let calls = 0
    const proposer: Proposer = async () => {
      calls++
      throw Object.assign(raftError('NO_SPACE'), { neverProposed: true })
    }
    const store = new ClusterStore({ proposer })
    const failed = store.update((tx) => tx.create('secrets', secret('a', 'one')))
    await expect(failed).rejects.toMatchObject({
      code: 'PROPOSAL_FAILED',
      message: /not committed: raft: NO_SPACE/,
    })
    expect(calls).toBe(1)
  })

  it('reports each committed transaction to onCommit with its latency and size', async () => {
    const seen: { ms: number; changes: number }[] = []
    let index = 0
    let store: ClusterStore | undefined
    const proposer: Proposer = async (cmd) => {
      await Promise.resolve()
      store!.apply(cmd, ++index)
      return { index }
    }
    store = new ClusterStore({ proposer, onCommit: (info) => seen.push(info) })
    await store.update((tx) => {
      tx.create('secrets', secret('a', 'one'))
      tx.create('secrets', secret('b', 'two'))
    })
    await store.update(() => {}) // nothing to commit: not reported
    expect(seen).toHaveLength(1)
    expect(seen[0]!.changes).toBe(2)
    expect(seen[0]!.ms).toBeGreaterThanOrEqual(0)
  })

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
          const present = (s: ClusterStore) => new Set(s.view((tx) => tx.find('secrets').map((x) => x.id)))
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
    const stores: ClusterStore[] = []
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
    for (let i = 0; i < 2; i++) stores.push(new ClusterStore({ proposer }))
    const [a, b] = stores as [ClusterStore, ClusterStore]
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

  describe('a member whose replica lags behind the log', () => {
    // A log that commits at once but applies to member B only when told: B reads stale state meanwhile.
    function laggingPair() {
      const log: Uint8Array[] = []
      const appliedBy = new Map<ClusterStore, number>()
      const held = new Set<ClusterStore>()
      const stores: ClusterStore[] = []
      const deliver = (s: ClusterStore) => {
        for (let i = appliedBy.get(s) ?? 0; i < log.length; i++) s.apply(log[i]!, i + 1)
        appliedBy.set(s, log.length)
      }
      const proposer: Proposer = async (cmd) => {
        log.push(cmd)
        await Promise.resolve()
        for (const s of stores) if (!held.has(s)) deliver(s)
        return undefined
      }
      for (let i = 0; i < 2; i++) stores.push(new ClusterStore({ proposer, clock: () => 1000 }))
      const [a, b] = stores as [ClusterStore, ClusterStore]
      return {
        a,
        b,
        hold: (s: ClusterStore) => held.add(s),
        release: (s: ClusterStore) => {
          held.delete(s)
          deliver(s)
        },
      }
    }

    const bump = (tx: Tx, id: string) => {
      const cur = tx.get('secrets', id)!
      tx.update('secrets', {
        ...cur,
        spec: { ...cur.spec, labels: { n: String(Number(cur.spec.labels.n ?? 0) + 1) } },
      })
    }

    it('runs a transaction again on the newer state when a commit from elsewhere got in first', async () => {
      const { a, b, hold, release } = laggingPair()
      await a.update((tx) => tx.create('secrets', secret('s1', 'one')))
      hold(b)
      await a.update((tx) => bump(tx, 's1')) // b has not seen it
      let runs = 0
      const pending = b.update((tx) => {
        runs++
        bump(tx, 's1')
      })
      await Promise.resolve()
      release(b) // b applies a's bump, then its own command, which is refused as stale and retried
      await pending
      expect(runs).toBe(2)
      for (const s of [a, b]) expect(s.view((tx) => tx.get('secrets', 's1')!.spec.labels.n)).toBe('2')
      expect(a.version).toBe(b.version)
    })

    it('reports the conflict when retries are off', async () => {
      const { a, b, hold, release } = laggingPair()
      await a.update((tx) => tx.create('secrets', secret('s1', 'one')))
      hold(b)
      await a.update((tx) => bump(tx, 's1'))
      const pending = b.update((tx) => bump(tx, 's1'), { attempts: 1 })
      await Promise.resolve()
      release(b)
      await expect(pending).rejects.toMatchObject({ code: 'SEQUENCE' })
      expect(b.view((tx) => tx.get('secrets', 's1')!.spec.labels.n)).toBe('1')
      expect(() => b.update(() => undefined, { attempts: 0 })).toThrow(RangeError)
    })

    it('never retries a stale object the caller read earlier into a success', async () => {
      const { a, b } = laggingPair()
      await a.update((tx) => tx.create('secrets', secret('s1', 'one')))
      const stale = b.view((tx) => tx.get('secrets', 's1')!)
      await a.update((tx) => bump(tx, 's1'))
      let runs = 0
      await expect(
        b.update((tx) => {
          runs++
          tx.update('secrets', { ...stale, spec: { ...stale.spec, labels: { n: 'stale' } } })
        }),
      ).rejects.toMatchObject({ code: 'SEQUENCE' })
      expect(runs).toBe(1)
      expect(a.view((tx) => tx.get('secrets', 's1')!.spec.labels.n)).toBe('1')
    })
  })

  it('refuses malformed commands the same way on every member', () => {
    const s = new ClusterStore({ proposer: async () => undefined })
    expect(s.apply(new Uint8Array([0xc1]), 1)).toMatchObject({ ok: false, code: 'CORRUPT', version: 1 })
    expect(s.apply(new Uint8Array(0), 2)).toMatchObject({ ok: true, version: 2 })
    expect(s.apply(new Uint8Array([1]), 2)).toMatchObject({ ok: true, version: 2, changes: 0 })
    expect(() => s.apply(new Uint8Array(1), 0)).toThrow(RangeError)
  })
})
