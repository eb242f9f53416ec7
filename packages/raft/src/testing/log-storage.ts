import { afterEach, describe, expect, it } from 'vitest'
import type { ConfState, Entry, LogStorage, PersistedState, Snapshot } from '../storage.js'

/** How the compliance suite gets storage to test. */
export interface LogStorageFactory {
  /** New, empty storage. */
  create(): Promise<LogStorage>
  /**
   * The same storage again after `close()` has resolved: a new object reading what the closed one persisted
   * (a memory implementation may return the same object).
   */
  reopen(closed: LogStorage): Promise<LogStorage>
  /** Releases what `create` made (temporary directories); called after each test with the last instance. */
  destroy?(storage: LogStorage): Promise<void>
}

const conf: ConfState = { voters: ['a', 'b', 'c'], learners: [] }

function ent(index: number, term: number, data?: string, type: 0 | 1 = 0): Entry {
  return { index, term, type, data: new TextEncoder().encode(data ?? `e${index}t${term}`) }
}

function range(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) out.push(ent(i, term))
  return out
}

function snap(index: number, term: number, data = `snapshot@${index}`): Snapshot {
  return { meta: { index, term, conf }, data: new TextEncoder().encode(data) }
}

/** Entries as comparable plain values. */
function plain(entries: readonly Entry[]): Array<[number, number, number, string]> {
  return entries.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString('hex')])
}

function plainState(s: PersistedState) {
  return {
    hardState: { ...s.hardState },
    snapshot: s.snapshot
      ? { meta: s.snapshot.meta, data: Buffer.from(s.snapshot.data).toString('hex') }
      : null,
    entries: plain(s.entries),
  }
}

/**
 * The `LogStorage` contract as a vitest suite. Every implementation runs it:
 *
 * ```ts
 * import { logStorageCompliance } from '@swarmkit/raft/testing'
 * logStorageCompliance('MemoryLogStorage', { create: async () => new MemoryLogStorage(), reopen: async (s) => s })
 * ```
 */
export function logStorageCompliance(name: string, factory: LogStorageFactory): void {
  describe(`LogStorage compliance: ${name}`, () => {
    let current: LogStorage | null = null

    async function fresh(): Promise<LogStorage> {
      current = await factory.create()
      return current
    }
    async function cycle(s: LogStorage): Promise<LogStorage> {
      await s.close()
      current = await factory.reopen(s)
      return current
    }
    /** What the storage reads back after a close and reopen, and the reopened storage. */
    async function reload(s: LogStorage): Promise<{ state: PersistedState; storage: LogStorage }> {
      const storage = await cycle(s)
      return { state: await storage.load(), storage }
    }

    afterEach(async () => {
      if (current) {
        const s = current
        current = null
        await s.close()
        await factory.destroy?.(s)
      }
    })

    it('loads an empty state when new', async () => {
      const s = await fresh()
      const state = await s.load()
      expect(state.hardState).toEqual({ term: 0, vote: null, commit: 0 })
      expect(state.snapshot).toBeNull()
      expect(state.entries).toEqual([])
      expect(await s.snapshot()).toBeNull()
    })

    it('reads back entries and hard state after close', async () => {
      const s = await fresh()
      await s.load()
      const entries = [...range(1, 3, 1), ent(4, 2, '', 0), ent(5, 2, 'conf', 1)]
      await s.save({ entries, hardState: { term: 2, vote: 'b', commit: 3 } })
      const { state } = await reload(s)
      expect(state.hardState).toEqual({ term: 2, vote: 'b', commit: 3 })
      expect(state.snapshot).toBeNull()
      expect(plain(state.entries)).toEqual(plain(entries))
    })

    it('keeps the latest hard state, including a null vote in a new term', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ hardState: { term: 1, vote: 'a', commit: 0 } })
      await s.save({ hardState: { term: 1, vote: 'a', commit: 0 } })
      await s.save({ hardState: { term: 3, vote: null, commit: 0 } })
      await s.save({ hardState: { term: 3, vote: null, commit: 0 } })
      const { state } = await reload(s)
      expect(state.hardState).toEqual({ term: 3, vote: null, commit: 0 })
    })

    it('replaces the stored suffix from the first entry of a save', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 5, 1) })
      await s.save({ entries: [ent(3, 2), ent(4, 2)] })
      const { state, storage } = await reload(s)
      expect(plain(state.entries)).toEqual(plain([...range(1, 2, 1), ent(3, 2), ent(4, 2)]))
      await storage.save({ entries: [ent(5, 2), ent(6, 3)] })
      await storage.save({ entries: [ent(2, 4)] })
      const again = await reload(storage)
      expect(plain(again.state.entries)).toEqual(plain([ent(1, 1), ent(2, 4)]))
    })

    it('applies a save in order: snapshot, then entries, then hard state', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 3, 1) })
      await s.save({
        snapshot: snap(10, 2),
        entries: range(11, 12, 2),
        hardState: { term: 2, vote: null, commit: 12 },
      })
      const { state } = await reload(s)
      expect(state.snapshot?.meta).toEqual({ index: 10, term: 2, conf })
      expect(plain(state.entries)).toEqual(plain(range(11, 12, 2)))
      expect(state.hardState).toEqual({ term: 2, vote: null, commit: 12 })
    })

    it('discards the stored log for a snapshot newer than every entry', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 5, 1) })
      await s.save({ snapshot: snap(20, 3) })
      let { state, storage } = await reload(s)
      expect(state.snapshot?.meta.index).toBe(20)
      expect(state.entries).toEqual([])
      await storage.save({ entries: range(21, 22, 3) })
      ;({ state, storage } = await reload(storage))
      expect(plain(state.entries)).toEqual(plain(range(21, 22, 3)))
    })

    it('discards the stored log for a snapshot that conflicts with the entry at its index', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 10, 1) })
      await s.save({ snapshot: snap(5, 2) })
      const { state } = await reload(s)
      expect(state.snapshot?.meta).toMatchObject({ index: 5, term: 2 })
      expect(state.entries).toEqual([])
    })

    it('keeps the entries after a snapshot of its own log and loads only those', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 10, 1) })
      await s.save({ snapshot: snap(6, 1) })
      const { state } = await reload(s)
      expect(state.snapshot?.meta).toMatchObject({ index: 6, term: 1 })
      expect(Buffer.from(state.snapshot!.data).toString()).toBe('snapshot@6')
      expect(plain(state.entries)).toEqual(plain(range(7, 10, 1)))
    })

    it('returns the latest snapshot with its data and membership', async () => {
      const conf = { voters: ['a'], learners: ['d'], addresses: { a: '10.0.0.1:7000' }, removed: ['b', 'c'] }
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 10, 1) })
      await s.save({ snapshot: snap(4, 1, 'first') })
      await s.save({
        snapshot: {
          meta: { index: 8, term: 1, conf },
          data: new Uint8Array(0),
        },
      })
      const latest = await s.snapshot()
      expect(latest?.meta).toEqual({ index: 8, term: 1, conf })
      expect(latest?.data.length).toBe(0)
      const { storage } = await reload(s)
      expect((await storage.snapshot())?.meta).toEqual({ index: 8, term: 1, conf })
    })

    it('compacts below the snapshot without changing what loads', async () => {
      const s = await fresh()
      await s.load()
      for (let i = 1; i <= 200; i += 10) await s.save({ entries: range(i, i + 9, 1) })
      await s.save({ snapshot: snap(150, 1), hardState: { term: 1, vote: 'a', commit: 180 } })
      await s.compact(140)
      await s.compact(150)
      await s.save({ entries: range(201, 205, 1) })
      const { state, storage } = await reload(s)
      expect(state.snapshot?.meta.index).toBe(150)
      expect(plain(state.entries)).toEqual(plain(range(151, 205, 1)))
      expect(state.hardState).toEqual({ term: 1, vote: 'a', commit: 180 })
      await storage.compact(150)
      expect(plainState(await (await reload(storage)).state)).toEqual(plainState(state))
    })

    it('makes every one of many concurrent saves durable, in call order', async () => {
      const s = await fresh()
      await s.load()
      const saves: Promise<void>[] = []
      for (let i = 1; i <= 100; i++) {
        saves.push(s.save({ entries: [ent(i, 1)], hardState: { term: 1, vote: 'a', commit: i - 1 } }))
      }
      saves.push(s.save({ entries: [ent(51, 2)], hardState: { term: 2, vote: null, commit: 50 } }))
      await Promise.all(saves)
      const { state } = await reload(s)
      expect(plain(state.entries)).toEqual(plain([...range(1, 50, 1), ent(51, 2)]))
      expect(state.hardState).toEqual({ term: 2, vote: null, commit: 50 })
    })

    it('round-trips large and empty entries byte for byte', async () => {
      const s = await fresh()
      await s.load()
      const big = new Uint8Array(1 << 20)
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24
      const entries: Entry[] = [
        { index: 1, term: 1, type: 0, data: big },
        { index: 2, term: 1, type: 0, data: new Uint8Array(0) },
        { index: 3, term: 1, type: 1, data: Uint8Array.of(0, 255, 0) },
      ]
      await s.save({ entries })
      const { state } = await reload(s)
      expect(state.entries.length).toBe(3)
      expect(Buffer.from(state.entries[0]!.data).equals(Buffer.from(big))).toBe(true)
      expect(plain(state.entries.slice(1))).toEqual(plain(entries.slice(1)))
    })

    it('can be closed and reopened many times', async () => {
      let s = await fresh()
      await s.load()
      for (let round = 1; round <= 5; round++) {
        await s.save({
          entries: [ent(round, round)],
          hardState: { term: round, vote: null, commit: round - 1 },
        })
        const r = await reload(s)
        s = r.storage
        expect(r.state.entries.map((e) => e.index)).toEqual(Array.from({ length: round }, (_, k) => k + 1))
        expect(r.state.hardState.term).toBe(round)
      }
    })

    it('rejects entries that would leave a gap', async () => {
      const s = await fresh()
      await s.load()
      await s.save({ entries: range(1, 3, 1) })
      await expect(s.save({ entries: [ent(5, 1)] })).rejects.toThrow(RangeError)
      await expect(s.save({ entries: [ent(4, 1), ent(6, 1)] })).rejects.toThrow(RangeError)
      await s.save({ entries: [ent(4, 1)] })
      const { state } = await reload(s)
      expect(state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4])
    })
  })
}

/**
 * The `LogStorage` compliance suite under its former name.
 * @deprecated Use {@link logStorageCompliance} (every compliance suite is named `xxxCompliance`).
 */
export const testLogStorage: (name: string, factory: LogStorageFactory) => void = logStorageCompliance
