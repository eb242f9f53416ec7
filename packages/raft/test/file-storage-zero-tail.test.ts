// Zeros written ahead of the records (`preallocateBytes`, internal/wal/zero-tail.ts): saves write into space the
// segment already holds instead of appending to it; the zeros read as a torn tail at open and are cut; a segment
// is cut back to its records before the next one starts. Power cuts during a fill, reopening a segment that ends
// in zeros, and fills that fail are covered here; file-storage-power-loss.test.ts runs its random power cuts
// with fills on (its 4 KiB segments get one every save or two).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Entry, FileLogStorage, type FileSystem, isRaftError, nodeFileSystem } from '../src/index.js'
import { type PowerLossFileSystem, powerLossFileSystem } from '../src/testing/index.js'
import { errno, fullDiskFileSystem } from './helpers/full-disk-fs.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raft-zeros-'))
  dirs.push(d)
  return d
}

function entries(from: number, n: number, size = 200): Entry[] {
  return Array.from({ length: n }, (_, k) => ({
    index: from + k,
    term: 1,
    type: 0 as const,
    data: new Uint8Array(size).fill((from + k) & 0xff),
  }))
}

const isZeros = (bufs: readonly Uint8Array[]) => bufs.every((b) => b.every((x) => x === 0))

/** Where the records of segment file `buf` end: after the last whole record (length and body in the file). */
function recordsEnd(buf: Buffer): number {
  let off = 0
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32LE(off)
    if (len === 0 || off + 8 + len > buf.length) break
    off += 8 + len
  }
  return off
}

const segments = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('wal-'))
    .sort()

async function indexes(dir: string, options: object = {}): Promise<number[]> {
  const s = await FileLogStorage.open(dir, options)
  const got = (await s.load()).entries
  await s.close()
  return got.map((e) => e.index)
}

/**
 * `inner` with each write of log records classified: `appends` counts those that reached past everything
 * written to the file before (the file grew), `into` those that went into space it held.
 */
function watching(inner: FileSystem) {
  const ends = new Map<number, number>()
  const seen = { appends: 0, into: 0, fills: 0 }
  const note = (fd: number, bufs: readonly Uint8Array[], pos: number) => {
    const end = pos + bufs.reduce((n, b) => n + b.byteLength, 0)
    if (isZeros(bufs)) seen.fills++
    else if (pos > 0 && end > (ends.get(fd) ?? 0)) seen.appends++
    else if (pos > 0) seen.into++
    ends.set(fd, Math.max(ends.get(fd) ?? 0, end))
  }
  const files: FileSystem = {
    ...inner,
    writev: (fd, bufs, pos) => {
      note(fd, bufs, pos)
      return inner.writev(fd, bufs, pos)
    },
    writevSync: (fd, bufs, pos) => {
      note(fd, bufs, pos)
      return inner.writevSync!(fd, bufs, pos)
    },
  }
  return { files, seen }
}

describe('FileLogStorage zeros written ahead (preallocateBytes)', () => {
  it('writes saves into zeros written ahead, never growing the file with a save', async () => {
    const dir = tempDir()
    const { files, seen } = watching(nodeFileSystem)
    const s = await FileLogStorage.open(dir, { fileSystem: files, preallocateBytes: 16 * 1024 })
    await s.load()
    for (let i = 1; i <= 400; i += 2) await s.save({ entries: entries(i, 2) }, { inline: i % 4 === 1 })
    await s.close()
    expect(seen.appends).toBe(0)
    expect(seen.into).toBeGreaterThan(150)
    expect(seen.fills).toBeGreaterThan(3)
    // The file holds zeros past its records; a reopen reads every record.
    const [seg] = segments(dir)
    const buf = readFileSync(join(dir, seg!))
    expect(buf.length).toBeGreaterThan(recordsEnd(buf))
    expect(buf.subarray(recordsEnd(buf)).every((x) => x === 0)).toBe(true)
    expect(await indexes(dir)).toEqual(Array.from({ length: 400 }, (_, k) => k + 1))
  })

  it('reopens a segment that ends in zeros: cuts them, keeps every record, and writes on', async () => {
    const dir = tempDir()
    const s = await FileLogStorage.open(dir, { preallocateBytes: 32 * 1024 })
    await s.save({ entries: entries(1, 10) })
    await s.close()
    const path = join(dir, segments(dir)[0]!)
    const first = readFileSync(path)
    expect(first.length - recordsEnd(first)).toBeGreaterThan(16 * 1024)
    for (let round = 0; round < 3; round++) {
      const again = await FileLogStorage.open(dir, { preallocateBytes: 32 * 1024 })
      expect((await again.load()).entries.map((e) => e.index)).toEqual(
        Array.from({ length: 10 + round * 10 }, (_, k) => k + 1),
      )
      await again.save({ entries: entries(11 + round * 10, 10) })
      await again.close()
    }
    const buf = readFileSync(path)
    expect(recordsEnd(buf)).toBeGreaterThan(recordsEnd(first))
    expect(buf.subarray(recordsEnd(buf)).every((x) => x === 0)).toBe(true)
    // Without zeros ahead, the same directory opens and its tail is cut to the records.
    expect(await indexes(dir, { preallocateBytes: 0 })).toHaveLength(40)
    expect(statSync(path).size).toBe(recordsEnd(buf))
  })

  it('cuts the zeros off a segment before the next one starts: every segment but the last is records only', async () => {
    const dir = tempDir()
    const s = await FileLogStorage.open(dir, { segmentBytes: 8 * 1024, preallocateBytes: 4 * 1024 })
    await s.load()
    for (let i = 1; i <= 300; i += 3) await s.save({ entries: entries(i, 3) }, { inline: i % 2 === 1 })
    await s.close()
    const names = segments(dir)
    expect(names.length).toBeGreaterThan(5)
    for (const n of names.slice(0, -1)) {
      const buf = readFileSync(join(dir, n))
      expect(recordsEnd(buf), n).toBe(buf.length)
    }
    expect(await indexes(dir)).toEqual(Array.from({ length: 300 }, (_, k) => k + 1))
  })

  it('keeps every acknowledged save when the power is cut while zeros are being written', async () => {
    for (let seed = 1; seed <= 24; seed++) {
      const base = powerLossFileSystem({ seed, unsynced: seed % 3 === 0 ? 'drop' : 'random' })
      let cut: PowerLossFileSystem | null = null
      let fills = 0
      const cutAt = 1 + (seed % 5)
      // The power goes while the `cutAt`th fill is in flight (issued, not yet durable).
      const files: FileSystem = {
        ...bound(base),
        writev: (fd, bufs, pos) => {
          const p = base.writev(fd, bufs, pos)
          if (cut === null && isZeros(bufs) && ++fills === cutAt) cut = base.powerCut()
          return p
        },
      }
      const options = { segmentBytes: 16 * 1024, preallocateBytes: 2048, nodeId: 'n1' }
      const s = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: files })
      let acked = 0
      for (let i = 1; cut === null; i += 2) {
        const ok = await s
          .save({ entries: entries(i, 2, 150) }, { inline: (seed + i) % 3 === 0 })
          .then(() => true)
          .catch(() => false)
        if (!ok) break
        if (cut === null) acked = i + 1
      }
      expect(cut, `seed ${seed}`).not.toBeNull()
      const after = cut as unknown as PowerLossFileSystem
      const again = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: after })
      const got = (await again.load()).entries.map((e) => e.index)
      expect(got.slice(0, acked), `seed ${seed}`).toEqual(Array.from({ length: acked }, (_, k) => k + 1))
      // It writes on, into zeros of its own again, and reads back after another cut.
      const next = got.length + 1
      for (let i = next; i < next + 40; i += 4) await again.save({ entries: entries(i, 4, 150) })
      const last = again
      const third = after.powerCut()
      void last.close().catch(() => {})
      expect(await indexesOn(third, options), `seed ${seed}`).toEqual(
        Array.from({ length: next + 39 }, (_, k) => k + 1),
      )
    }
  })

  it('takes saves on when a fill finds the disk full, and stops for good when a fill fails otherwise', async () => {
    for (const code of ['ENOSPC', 'EIO']) {
      const base = powerLossFileSystem({ unsynced: 'drop' })
      let failing = false
      const files: FileSystem = {
        ...bound(base),
        writev: (fd, bufs, pos) =>
          failing && isZeros(bufs) ? Promise.reject(errno(code, 'write')) : base.writev(fd, bufs, pos),
      }
      const options = { segmentBytes: 32 * 1024, preallocateBytes: 1024, nodeId: 'n1' }
      const s = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: files })
      await s.save({ entries: entries(1, 2) })
      failing = true
      const results: unknown[] = []
      for (let i = 3; i < 60; i += 2) results.push(await s.save({ entries: entries(i, 2) }).catch((e) => e))
      if (code === 'ENOSPC') {
        expect(results.every((r) => r === undefined)).toBe(true)
        expect(await indexesOn(base.powerCut(), options)).toHaveLength(60)
      } else {
        expect(results.some((r) => r === undefined)).toBe(true)
        const failure = results.find((r) => r !== undefined)
        expect(isRaftError(failure, 'IO'), String(failure)).toBe(true)
        expect(results.slice(results.indexOf(failure)).every((r) => isRaftError(r, 'IO'))).toBe(true)
      }
      await s.close().catch(() => {})
    }
  })

  it('cuts back a save that found the disk full while zeros were being written ahead', async () => {
    // Every write takes a few turns of the event loop, so that the fill is still in flight when the next save's
    // write fails: the cut back must wait for it (a truncation racing a write has no defined result).
    const turns = () => new Promise<void>((r) => setTimeout(r, 2))
    const base = powerLossFileSystem({ unsynced: 'random', seed: 3, latency: turns })
    const disk = fullDiskFileSystem(base)
    let filling = 0
    let recordsEnd = 0
    /** Zeros already durable past the records when the fill in flight began. */
    let ahead = 0
    const files: FileSystem = {
      ...disk,
      writev: (fd, bufs, pos) => {
        if (!isZeros(bufs)) {
          recordsEnd = pos + bufs.reduce((n, b) => n + b.byteLength, 0)
          return disk.writev(fd, bufs, pos)
        }
        filling++
        ahead = pos - recordsEnd
        return disk.writev(fd, bufs, pos).finally(() => filling--)
      },
    }
    const options = { segmentBytes: 64 * 1024, preallocateBytes: 4096, nodeId: 'n1' }
    const s = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: files })
    let next = 1
    let refused = 0
    while (refused < 3) {
      // The next save fits in the zeros before the fill: its write does not wait for the fill.
      if (filling > 0 && ahead > 600) {
        disk.failWrite(1)
        const e = await s.save({ entries: entries(next, 2) }).catch((err) => err)
        expect(isRaftError(e, 'NO_SPACE'), String(e)).toBe(true)
        refused++
      }
      await s.save({ entries: entries(next, 2) })
      next += 2
    }
    expect(await indexesOn(base.powerCut(), options)).toEqual(
      Array.from({ length: next - 1 }, (_, k) => k + 1),
    )
  })

  it('cuts the zeros off the last segment before a reseal writes the new one (a crash before the old go)', async () => {
    const seal = (b: Uint8Array) => b.map((x) => x ^ 0x5a)
    for (const unlinks of [0, 1, 2]) {
      const base = powerLossFileSystem({ unsynced: 'drop', seed: unlinks + 1 })
      let resealing = false
      let cut: PowerLossFileSystem | null = null
      let seen = 0
      // The power goes after the new segment is in place and `unlinks` old ones were deleted.
      const files: FileSystem = {
        ...bound(base),
        unlink: async (path) => {
          if (resealing && cut === null && path.endsWith('.log') && seen++ === unlinks) {
            cut = base.powerCut()
            throw errno('EIO', 'unlink')
          }
          return base.unlink(path)
        },
      }
      const options = { segmentBytes: 4096, preallocateBytes: 2048, seal, open: seal, nodeId: 'n1' }
      const s = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: files })
      for (let i = 1; i <= 60; i += 3) await s.save({ entries: entries(i, 3) })
      resealing = true
      await s.reseal().catch(() => {})
      expect(cut).not.toBeNull()
      await s.close().catch(() => {})
      expect(await indexesOn(cut as unknown as PowerLossFileSystem, options)).toEqual(
        Array.from({ length: 60 }, (_, k) => k + 1),
      )
    }
  })

  it('checks the option', async () => {
    for (const preallocateBytes of [-1, 1.5, 65 * 1024 * 1024])
      await expect(FileLogStorage.open(tempDir(), { preallocateBytes })).rejects.toThrow(RangeError)
  })
})

async function indexesOn(files: FileSystem, options: object): Promise<number[]> {
  const s = await FileLogStorage.open('/raft/wal', { ...options, fileSystem: files })
  const got = (await s.load()).entries.map((e) => e.index)
  await s.close()
  return got
}

/** The methods of `files` bound to it, as a plain object to spread. */
function bound(files: FileSystem): FileSystem {
  const out: Record<string, unknown> = {}
  for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(files)))
    if (k !== 'constructor' && typeof (files as unknown as Record<string, unknown>)[k] === 'function')
      out[k] = (files as unknown as Record<string, (...a: unknown[]) => unknown>)[k]!.bind(files)
  return out as unknown as FileSystem
}
