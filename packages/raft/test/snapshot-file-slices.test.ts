import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeFileSystem } from '../src/file-system.js'
import { EntryType, FileLogStorage, type SealContext } from '../src/index.js'
import { crc32c, crc32cInSlices } from '../src/internal/wal/crc32c.js'

const MiB = 1 << 20
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** Counts event-loop turns (setImmediate callbacks) while `work` runs. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<[T, number]> {
  let turns = 0
  let on = true
  const spin = () => {
    turns++
    if (on) setImmediate(spin)
  }
  setImmediate(spin)
  const r = await work()
  on = false
  return [r, turns]
}

function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24
  return b
}

describe('crc32cInSlices', () => {
  it('computes the checksum of the whole, letting the event loop run between 1 MiB slices', async () => {
    const data = bytes(8 * MiB + 123)
    const [crc, turns] = await turnsDuring(() => crc32cInSlices(data, 0, 0, data.length))
    expect(crc).toBe(crc32c(data))
    expect(turns).toBeGreaterThanOrEqual(8)
    expect(await crc32cInSlices(data, crc32c(data, 0, 0, 100), 100, 5000)).toBe(crc32c(data, 0, 0, 5000))
  })
})

describe('FileLogStorage snapshot files', () => {
  it('checks a large snapshot read back in slices (a leader reads it for every follower it sends it to)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raft-snap-slices-'))
    dirs.push(dir)
    // Event-loop turns are counted from the moment the file is read and closed (the read itself lets the
    // loop run while the disk works) to the moment the snapshot is handed out: the checksum's slices.
    let turns = 0
    let turnsAtClose = -1
    const fileSystem = {
      ...nodeFileSystem,
      close: async (fd: number) => {
        await nodeFileSystem.close(fd)
        turnsAtClose = turns
      },
    }
    const s = await FileLogStorage.open(dir, { fileSystem })
    await s.load()
    await s.save({
      hardState: { term: 1, vote: 'a', commit: 2 },
      entries: [1, 2].map((index) => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(8) })),
    })
    const data = bytes(16 * MiB)
    await s.save({ snapshot: { meta: { index: 2, term: 1, conf: { voters: ['a'], learners: [] } }, data } })
    let on = true
    const spin = () => {
      turns++
      if (on) setImmediate(spin)
    }
    setImmediate(spin)
    const snap = await s.snapshot()
    on = false
    expect(Buffer.from(snap!.data).equals(Buffer.from(data))).toBe(true)
    expect(turnsAtClose).toBeGreaterThanOrEqual(0)
    expect(turns - turnsAtClose).toBeGreaterThanOrEqual(15)
    await s.close()
  })
})

describe('FileLogStorage sealAsync and openAsync', () => {
  it('seal and open snapshot data (only) through the asynchronous hooks, in the same format as seal/open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raft-snap-async-seal-'))
    dirs.push(dir)
    const calls: string[] = []
    const xor = (d: Uint8Array) => d.map((b) => b ^ 0x5a)
    const hooks = {
      seal: (d: Uint8Array, c: SealContext) => {
        calls.push(`seal:${c.kind}`)
        return xor(d)
      },
      open: (d: Uint8Array, c: SealContext) => {
        calls.push(`open:${c.kind}`)
        return xor(d)
      },
      sealAsync: async (d: Uint8Array, c: SealContext) => {
        calls.push(`sealAsync:${c.kind}`)
        return xor(d)
      },
      openAsync: async (d: Uint8Array, c: SealContext) => {
        calls.push(`openAsync:${c.kind}`)
        return xor(d)
      },
    }
    const conf = { voters: ['a'], learners: [] }
    const data = bytes(3 * MiB)
    const s = await FileLogStorage.open(dir, hooks)
    await s.load()
    await s.save({
      hardState: { term: 1, vote: 'a', commit: 2 },
      entries: [1, 2].map((index) => ({ index, term: 1, type: EntryType.Normal, data: bytes(10) })),
    })
    await s.save({ snapshot: { meta: { index: 2, term: 1, conf }, data } })
    expect(Buffer.from((await s.snapshot())!.data).equals(Buffer.from(data))).toBe(true)
    await s.save({
      snapshot: { meta: { index: 9, term: 1, conf }, data },
      hardState: { term: 1, vote: 'a', commit: 9 },
    })
    await s.close()
    expect(calls).toEqual([
      'seal:entry',
      'seal:entry',
      'sealAsync:snapshot',
      'openAsync:snapshot',
      'sealAsync:snapshot',
    ])
    // The files open with the one-call hooks as well: the format is the same.
    const plain = await FileLogStorage.open(dir, { seal: hooks.seal, open: hooks.open })
    expect(Buffer.from((await plain.load()).snapshot!.data).equals(Buffer.from(data))).toBe(true)
    await plain.close()
    // A sealer that rejects fails the save, like a write error.
    const failing = await FileLogStorage.open(dir, {
      ...hooks,
      sealAsync: async () => {
        throw new Error('no key')
      },
    })
    await failing.load()
    await expect(
      failing.save({
        snapshot: { meta: { index: 12, term: 1, conf }, data },
        hardState: { term: 1, vote: 'a', commit: 12 },
      }),
    ).rejects.toThrow()
    await failing.close().catch(() => {})
  })
})
