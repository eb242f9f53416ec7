import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Entry, LogStorage, PersistedState, StorageUpdate } from '@swarmkit/raft'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { backupStateDir, forceNewCluster, MemoryStore } from '../src/index.js'
import { network, secret } from './fixtures.js'

/** The smallest LogStorage: what was saved, kept in memory (enough for forceNewCluster's reads and one write). */
function fakeStorage(initial?: PersistedState): LogStorage & { saved: StorageUpdate[] } {
  let state: PersistedState = initial ?? {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
  }
  const saved: StorageUpdate[] = []
  return {
    saved,
    async load() {
      return state
    },
    async save(u) {
      saved.push(u)
      state = {
        hardState: u.hardState ?? state.hardState,
        snapshot: u.snapshot ?? state.snapshot,
        entries: u.snapshot ? [] : state.entries,
      }
    },
    async snapshot() {
      return state.snapshot
    },
    async compact() {},
    async close() {},
  }
}

/** A raft log made by a store: each transaction one entry at term 2. */
async function logOf(fn: (s: MemoryStore) => Promise<void>): Promise<Entry[]> {
  const entries: Entry[] = [{ index: 1, term: 2, type: 0, data: new Uint8Array(0) }]
  const s = new MemoryStore({
    proposer: async (cmd) => {
      const e: Entry = { index: entries.length + 1, term: 2, type: 0, data: cmd }
      entries.push(e)
      s.apply(cmd, e.index)
    },
  })
  await fn(s)
  return entries
}

describe('forceNewCluster', () => {
  it('replays committed entries, drops the rest, and writes a one-member snapshot', async () => {
    const entries = await logOf(async (s) => {
      await s.update((tx) => tx.create('networks', network('n1', 'Unimatrix-01')))
      await s.update((tx) => tx.create('secrets', secret('x1', 'missing_drones', 'Seven of Nine')))
      await s.update((tx) => tx.create('secrets', secret('x2', 'uncommitted')))
    })
    const source = fakeStorage({ hardState: { term: 2, vote: 'm1', commit: 3 }, snapshot: null, entries })
    const target = fakeStorage()
    const r = await forceNewCluster(source, target, { memberId: 'm9', address: '10.0.0.9:2377' })
    expect(r).toMatchObject({ index: 3, term: 2, dropped: 1 })
    expect(target.saved).toHaveLength(1)
    const snap = target.saved[0]!.snapshot!
    expect(snap.meta).toEqual({
      index: 3,
      term: 2,
      conf: { voters: ['m9'], learners: [], addresses: { m9: '10.0.0.9:2377' } },
    })
    expect(target.saved[0]!.hardState).toEqual({ term: 2, vote: null, commit: 3 })
    const restored = new MemoryStore()
    restored.restore(snap.data)
    expect(
      restored.view((tx) => [
        tx.lookup('networks', 'Unimatrix-01').id,
        tx.lookup('secrets', 'missing_drones').id,
      ]),
    ).toEqual(['n1', 'x1'])
    expect(restored.view((tx) => tx.get('secrets', 'x2'))).toBeUndefined()
    expect(restored.version).toBe(3)
  })

  it('starts from the source snapshot and refuses a non-empty target', async () => {
    const entries = await logOf(async (s) => {
      await s.update((tx) => tx.create('networks', network('n1', 'a')))
      await s.update((tx) => tx.create('networks', network('n2', 'b')))
    })
    const base = new MemoryStore()
    base.apply(entries[1]!.data, 2)
    const source = fakeStorage({
      hardState: { term: 2, vote: null, commit: 3 },
      snapshot: {
        meta: { index: 2, term: 2, conf: { voters: ['a', 'b', 'c'], learners: [] } },
        data: base.snapshot(),
      },
      entries: entries.slice(2),
    })
    const r = await forceNewCluster(source, fakeStorage(), { memberId: 'm1' })
    expect(r.store.view((tx) => tx.find('networks').length)).toBe(2)
    const busy = fakeStorage({ hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: [] })
    await expect(forceNewCluster(source, busy, { memberId: 'm1' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
    await expect(forceNewCluster(source, fakeStorage(), { memberId: '' })).rejects.toThrow(TypeError)
  })
})

describe('backupStateDir', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'store-backup-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('copies the tree, skipping lock and temporary files, into an empty destination only', async () => {
    const src = join(root, 'swarm')
    await mkdir(join(src, 'raft'), { recursive: true })
    await writeFile(join(src, 'raft', 'wal-1.log'), 'log')
    await writeFile(join(src, 'raft', 'LOCK'), '123')
    await writeFile(join(src, 'keys.json'), '{}')
    await writeFile(join(src, 'keys.json.tmp'), 'partial')
    const r = await backupStateDir(src, join(root, 'backup'))
    expect(r).toEqual({ files: 2, bytes: 5 })
    expect(await readFile(join(root, 'backup', 'raft', 'wal-1.log'), 'utf8')).toBe('log')
    await expect(backupStateDir(src, join(root, 'backup'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
  })
})
