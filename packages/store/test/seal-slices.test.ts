import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EntryType, FileLogStorage } from '@swarmkit/raft'
import { afterEach, describe, expect, it } from 'vitest'
import { isStoreError, KeyManager } from '../src/index.js'
import {
  type Keyring,
  NATIVE_AVAILABLE,
  openRecord,
  openRecordAsync,
  ringKey,
  sealRecord,
  sealRecordAsync,
} from '../src/internal/seal.js'

const MiB = 1 << 20
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function ring(impl: 'native' | 'noble'): Keyring {
  const key = new Uint8Array(32).map((_, i) => i * 7 + 1)
  return { current: ringKey(key), previous: [], impl, retiredFloor: 0, retired: [] }
}

function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24
  return b
}

const nonce = (n: number) => new Uint8Array(n).fill(9)
const ctx = { kind: 'snapshot' as const, index: 12, term: 3, type: 0 }

/** Counts event-loop turns while `work` runs. */
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

describe.skipIf(!NATIVE_AVAILABLE)('sealRecordAsync and openRecordAsync', () => {
  it('seal the same record as sealRecord, 1 MiB at a time, and open it the same way', async () => {
    const data = bytes(6 * MiB + 5)
    const r = ring('native')
    const [sealed, turns] = await turnsDuring(() => sealRecordAsync(r, data, ctx, nonce))
    expect(Buffer.from(sealed).equals(Buffer.from(sealRecord(r, data, ctx, nonce)))).toBe(true)
    expect(turns).toBeGreaterThanOrEqual(5)
    const [opened, openTurns] = await turnsDuring(() => openRecordAsync(r, sealed, ctx))
    expect(Buffer.from(opened).equals(Buffer.from(data))).toBe(true)
    expect(openTurns).toBeGreaterThanOrEqual(5)
    // What the noble implementation seals, the sliced native one opens (and the other way round).
    const noble = sealRecord(ring('noble'), data, ctx, nonce)
    expect(Buffer.from(noble).equals(Buffer.from(sealed))).toBe(true)
    expect(Buffer.from(openRecord(ring('noble'), sealed, ctx)).equals(Buffer.from(data))).toBe(true)
  })

  it('refuses a tampered record, or one bound to another place in the log, as CORRUPT', async () => {
    const r = ring('native')
    const sealed = await sealRecordAsync(r, bytes(3 * MiB), ctx, nonce)
    const tampered = new Uint8Array(sealed)
    tampered[2 * MiB] = tampered[2 * MiB]! ^ 1
    for (const [data, c] of [
      [tampered, ctx],
      [sealed, { ...ctx, index: 13 }],
    ] as const) {
      const err = await openRecordAsync(r, data, c).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isStoreError(err, 'CORRUPT'), String(err)).toBe(true)
    }
  })
})

describe('KeyManager hooks with FileLogStorage', () => {
  it('seal and open snapshot files through the asynchronous hooks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-seal-slices-'))
    dirs.push(dir)
    const km = await KeyManager.open(join(dir, 'keys.json'))
    const hooks = km.hooks()
    const calls = { seal: 0, sealAsync: 0, open: 0, openAsync: 0 }
    const counted = {
      seal: (d: Uint8Array, c: Parameters<typeof hooks.seal>[1]) => {
        if (c.kind === 'snapshot') calls.seal++
        return hooks.seal(d, c)
      },
      open: (d: Uint8Array, c: Parameters<typeof hooks.open>[1]) => {
        if (c.kind === 'snapshot') calls.open++
        return hooks.open(d, c)
      },
      sealAsync: (d: Uint8Array, c: Parameters<typeof hooks.seal>[1]) => {
        calls.sealAsync++
        return hooks.sealAsync(d, c)
      },
      openAsync: (d: Uint8Array, c: Parameters<typeof hooks.open>[1]) => {
        calls.openAsync++
        return hooks.openAsync(d, c)
      },
      batchSeal: hooks.batchSeal,
      sealTagBytes: hooks.sealTagBytes,
    }
    const s = await FileLogStorage.open(join(dir, 'raft'), counted)
    await s.load()
    await s.save({
      hardState: { term: 1, vote: 'a', commit: 2 },
      entries: [1, 2].map((index) => ({ index, term: 1, type: EntryType.Normal, data: bytes(100) })),
    })
    const data = bytes(3 * MiB)
    const conf = { voters: ['a'], learners: [] }
    await s.save({ snapshot: { meta: { index: 2, term: 1, conf }, data } })
    expect(Buffer.from((await s.snapshot())!.data).equals(Buffer.from(data))).toBe(true)
    // A follower's install (the log discarded) takes the same path.
    await s.save({
      snapshot: { meta: { index: 9, term: 1, conf }, data },
      hardState: { term: 1, vote: 'a', commit: 9 },
    })
    await s.close()
    const again = await FileLogStorage.open(join(dir, 'raft'), counted)
    const state = await again.load()
    expect(state.snapshot!.meta.index).toBe(9)
    expect(Buffer.from(state.snapshot!.data).equals(Buffer.from(data))).toBe(true)
    await again.close()
    expect(calls).toEqual({ seal: 0, sealAsync: 2, open: 0, openAsync: 2 })
    // And without the asynchronous hooks the same files open.
    const plain = await FileLogStorage.open(join(dir, 'raft'), { seal: hooks.seal, open: hooks.open })
    expect(Buffer.from((await plain.load()).snapshot!.data).equals(Buffer.from(data))).toBe(true)
    await plain.close()
  })
})
