// FileLogStorage on a disk that fills up: a write that finds no space is cut back to the last complete record
// (synced, so that a power cut right after brings none of it back), the save rejects with NO_SPACE, and the
// next save is taken as if the refused one had never been made. A failed sync stays final (fsyncgate).
import { describe, expect, it } from 'vitest'
import { type Entry, FileLogStorage, isRaftError, type Snapshot } from '../src/index.js'
import { type PowerLossFileSystem, powerLossFileSystem } from '../src/testing/index.js'
import { type FullDiskFileSystem, fullDiskFileSystem } from './helpers/full-disk-fs.js'

const DIR = '/raft/wal'
const CONF = { voters: ['n1'], learners: [] }

function entries(from: number, n: number, term: number, size = 100): Entry[] {
  const out: Entry[] = []
  for (let i = from; i < from + n; i++)
    out.push({ index: i, term, type: 0, data: new Uint8Array(size).fill(i & 0xff) })
  return out
}

function snapshot(index: number, term: number, size = 2000): Snapshot {
  return { meta: { index, term, conf: CONF }, data: new Uint8Array(size).fill(index & 0xff) }
}

interface Disk {
  base: PowerLossFileSystem
  files: FullDiskFileSystem
}

function disk(): Disk {
  const base = powerLossFileSystem({ unsynced: 'random', seed: 7 })
  return { base, files: fullDiskFileSystem(base) }
}

/**
 * Without zeros written ahead (`preallocateBytes` 0) unless asked: the tests count the writes that fail and the
 * bytes the file holds.
 */
async function open(d: Disk, segmentBytes = 64 * 1024, preallocateBytes = 0): Promise<FileLogStorage> {
  return FileLogStorage.open(DIR, { fileSystem: d.files, segmentBytes, nodeId: 'n1', preallocateBytes })
}

/** What a fresh open reads after the power is cut now: only what was durable. */
async function afterPowerCut(d: Disk) {
  const files = d.base.powerCut()
  const s = await FileLogStorage.open(DIR, { fileSystem: files, nodeId: 'n1' })
  const state = await s.load()
  await s.close()
  return summary(state)
}

function summary(state: Awaited<ReturnType<FileLogStorage['load']>>) {
  return {
    snapshot: state.snapshot ? `${state.snapshot.meta.index}/${state.snapshot.meta.term}` : null,
    entries: state.entries.map((e) => `${e.index}/${e.term}`),
    hard: state.hardState,
  }
}

const indexes = (from: number, to: number, term: number) =>
  Array.from({ length: to - from + 1 }, (_, k) => `${from + k}/${term}`)

const isNoSpace = (e: unknown) => isRaftError(e, 'NO_SPACE')

describe('FileLogStorage on a full disk', () => {
  it('rejects a save whose write finds no space with NO_SPACE, and takes the same save again', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 'n1', commit: 3 } })
    d.files.failWrite(1)
    const refused = await s.save({ entries: entries(6, 5, 1) }).catch((e) => e)
    expect(isNoSpace(refused), String(refused)).toBe(true)
    expect(refused.message).toMatch(/ENOSPC/)
    await s.save({ entries: entries(6, 5, 1) })
    await s.save({ entries: entries(11, 1, 2), hardState: { term: 2, vote: null, commit: 10 } })
    expect(summary(await s.load()).entries).toEqual([...indexes(1, 10, 1), '11/2'])
    expect(await afterPowerCut(d)).toEqual({
      snapshot: null,
      entries: [...indexes(1, 10, 1), '11/2'],
      hard: { term: 2, vote: null, commit: 10 },
    })
  })

  it('cuts a partial write back to the last complete record, synced: nothing of it comes back', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 3, 1), hardState: { term: 1, vote: 'n1', commit: 1 } })
    const before = await tailSize(d)
    // 150 bytes of the next save reach the file (a whole record and part of one), then the disk is full.
    d.files.failWrite(1, 150)
    await expect(
      s.save({ entries: entries(4, 3, 1), hardState: { term: 1, vote: 'n1', commit: 3 } }),
    ).rejects.toSatisfy(isNoSpace)
    expect(await tailSize(d)).toBe(before)
    expect(await afterPowerCut(d)).toEqual({
      snapshot: null,
      entries: indexes(1, 3, 1),
      hard: { term: 1, vote: 'n1', commit: 1 },
    })
  })

  it('keeps taking saves while the disk is full, refusing each, and writes again once space returns', async () => {
    const d = disk()
    const s = await open(d, 4096)
    await s.save({ entries: entries(1, 10, 1) })
    d.files.room = 300
    let next = 11
    let refused = 0
    for (let k = 0; k < 20; k++) {
      try {
        await s.save({ entries: entries(next, 4, 1) })
        next += 4
      } catch (e) {
        expect(isNoSpace(e), String(e)).toBe(true)
        refused++
      }
    }
    expect(refused).toBeGreaterThan(15)
    d.files.room = Number.POSITIVE_INFINITY
    // Across several segment rolls: a roll that found the disk full left no segment behind.
    for (let k = 0; k < 20; k++, next += 4) await s.save({ entries: entries(next, 4, 1) })
    expect(summary(await s.load()).entries).toEqual(indexes(1, next - 1, 1))
    expect((await afterPowerCut(d)).entries).toEqual(indexes(1, next - 1, 1))
  })

  it('removes a segment it was starting when the disk filled, and starts it again later', async () => {
    const d = disk()
    const s = await open(d, 4096)
    let next = 1
    while (s.stats().segments === 1) {
      await s.save({ entries: entries(next, 4, 1) })
      next += 4
    }
    const segments = s.stats().segments
    // Fill the current segment to its end and let the roll (the new segment's header) find no space.
    d.files.room = 0
    for (let k = 0; k < 5; k++)
      await expect(s.save({ entries: entries(next, 30, 1) })).rejects.toSatisfy(isNoSpace)
    expect(s.stats().segments).toBe(segments)
    const names = (await d.base.readdir(DIR)).filter((n) => n.startsWith('wal-'))
    expect(names).toHaveLength(segments)
    d.files.room = Number.POSITIVE_INFINITY
    await s.save({ entries: entries(next, 30, 1) })
    expect(summary(await s.load()).entries).toEqual(indexes(1, next + 29, 1))
  })

  it('rejects every save queued behind a refused one, and takes them again in order', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 2, 1) })
    d.files.failWrite(1)
    const saves = [
      s.save({ entries: entries(3, 2, 1) }),
      s.save({ entries: entries(5, 2, 2), hardState: { term: 2, vote: 'n1', commit: 2 } }),
      s.save({ entries: entries(7, 1, 2) }),
    ]
    const results = await Promise.allSettled(saves)
    expect(
      results.map((r) => (r.status === 'rejected' && isNoSpace(r.reason) ? 'refused' : r.status)),
    ).toEqual(['refused', 'refused', 'refused'])
    // Accepted as if none of them had been made: a save that only fits after them is refused as a gap.
    await expect(s.save({ entries: entries(8, 1, 2) })).rejects.toThrow(RangeError)
    await s.save({ entries: entries(3, 2, 1) })
    await s.save({ entries: entries(5, 2, 2), hardState: { term: 2, vote: 'n1', commit: 2 } })
    await s.save({ entries: entries(7, 1, 2) })
    expect(await afterPowerCut(d)).toEqual({
      snapshot: null,
      entries: [...indexes(1, 4, 1), ...indexes(5, 7, 2)],
      hard: { term: 2, vote: 'n1', commit: 2 },
    })
  })

  it('leaves the old snapshot and the log usable when a snapshot file finds no space', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 20, 1) })
    await s.save({ snapshot: snapshot(10, 1) })
    await s.compact(10)
    d.files.room = 1000
    // A snapshot of the node's own log (written off the log's path) and one from a leader (discarding the log).
    await expect(s.save({ snapshot: snapshot(15, 1) })).rejects.toSatisfy(isNoSpace)
    d.files.room = 1000 // the partial file was deleted
    await expect(s.save({ snapshot: snapshot(40, 3) })).rejects.toSatisfy(isNoSpace)
    d.files.room = 1000
    expect((await d.base.readdir(DIR)).filter((n) => n.startsWith('snap-'))).toEqual([
      'snap-000000000000000a-0000000000000001.snap',
    ])
    expect((await s.snapshot())?.meta.index).toBe(10)
    await s.save({ entries: entries(21, 2, 1) })
    expect(summary(await s.load())).toMatchObject({ snapshot: '10/1', entries: indexes(11, 22, 1) })
    d.files.room = Number.POSITIVE_INFINITY
    await s.save({ snapshot: snapshot(15, 1) })
    await s.compact(15)
    expect(await afterPowerCut(d)).toMatchObject({ snapshot: '15/1', entries: indexes(16, 22, 1) })
  })

  it('never writes the record of a snapshot whose file found no space', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 20, 1) })
    // The file's first write fails; the record that would refer to it has room enough.
    d.files.failWrite(1)
    await expect(s.save({ snapshot: snapshot(15, 1) })).rejects.toSatisfy(isNoSpace)
    expect(await s.snapshot()).toBeNull()
    expect(await afterPowerCut(d)).toMatchObject({ snapshot: null, entries: indexes(1, 20, 1) })
  })

  it('deletes the file of a snapshot from the leader whose record found no space', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 5, 1) })
    // A snapshot past the log is written with the save: its file (header, data, checksum), then the record.
    d.files.failWrite(4)
    await expect(
      s.save({ snapshot: snapshot(40, 3), hardState: { term: 3, vote: null, commit: 40 } }),
    ).rejects.toSatisfy(isNoSpace)
    expect((await d.base.readdir(DIR)).filter((n) => n.startsWith('snap-'))).toEqual([])
    await s.save({ snapshot: snapshot(40, 3), hardState: { term: 3, vote: null, commit: 40 } })
    expect(await afterPowerCut(d)).toMatchObject({ snapshot: '40/3', entries: [] })
  })

  it('cuts back into the segment a batch began in while compaction deletes the segments before it', async () => {
    for (const failAt of [2, 3]) {
      const d = disk()
      const s = await open(d, 1024)
      let next = 1
      while (s.stats().segments < 30) {
        await s.save({ entries: entries(next, 2, 1) })
        next += 2
      }
      const last = next - 1
      await s.save({ snapshot: snapshot(last, 1) })
      // Compaction deletes 29 segments, one at a time; meanwhile a save whose first entry does not fit in the
      // last segment starts the next (its first index is past the compaction point, so compaction may delete
      // the one before it) and finds the disk full once compaction is done.
      d.files.unlinkTurns = 20
      const compacting = s.compact(last)
      while (s.stats().segments === 30) await new Promise((r) => setImmediate(r))
      d.files.failWrite(failAt)
      d.files.beforeFailing = () => compacting
      const refused = await s.save({ entries: entries(next, 3, 1, 1000) }).catch((e) => e)
      await compacting
      expect(isNoSpace(refused), `write ${failAt}: ${refused}`).toBe(true)
      await s.save({ entries: entries(next, 3, 1, 1000) })
      expect(await afterPowerCut(d)).toMatchObject({
        snapshot: `${last}/1`,
        entries: indexes(next, next + 2, 1),
      })
    }
  })

  it('refuses a reseal that finds no space and keeps the log as it was', async () => {
    const d = disk()
    const seal = (b: Uint8Array) => b.map((x) => x ^ 1)
    const s = await FileLogStorage.open(DIR, { fileSystem: d.files, seal, open: seal, nodeId: 'n1' })
    await s.save({ entries: entries(1, 20, 1) })
    await s.save({ snapshot: snapshot(5, 1) })
    d.files.room = 500
    await expect(s.reseal()).rejects.toSatisfy(isNoSpace)
    d.files.room = Number.POSITIVE_INFINITY
    await s.save({ entries: entries(21, 1, 1) })
    await s.reseal()
    expect(summary(await s.load())).toMatchObject({ snapshot: '5/1', entries: indexes(6, 21, 1) })
    expect((await d.base.readdir(DIR)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('stops for good after a failed sync, even one that says ENOSPC (fsyncgate)', async () => {
    const d = disk()
    const s = await open(d)
    await s.save({ entries: entries(1, 20, 1) })
    // One sync fails, with the errno a full disk gives; the ones after it would work.
    d.files.failSyncOnce('ENOSPC')
    const failed = await s.save({ snapshot: snapshot(10, 1) }).catch((e) => e)
    expect(isRaftError(failed, 'IO'), String(failed)).toBe(true)
    await expect(s.save({ entries: entries(21, 1, 1) })).rejects.toSatisfy((e) => isRaftError(e, 'IO'))
    await s.close()
  })

  it('stops for good when a new segment cannot be synced into its directory', async () => {
    const d = disk()
    const s = await open(d, 4096)
    d.files.syncError = 'EIO'
    let next = 1
    let failed: unknown
    while (failed === undefined) {
      failed = await s.save({ entries: entries(next, 10, 1) }).then(
        () => undefined,
        (e) => e,
      )
      next += 10
    }
    expect(isRaftError(failed, 'IO'), String(failed)).toBe(true)
    d.files.syncError = null
    await expect(s.save({ hardState: { term: 1, vote: null, commit: 0 } })).rejects.toSatisfy((e) =>
      isRaftError(e, 'IO'),
    )
    await s.close()
  })
})

/** The size of the last segment file as it is now. */
async function tailSize(d: Disk): Promise<number> {
  const names = (await d.base.readdir(DIR)).filter((n) => n.startsWith('wal-')).sort()
  return d.base.contents(`${DIR}/${names.at(-1)}`)!.length
}
