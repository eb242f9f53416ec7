import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Entry,
  type EntryType,
  FileLogStorage,
  type FileLogStorageOptions,
  type LogStorage,
} from '../src/index.js'
import { crc32c } from '../src/internal/wal/crc32c.js'
import { logStorageCompliance } from '../src/testing/index.js'

const dirs = new Map<LogStorage, string>()

logStorageCompliance('FileLogStorage', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'raft-file-'))
    // Small segments so that the suite crosses segment boundaries and compaction deletes files.
    const s = await FileLogStorage.open(dir, { segmentBytes: 2048 })
    dirs.set(s, dir)
    return s
  },
  async reopen(closed) {
    const dir = dirs.get(closed)!
    const s = await FileLogStorage.open(dir, { segmentBytes: 2048 })
    dirs.set(s, dir)
    return s
  },
  async destroy(s) {
    rmSync(dirs.get(s)!, { recursive: true, force: true })
  },
})

/**
 * A toy sealer for tests: XOR with a key byte, behind a 4-byte tag over the context (and, for a run of entries,
 * the record's readable header), so that a changed index, term, type or length fails to open.
 */
function toySealer(seen?: string[]): Pick<FileLogStorageOptions, 'seal' | 'open'> {
  const tag = (ctx: { kind: string; index: number; term: number; type: number; header?: Uint8Array }) => {
    const head = new TextEncoder().encode(`${ctx.kind}:${ctx.index}:${ctx.term}:${ctx.type}`)
    return crc32c(ctx.header ?? new Uint8Array(0), crc32c(head))
  }
  return {
    seal: (data, ctx) => {
      seen?.push(ctx.kind === 'entries' ? `entries:${ctx.index}:${ctx.count}` : `${ctx.kind}:${ctx.index}`)
      const out = new Uint8Array(data.length + 4)
      new DataView(out.buffer).setUint32(0, tag(ctx))
      for (let i = 0; i < data.length; i++) out[i + 4] = data[i]! ^ 0x5a
      return out
    },
    open: (data, ctx) => {
      if (data.length < 4 || new DataView(data.buffer, data.byteOffset).getUint32(0) !== tag(ctx)) {
        throw new Error('authentication failed')
      }
      return data.subarray(4).map((b) => b ^ 0x5a)
    },
  }
}

/**
 * A toy sealer whose 4-byte tag ends the sealed data and covers all of it (as an AEAD's does): for the
 * `sealTagBytes` option, under which records checksum only their readable part and the tag.
 */
function taggedToySealer(): Pick<FileLogStorageOptions, 'seal' | 'open' | 'sealTagBytes'> {
  const tag = (ctx: { kind: string; index: number; term: number; header?: Uint8Array }, sealed: Uint8Array) =>
    crc32c(
      sealed,
      crc32c(
        ctx.header ?? new Uint8Array(0),
        crc32c(new TextEncoder().encode(`${ctx.kind}:${ctx.index}:${ctx.term}`)),
      ),
    )
  return {
    sealTagBytes: 4,
    seal: (data, ctx) => {
      const out = new Uint8Array(data.length + 4)
      for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ 0xa5
      new DataView(out.buffer).setUint32(data.length, tag(ctx, out.subarray(0, data.length)))
      return out
    },
    open: (data, ctx) => {
      const body = data.subarray(0, data.length - 4)
      if (
        data.length < 4 ||
        new DataView(data.buffer, data.byteOffset).getUint32(data.length - 4) !== tag(ctx, body)
      )
        throw new Error('authentication failed')
      return body.map((b) => b ^ 0xa5)
    },
  }
}

for (const batchSeal of [false, true]) {
  logStorageCompliance(
    `FileLogStorage with sealed records checksummed by their tag (batchSeal ${batchSeal})`,
    {
      async create() {
        const dir = mkdtempSync(join(tmpdir(), 'raft-file-'))
        const s = await FileLogStorage.open(dir, { segmentBytes: 2048, batchSeal, ...taggedToySealer() })
        dirs.set(s, dir)
        return s
      },
      async reopen(closed) {
        const dir = dirs.get(closed)!
        const s = await FileLogStorage.open(dir, { segmentBytes: 2048, batchSeal, ...taggedToySealer() })
        dirs.set(s, dir)
        return s
      },
      async destroy(s) {
        rmSync(dirs.get(s)!, { recursive: true, force: true })
      },
    },
  )
}

logStorageCompliance('FileLogStorage sealing each save as one record (batchSeal)', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'raft-file-'))
    const s = await FileLogStorage.open(dir, { segmentBytes: 2048, batchSeal: true, ...toySealer() })
    dirs.set(s, dir)
    return s
  },
  async reopen(closed) {
    const dir = dirs.get(closed)!
    const s = await FileLogStorage.open(dir, { segmentBytes: 2048, batchSeal: true, ...toySealer() })
    dirs.set(s, dir)
    return s
  },
  async destroy(s) {
    rmSync(dirs.get(s)!, { recursive: true, force: true })
  },
})

/** The offsets and bodies of the records of a segment file (the checksums are not checked). */
function records(file: Buffer): { off: number; body: Buffer }[] {
  const out: { off: number; body: Buffer }[] = []
  for (let off = 0; off + 8 <= file.length; ) {
    const len = file.readUInt32LE(off)
    out.push({ off, body: file.subarray(off + 8, off + 8 + len) })
    off += 8 + len
  }
  return out
}

const made: string[] = []
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** For tests that read or cut the segment files themselves: records only, no zeros written ahead of them. */
const APPEND_ONLY = { preallocateBytes: 0 }

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raft-file-'))
  made.push(dir)
  return dir
}
const open: FileLogStorage[] = []
async function openStorage(dir: string, options?: FileLogStorageOptions): Promise<FileLogStorage> {
  const s = await FileLogStorage.open(dir, options)
  open.push(s)
  return s
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close()
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

function entries(from: number, to: number, term: number, size = 40): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) {
    out.push({ index: i, term, type: 0, data: new Uint8Array(size).fill(i & 0xff) })
  }
  return out
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('wal-'))
    .sort()
}

async function fill(dir: string, count: number, options?: FileLogStorageOptions): Promise<void> {
  const s = await FileLogStorage.open(dir, options)
  await s.load()
  for (let i = 1; i <= count; i += 10) {
    await s.save({ entries: entries(i, i + 9, 1), hardState: { term: 1, vote: 'n1', commit: i } })
  }
  await s.close()
}

describe('FileLogStorage', () => {
  it('covers many concurrent saves with few syncs (group commit)', async () => {
    const s = await openStorage(tempDir())
    await s.load()
    const saves = []
    for (let i = 1; i <= 200; i++) saves.push(s.save({ entries: entries(i, i, 1) }))
    await Promise.all(saves)
    const stats = s.stats()
    expect(stats.saves).toBe(200)
    expect(stats.syncs).toBeLessThanOrEqual(2)
  })

  it('rolls segments and deletes those below a compaction point', async () => {
    const dir = tempDir()
    const s = await openStorage(dir, { segmentBytes: 4096 })
    await s.load()
    for (let i = 1; i <= 1000; i += 10) await s.save({ entries: entries(i, i + 9, 1) })
    const before = segmentFiles(dir).length
    expect(before).toBeGreaterThan(10)
    await s.save({
      snapshot: {
        meta: { index: 900, term: 1, conf: { voters: ['n1'], learners: [] } },
        data: new Uint8Array(8),
      },
    })
    await s.compact(800)
    const after = segmentFiles(dir)
    expect(after.length).toBeLessThan(before)
    expect(after.length).toBeGreaterThanOrEqual(3)
    await s.close()
    const again = await openStorage(dir, { segmentBytes: 4096 })
    const state = await again.load()
    expect(state.snapshot?.meta.index).toBe(900)
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 100 }, (_, k) => 901 + k))
  })

  it('keeps keepOldSnapshots superseded snapshot files, also across a restart, and reports each sync', async () => {
    const dir = tempDir()
    const syncs: number[] = []
    const s = await openStorage(dir, { keepOldSnapshots: 1, onSync: (_ms, bytes) => syncs.push(bytes) })
    await s.load()
    await s.save({ entries: entries(1, 40, 1) })
    expect(syncs.length).toBeGreaterThan(0)
    const snap = (index: number) =>
      s.save({
        snapshot: {
          meta: { index, term: 1, conf: { voters: ['n1'], learners: [] } },
          data: new Uint8Array(8),
        },
      })
    const snapFiles = () => readdirSync(dir).filter((n) => n.startsWith('snap-')).length
    await snap(10)
    await snap(20)
    await snap(30)
    await until(() => snapFiles() === 2)
    s.keepOldSnapshots = 0
    await snap(40)
    await until(() => snapFiles() === 1)
    s.keepOldSnapshots = 2
    await s.save({ entries: entries(41, 60, 1) })
    await snap(50)
    await snap(60)
    await until(() => snapFiles() === 3)
    await s.close()
    open.splice(open.indexOf(s), 1)
    // Reopened with fewer kept: the oldest goes.
    const again = await openStorage(dir, { keepOldSnapshots: 1 })
    expect((await again.load()).snapshot?.meta.index).toBe(60)
    expect(snapFiles()).toBe(2)
  })

  it('splits one large save across segments', async () => {
    const dir = tempDir()
    const s = await openStorage(dir, { segmentBytes: 2048 })
    await s.load()
    await s.save({ entries: entries(1, 300, 1, 30), hardState: { term: 1, vote: null, commit: 0 } })
    expect(segmentFiles(dir).length).toBeGreaterThan(3)
    await s.close()
    const state = await (await openStorage(dir, { segmentBytes: 2048 })).load()
    expect(state.entries.length).toBe(300)
    expect(state.hardState.term).toBe(1)
  })

  it('cuts a torn tail back to the last valid record', async () => {
    const dir = tempDir()
    await fill(dir, 50, APPEND_ONLY)
    const [last] = segmentFiles(dir).slice(-1)
    const path = join(dir, last!)
    const full = readFileSync(path)
    // Every cut inside the last record is a torn write; so is garbage after a valid prefix.
    for (const cut of [full.length - 1, full.length - 30, full.length - 61]) {
      writeFileSync(path, full.subarray(0, cut))
      const s = await FileLogStorage.open(dir, APPEND_ONLY)
      const state = await s.load()
      expect(state.entries.length).toBeGreaterThanOrEqual(40)
      expect(state.entries.length).toBeLessThanOrEqual(50)
      await s.save({ entries: entries(state.entries.length + 1, state.entries.length + 1, 1) })
      await s.close()
      writeFileSync(path, full)
    }
    writeFileSync(path, Buffer.concat([full, Buffer.alloc(700)]))
    let s = await FileLogStorage.open(dir, APPEND_ONLY)
    expect((await s.load()).entries.length).toBe(50)
    await s.close()
    expect(statSync(path).size).toBe(full.length)
    writeFileSync(path, Buffer.concat([full, Buffer.from('partial record garbage')]))
    s = await FileLogStorage.open(dir, APPEND_ONLY)
    expect((await s.load()).entries.length).toBe(50)
    await s.close()
  })

  it('reports corruption before the tail as CORRUPT with the file and offset', async () => {
    const dir = tempDir()
    await fill(dir, 50)
    const [last] = segmentFiles(dir).slice(-1)
    const path = join(dir, last!)
    const full = readFileSync(path)
    const bad = Buffer.from(full)
    bad[200]! ^= 0x40
    writeFileSync(path, bad)
    const err = await FileLogStorage.open(dir).catch((e) => e)
    expect(err).toMatchObject({ name: 'RaftError', code: 'CORRUPT' })
    expect(err.message).toContain(last)
    expect(err.message).toMatch(/offset \d+/)
  })

  it('reports damage in an earlier segment as CORRUPT', async () => {
    const dir = tempDir()
    await fill(dir, 200, { segmentBytes: 2048 })
    const files = segmentFiles(dir)
    expect(files.length).toBeGreaterThan(2)
    const path = join(dir, files[1]!)
    const full = readFileSync(path)
    // A torn-looking end is still corruption when it is not the last segment.
    writeFileSync(path, full.subarray(0, full.length - 5))
    const err = await FileLogStorage.open(dir, { segmentBytes: 2048 }).catch((e) => e)
    expect(err).toMatchObject({ name: 'RaftError', code: 'CORRUPT' })
    expect(err.message).toContain(files[1])
  })

  it('reports a missing segment as CORRUPT', async () => {
    const dir = tempDir()
    await fill(dir, 200, { segmentBytes: 2048 })
    const files = segmentFiles(dir)
    rmSync(join(dir, files[2]!))
    await expect(FileLogStorage.open(dir, { segmentBytes: 2048 })).rejects.toMatchObject({ code: 'CORRUPT' })
  })

  it('refuses a record length over the limit', async () => {
    const dir = tempDir()
    await fill(dir, 20)
    const [first] = segmentFiles(dir)
    const path = join(dir, first!)
    const bad = readFileSync(path)
    bad.writeUInt32LE(0x7fffffff, 0)
    writeFileSync(path, Buffer.concat([bad, bad]))
    await expect(FileLogStorage.open(dir)).rejects.toMatchObject({ code: 'CORRUPT' })
  })

  it('refuses a directory of another node or cluster', async () => {
    const dir = tempDir()
    await (await FileLogStorage.open(dir, { nodeId: 'n1', clusterId: 'c1' })).close()
    await expect(FileLogStorage.open(dir, { nodeId: 'n2', clusterId: 'c1' })).rejects.toMatchObject({
      name: 'RaftError',
      code: 'STORAGE_MISMATCH',
    })
    await expect(FileLogStorage.open(dir, { nodeId: 'n1', clusterId: 'c2' })).rejects.toMatchObject({
      code: 'STORAGE_MISMATCH',
    })
    await (await FileLogStorage.open(dir, { nodeId: 'n1' })).close()
    await (await FileLogStorage.open(dir)).close()
  })

  it('refuses a directory that is already open', async () => {
    const dir = tempDir()
    const s = await openStorage(dir)
    await expect(FileLogStorage.open(dir)).rejects.toMatchObject({ name: 'RaftError', code: 'LOCKED' })
    await s.close()
    await (await FileLogStorage.open(dir)).close()
  })

  it('releases the directory when its options are refused', async () => {
    const dir = tempDir()
    await expect(FileLogStorage.open(dir, { keepOldSnapshots: -1 })).rejects.toThrow(RangeError)
    await (await FileLogStorage.open(dir)).close()
  })

  it('leaves the lock of a live process in place when it refuses the directory', async () => {
    const dir = tempDir()
    await (await FileLogStorage.open(dir)).close()
    const other = spawn('sleep', ['60'], { stdio: 'ignore' })
    try {
      writeFileSync(join(dir, 'LOCK'), String(other.pid))
      await expect(FileLogStorage.open(dir)).rejects.toMatchObject({ code: 'LOCKED' })
      // The refused opener must not delete the owner's lock on its way out (a third would then take it).
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(String(other.pid))
      await expect(FileLogStorage.open(dir)).rejects.toMatchObject({ code: 'LOCKED' })
    } finally {
      other.kill('SIGKILL')
    }
  })

  it('takes over the lock of a process that is gone', async () => {
    const dir = tempDir()
    await (await FileLogStorage.open(dir)).close()
    writeFileSync(join(dir, 'LOCK'), '999999999')
    await (await FileLogStorage.open(dir)).close()
  })

  it('seals entries and snapshots with the hooks, leaving index, term and type readable', async () => {
    const dir = tempDir()
    const seen: string[] = []
    const key = 0x5a
    const hooks: FileLogStorageOptions = {
      seal: (data, ctx) => {
        seen.push(`${ctx.kind}:${ctx.index}:${ctx.term}:${ctx.type}`)
        const out = new Uint8Array(data.length + 1)
        out[0] = (ctx.index + ctx.term) & 0xff
        for (let i = 0; i < data.length; i++) out[i + 1] = data[i]! ^ key
        return out
      },
      open: (data, ctx) => {
        if (data[0] !== ((ctx.index + ctx.term) & 0xff)) throw new Error('authentication failed')
        return data.subarray(1).map((b) => b ^ key)
      },
    }
    const secret = new TextEncoder().encode('very secret value')
    const s = await openStorage(dir, hooks)
    await s.load()
    await s.save({
      entries: [
        { index: 1, term: 1, type: 0, data: secret },
        { index: 2, term: 1, type: 1, data: secret },
      ],
    })
    await s.save({
      snapshot: { meta: { index: 2, term: 1, conf: { voters: ['a'], learners: [] } }, data: secret },
    })
    await s.save({ entries: [{ index: 3, term: 2, type: 0, data: secret }] })
    await s.close()
    expect(seen).toEqual(['entry:1:1:0', 'entry:2:1:1', 'snapshot:2:1:0', 'entry:3:2:0'])
    for (const n of readdirSync(dir))
      expect(readFileSync(join(dir, n)).includes(Buffer.from(secret))).toBe(false)

    const again = await openStorage(dir, hooks)
    const state = await again.load()
    expect(Buffer.from(state.snapshot!.data).toString()).toBe('very secret value')
    expect(state.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()])).toEqual([
      [3, 2, 'very secret value'],
    ])
    await again.close()
    await expect(FileLogStorage.open(dir)).rejects.toMatchObject({ code: 'STORAGE_MISMATCH' })
    const wrong = { ...hooks, open: () => new Uint8Array(0).fill(0, 0, 0) && (undefined as never) }
    await expect(
      FileLogStorage.open(dir, {
        ...wrong,
        open: () => {
          throw new Error('bad key')
        },
      }),
    ).rejects.toMatchObject({ code: 'CORRUPT' })
  })

  it('seals the entries of a save as one record with batchSeal, and reads logs written either way', async () => {
    const dir = tempDir()
    const seen: string[] = []
    const data = (i: number) => new TextEncoder().encode(`entry ${i} `.repeat(i % 4))
    const entry = (index: number, term: number): Entry => ({
      index,
      term,
      type: (index % 2) as EntryType,
      data: data(index),
    })
    const before = await openStorage(dir, toySealer(seen))
    await before.load()
    await before.save({ entries: [entry(1, 1), entry(2, 1)] })
    await before.close()
    const s = await openStorage(dir, { batchSeal: true, ...toySealer(seen) })
    await s.load()
    await s.save({ entries: [3, 4, 5, 6, 7].map((i) => entry(i, i < 5 ? 1 : 2)) })
    await s.save({ entries: [entry(8, 2)], hardState: { term: 2, vote: 'a', commit: 8 } })
    await s.save({ entries: [entry(9, 3), entry(10, 3)] })
    await s.close()
    expect(seen).toEqual(['entry:1', 'entry:2', 'entries:3:5', 'entry:8', 'entries:9:2'])
    const want = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => entry(i, i < 5 ? 1 : i < 9 ? 2 : 3))
    for (const options of [{ batchSeal: true }, {}]) {
      const again = await openStorage(dir, { ...options, ...toySealer() })
      const got = (await again.load()).entries
      expect(got.map((e) => ({ ...e, data: new Uint8Array(e.data) }))).toEqual(want)
      await again.close()
    }

    // The readable table is bound to the sealed data: a changed type fails to open, even with a valid checksum.
    const seg = readdirSync(dir).find((n) => n.endsWith('.log'))!
    const file = readFileSync(join(dir, seg))
    const run = records(file).find((r) => r.body[0] === 5)!
    expect(run.body.readUInt32LE(12)).toBe(5)
    run.body[16 + 8] = run.body[16 + 8]! ^ 1
    file.writeUInt32LE(crc32c(run.body), run.off + 4)
    writeFileSync(join(dir, seg), file)
    await expect(FileLogStorage.open(dir, { batchSeal: true, ...toySealer() })).rejects.toMatchObject({
      code: 'CORRUPT',
      message: expect.stringContaining('entries 3-7'),
    })
  })

  it('splits a save into runs that keep each record within maxEntryBytes', async () => {
    const dir = tempDir()
    const seen: string[] = []
    const options = { batchSeal: true, maxEntryBytes: 200, segmentBytes: 1024, ...toySealer(seen) }
    const s = await openStorage(dir, options)
    await s.load()
    // Runs: 16 bytes + 13 per entry + the data must stay within 20 + 200 bytes.
    const saved = Array.from({ length: 10 }, (_, k) => ({
      index: k + 1,
      term: 1,
      type: 0 as const,
      data: new Uint8Array(k === 4 ? 200 : 30).fill(k),
    }))
    await s.save({ entries: saved })
    await s.save({ entries: saved.map((e) => ({ ...e, index: e.index + 10 })) })
    await s.close()
    expect(seen.slice(0, 4)).toEqual(['entries:1:4', 'entry:5', 'entries:6:4', 'entry:10'])
    const again = await openStorage(dir, options)
    const state = await again.load()
    expect(state.entries.map((e) => [e.index, e.data.length, e.data[0]])).toEqual(
      [...saved, ...saved].map((e, k) => [k + 1, e.data.length, e.data[0]]),
    )
    expect(again.stats().segments).toBeGreaterThan(1)
  })

  it('cuts a torn entries record back, keeping the saves before it', async () => {
    const dir = tempDir()
    const options = { batchSeal: true, ...toySealer(), ...APPEND_ONLY }
    const s = await openStorage(dir, options)
    await s.load()
    const saved = Array.from({ length: 20 }, (_, k) => ({
      index: k + 1,
      term: 1,
      type: 0 as const,
      data: new Uint8Array(300).fill(k),
    }))
    await s.save({ entries: saved.slice(0, 10) })
    await s.save({ entries: saved.slice(10) })
    await s.close()
    const seg = readdirSync(dir).find((n) => n.endsWith('.log'))!
    const path = join(dir, seg)
    const full = readFileSync(path)
    const last = records(full).at(-1)!
    expect(last.body[0]).toBe(5)
    // A cut anywhere inside the second save's record (header, table or sealed data) is a torn write.
    for (const cut of [full.length - 1, last.off + 2000, last.off + 9]) {
      writeFileSync(path, full.subarray(0, cut))
      const again = await openStorage(dir, options)
      const state = await again.load()
      expect(state.entries.map((e) => e.index)).toEqual(saved.slice(0, 10).map((e) => e.index))
      expect(state.entries.every((e, k) => e.data.length === 300 && e.data[0] === k)).toBe(true)
      await again.close()
    }
    writeFileSync(path, full)
    const whole = await openStorage(dir, options)
    expect((await whole.load()).entries.length).toBe(20)
    await whole.close()
  })

  describe('sealed records checksummed by their tag (sealTagBytes)', () => {
    const options = { batchSeal: true, ...taggedToySealer(), ...APPEND_ONLY }
    const data = (k: number, n = 300) => new Uint8Array(n).fill(k)
    /** Three saves: ten entries (one ENTRIES record), one entry (an ENTRY record), ten entries again. */
    async function write(dir: string): Promise<{ path: string; full: Buffer }> {
      const s = await openStorage(dir, options)
      await s.load()
      const e = (i: number) => ({ index: i, term: 1, type: 0 as const, data: data(i) })
      await s.save({ entries: Array.from({ length: 10 }, (_, k) => e(k + 1)) })
      await s.save({ entries: [e(11)] })
      await s.save({ entries: Array.from({ length: 10 }, (_, k) => e(k + 12)) })
      await s.close()
      const seg = readdirSync(dir).find((n) => n.endsWith('.log'))!
      return { path: join(dir, seg), full: readFileSync(join(dir, seg)) }
    }
    const indexes = async (dir: string) => {
      const s = await openStorage(dir, options)
      const got = (await s.load()).entries
      await s.close()
      expect(got.every((e) => e.data.length === 300 && e.data[0] === e.index)).toBe(true)
      return got.map((e) => e.index)
    }

    it('marks the records and reads them back', async () => {
      const dir = tempDir()
      const { full } = await write(dir)
      const sealed = records(full).filter((r) => r.body[0] === 4 || r.body[0] === 5)
      expect(sealed.map((r) => [r.body[0], r.body[2], r.body[3]])).toEqual([
        [5, 3, 4],
        [4, 3, 4],
        [5, 3, 4],
      ])
      expect(await indexes(dir)).toEqual(Array.from({ length: 21 }, (_, k) => k + 1))
    })

    it('reports a changed byte in sealed data before the tail as CORRUPT with the file and offset', async () => {
      const dir = tempDir()
      const { path, full } = await write(dir)
      for (const r of records(full)
        .filter((x) => x.body[0] === 4 || x.body[0] === 5)
        .slice(0, 2)) {
        const bad = Buffer.from(full)
        bad[r.off + 8 + r.body.length - 40]! ^= 0x01 // inside the sealed data, not the tag: the checksum passes
        writeFileSync(path, bad)
        const err = await FileLogStorage.open(dir, options).catch((e) => e)
        expect(err).toMatchObject({ name: 'RaftError', code: 'CORRUPT' })
        expect(err.message).toContain(`offset ${r.off}`)
        expect(err.message).toMatch(/could not be opened/)
      }
    })

    it('cuts back a last record whose tag arrived but whose data did not, or whose tag is torn', async () => {
      const dir = tempDir()
      const { path, full } = await write(dir)
      const last = records(full).at(-1)!
      // A page in the middle of the last append never reached the disk (zeros), its end did.
      const hole = Buffer.from(full)
      hole.fill(0, last.off + 200, last.off + 700)
      writeFileSync(path, hole)
      expect(await indexes(dir)).toEqual(Array.from({ length: 11 }, (_, k) => k + 1))
      expect(statSync(path).size).toBe(last.off)
      // A cut inside the tag or before it: the checksum finds it.
      for (const cut of [full.length - 2, full.length - 100, last.off + 30]) {
        writeFileSync(path, full.subarray(0, cut))
        expect(await indexes(dir)).toEqual(Array.from({ length: 11 }, (_, k) => k + 1))
      }
      // The same hole in a record that is not the last one is corruption.
      writeFileSync(path, full)
      const middle = records(full).at(-2)!
      const bad = Buffer.from(full)
      bad.fill(0, middle.off + 40, middle.off + 8 + middle.body.length - 8)
      writeFileSync(path, bad)
      await expect(FileLogStorage.open(dir, options)).rejects.toMatchObject({ code: 'CORRUPT' })
    })

    it('checks the option', async () => {
      for (const sealTagBytes of [0, 65, 1.5])
        await expect(FileLogStorage.open(tempDir(), { ...options, sealTagBytes })).rejects.toThrow(RangeError)
    })
  })

  it('rejects invalid updates without changing anything', async () => {
    const s = await openStorage(tempDir())
    await s.load()
    await s.save({ entries: entries(1, 5, 2), hardState: { term: 2, vote: 'a', commit: 1 } })
    await expect(s.save({ entries: entries(6, 6, 1) })).rejects.toThrow(/term/)
    await expect(s.save({ hardState: { term: 1, vote: null, commit: 0 } })).rejects.toThrow(RangeError)
    await expect(s.save({ hardState: { term: 2, vote: 'b', commit: 0 } })).rejects.toThrow(/vote/)
    await expect(
      s.save({ entries: [{ index: 0, term: 2, type: 0, data: new Uint8Array() }] }),
    ).rejects.toThrow(RangeError)
    await expect(s.save(null as never)).rejects.toThrow(TypeError)
    await expect(s.compact(1)).rejects.toThrow(RangeError)
    await expect(FileLogStorage.open('')).rejects.toThrow(TypeError)
    await expect(FileLogStorage.open(tempDir(), { segmentBytes: 10 })).rejects.toThrow(RangeError)
    await s.save({ entries: entries(6, 6, 2) })
    expect((await s.load()).entries.length).toBe(6)
  })

  it('writes a snapshot of its own log in the background, and compact waits for it', async () => {
    const dir = tempDir()
    const s = await openStorage(dir, { segmentBytes: 2048 })
    await s.load()
    for (let i = 1; i <= 300; i += 10) await s.save({ entries: entries(i, i + 9, 1) })
    const big = new Uint8Array(8 << 20).fill(7)
    const snapshotSaved = s.save({
      snapshot: { meta: { index: 250, term: 1, conf: { voters: ['n1'], learners: [] } }, data: big },
    })
    // Saves issued behind it go through; compaction waits for the snapshot to be durable first.
    await s.save({ entries: entries(301, 310, 1), hardState: { term: 1, vote: null, commit: 300 } })
    await s.compact(240)
    await snapshotSaved
    expect((await s.snapshot())?.meta.index).toBe(250)
    await s.close()
    const state = await (await openStorage(dir, { segmentBytes: 2048 })).load()
    expect(state.snapshot?.meta.index).toBe(250)
    expect(state.snapshot?.data.length).toBe(8 << 20)
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 60 }, (_, k) => 251 + k))
    expect(state.hardState.commit).toBe(300)
  })

  it('refuses an entry over maxEntryBytes with TOO_LARGE', async () => {
    const s = await openStorage(tempDir(), { maxEntryBytes: 100 })
    await s.load()
    await expect(s.save({ entries: entries(1, 1, 1, 101) })).rejects.toMatchObject({ code: 'TOO_LARGE' })
  })

  it('rejects saves after close with STOPPED', async () => {
    const s = await FileLogStorage.open(tempDir())
    await s.close()
    await expect(s.save({ entries: entries(1, 1, 1) })).rejects.toMatchObject({ code: 'STOPPED' })
    await expect(s.load()).rejects.toMatchObject({ code: 'STOPPED' })
  })

  it('refuses a snapshot file that fails its checksum', async () => {
    const dir = tempDir()
    const s = await FileLogStorage.open(dir)
    await s.load()
    await s.save({ entries: entries(1, 3, 1) })
    await s.save({
      snapshot: {
        meta: { index: 3, term: 1, conf: { voters: ['a'], learners: [] } },
        data: new Uint8Array(64),
      },
    })
    await s.close()
    const name = readdirSync(dir).find((n) => n.startsWith('snap-'))!
    const buf = readFileSync(join(dir, name))
    buf[buf.length - 10]! ^= 1
    writeFileSync(join(dir, name), buf)
    const err = await FileLogStorage.open(dir).catch((e) => e)
    expect(err).toMatchObject({ code: 'CORRUPT' })
    expect(err.message).toContain(name)
  })
})
