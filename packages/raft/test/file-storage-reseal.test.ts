import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Entry, FileLogStorage, type FileLogStorageOptions, type SealContext } from '../src/index.js'
import { crc32c } from '../src/internal/wal/crc32c.js'

/**
 * A toy keyed sealer: the record names its key (one byte), a tag binds the context, the data is XORed with the
 * key. `ring` is the keys it opens with, the first the one it seals with; `opened` counts opens per key.
 */
function keyedSealer(ring: number[], opened = new Map<number, number>()) {
  const tag = (ctx: SealContext) =>
    crc32c(
      ctx.header ?? new Uint8Array(0),
      crc32c(new TextEncoder().encode(`${ctx.kind}:${ctx.index}:${ctx.term}`)),
    )
  const hooks: Pick<FileLogStorageOptions, 'seal' | 'open'> = {
    seal: (data, ctx) => {
      const key = ring[0]!
      const out = new Uint8Array(data.length + 5)
      out[0] = key
      new DataView(out.buffer).setUint32(1, tag(ctx))
      for (let i = 0; i < data.length; i++) out[i + 5] = data[i]! ^ key
      return out
    },
    open: (data, ctx) => {
      const key = data[0]!
      if (!ring.includes(key)) throw new Error(`no key ${key}`)
      if (new DataView(data.buffer, data.byteOffset).getUint32(1) !== tag(ctx))
        throw new Error('tag mismatch')
      opened.set(key, (opened.get(key) ?? 0) + 1)
      return data.subarray(5).map((b) => b ^ key)
    },
  }
  return { hooks, opened }
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++)
    out.push({ index: i, term, type: 0, data: new Uint8Array(40).fill(i & 0xff) })
  return out
}

const made: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raft-reseal-'))
  made.push(dir)
  return dir
}
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

const OLD = 0x11
const NEW = 0x22
const snapshotData = new Uint8Array(300).fill(7)

/** A log over several segments, a snapshot at 15 and entries to 30, written under OLD, then 31-35 under NEW. */
async function rotatedLog(
  dir: string,
  preallocateBytes?: number,
): Promise<{ ring: number[]; storage: FileLogStorage }> {
  const ring = [OLD]
  const { hooks } = keyedSealer(ring)
  const s = await FileLogStorage.open(dir, {
    ...hooks,
    segmentBytes: 1024,
    ...(preallocateBytes !== undefined && { preallocateBytes }),
  })
  await s.load()
  for (let i = 1; i <= 30; i += 5)
    await s.save({ entries: entries(i, i + 4, 1), hardState: { term: 1, vote: 'a', commit: i + 4 } })
  await s.save({
    snapshot: { meta: { index: 15, term: 1, conf: { voters: ['a'], learners: [] } }, data: snapshotData },
  })
  ring.unshift(NEW) // the data key rotates: NEW seals, OLD still opens
  await s.save({ entries: entries(31, 35, 2), hardState: { term: 2, vote: 'a', commit: 33 } })
  return { ring, storage: s }
}

/** Opens a copy of `dir` with both keys: how many records key `first` opened, and what the log holds. */
async function opensWith(
  dir: string,
  first: number,
): Promise<{ count: number; entries: number[]; snapshot: number }> {
  const copy = tempDir()
  for (const n of readdirSync(dir)) if (n !== 'LOCK') copyFileSync(join(dir, n), join(copy, n))
  const { hooks, opened } = keyedSealer([NEW, OLD])
  const s = await FileLogStorage.open(copy, hooks)
  const st = await s.load()
  await s.close()
  return {
    count: opened.get(first) ?? 0,
    entries: st.entries.map((e) => e.index),
    snapshot: st.snapshot?.meta.index ?? 0,
  }
}

describe('FileLogStorage.reseal', () => {
  it('writes the log and the snapshot again under the current key: nothing opens with the old one', async () => {
    const dir = tempDir()
    const { storage } = await rotatedLog(dir)
    const before = await opensWith(dir, OLD)
    expect(before.count).toBeGreaterThan(0)
    await storage.reseal()
    const after = await opensWith(dir, OLD)
    expect(after.count).toBe(0)
    expect(after.entries).toEqual(before.entries)
    expect(after.entries).toEqual(Array.from({ length: 20 }, (_, k) => 16 + k))
    expect(after.snapshot).toBe(15)
    // The log goes on: saves after the reseal, a snapshot, and a reopen with the new key alone.
    await storage.save({ entries: entries(36, 40, 2), hardState: { term: 2, vote: 'a', commit: 40 } })
    await storage.close()
    const { hooks } = keyedSealer([NEW])
    const again = await FileLogStorage.open(dir, hooks)
    const st = await again.load()
    expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 25 }, (_, k) => 16 + k))
    expect([...st.entries.at(-1)!.data]).toEqual(Array(40).fill(40))
    expect([...st.snapshot!.data]).toEqual([...snapshotData])
    expect(st.hardState).toEqual({ term: 2, vote: 'a', commit: 40 })
    await again.close()
  })

  it('replays to the same log when the old segments were only partly deleted (a crash mid-way)', async () => {
    const dir = tempDir()
    // Records only: the copies taken before the reseal stand for the old segments as it leaves them, and it
    // first cuts off the zeros written ahead of the last one's records (see file-storage-zero-tail.test.ts).
    const { storage } = await rotatedLog(dir, 0)
    const aside = tempDir()
    const oldSegments = readdirSync(dir).filter((n) => n.startsWith('wal-'))
    expect(oldSegments.length).toBeGreaterThan(2)
    for (const n of oldSegments) copyFileSync(join(dir, n), join(aside, n))
    await storage.reseal()
    await storage.close()
    // Put back the newest old segments, as if the crash came after the first deletions.
    for (const n of oldSegments.slice(1)) copyFileSync(join(aside, n), join(dir, n))
    const { hooks } = keyedSealer([NEW, OLD])
    const s = await FileLogStorage.open(dir, hooks)
    const st = await s.load()
    expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, k) => 16 + k))
    expect(st.snapshot?.meta.index).toBe(15)
    await s.close()
  })

  it('runs with compactions around it', async () => {
    const dir = tempDir()
    const { storage } = await rotatedLog(dir)
    await Promise.all([storage.compact(15), storage.reseal(), storage.compact(15)])
    const after = await opensWith(dir, OLD)
    expect(after.count).toBe(0)
    expect(after.entries).toEqual(Array.from({ length: 20 }, (_, k) => 16 + k))
    await storage.close()
  })

  it('is refused without seal hooks', async () => {
    const s = await FileLogStorage.open(tempDir())
    await s.load()
    await expect(s.reseal()).rejects.toThrow(TypeError)
    await s.close()
  })
})
