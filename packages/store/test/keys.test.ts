import { createCipheriv } from 'node:crypto'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hchacha } from '@noble/ciphers/chacha.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  formatUnlockKey,
  generateUnlockKey,
  isStoreError,
  KeyManager,
  LOCKED_MESSAGE,
  parseUnlockKey,
  SEAL_OVERHEAD,
  type SealContext,
} from '../src/index.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'store-keys-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const entry = (index: number, term = 1, type = 0): SealContext => ({ kind: 'entry', index, term, type })
const run = (index: number, count: number, header: Uint8Array, term = 1): SealContext => ({
  kind: 'entries',
  index,
  term,
  type: 0,
  count,
  header,
})
const text = (s: string) => new TextEncoder().encode(s)

function expectStoreError(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn()
  } catch (err) {
    expect(isStoreError(err, code as never), String(err)).toBe(true)
    if (message) expect((err as Error).message).toMatch(message)
    return
  }
  throw new Error(`expected StoreError ${code}`)
}

/** A deterministic byte source, so tests replay exactly. */
function seeded(seed = 1) {
  let x = seed >>> 0
  return (n: number) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      out[i] = x & 0xff
    }
    return out
  }
}

describe('unlock keys', () => {
  it("use swarm's SWMKEY-1- format and round-trip", () => {
    const k = generateUnlockKey()
    expect(k).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/)
    expect(k.length).toBe(52)
    expect(formatUnlockKey(parseUnlockKey(k))).toBe(k)
    expect(parseUnlockKey(`  ${k}\n`)).toEqual(parseUnlockKey(k))
    expect(parseUnlockKey(new Uint8Array(32).fill(7))).toEqual(new Uint8Array(32).fill(7))
  })

  it('rejects malformed keys naming the argument', () => {
    expect(() => parseUnlockKey('SWMTKN-1-abc')).toThrow(/key/)
    expect(() => parseUnlockKey(`SWMKEY-1-${'A'.repeat(42)}`)).toThrow(TypeError)
    expect(() => parseUnlockKey(new Uint8Array(31))).toThrow(TypeError)
    expect(() => parseUnlockKey(42 as never)).toThrow(TypeError)
  })
})

describe('KeyManager seal/open', () => {
  it('seals every record so that only its own key and position open it', async () => {
    const km = await KeyManager.open(join(dir, 'keys.json'), { random: seeded() })
    const { seal, open } = km.hooks()
    const data = text('secret payload')
    const sealed = seal(data, entry(7, 3, 0))
    expect(sealed.length).toBe(data.length + SEAL_OVERHEAD)
    expect(Buffer.from(sealed).includes(Buffer.from(data))).toBe(false)
    expect(open(sealed, entry(7, 3, 0))).toEqual(data)
    // The record's index, term, type and kind are bound as associated data.
    for (const ctx of [
      entry(8, 3, 0),
      entry(7, 4, 0),
      entry(7, 3, 1),
      { ...entry(7, 3, 0), kind: 'snapshot' as const },
    ]) {
      expectStoreError(() => open(sealed, ctx), 'CORRUPT', /failed authentication/)
    }
    // Any flipped bit is caught, and the error names the index.
    for (let i = 0; i < sealed.length; i += 7) {
      const bad = new Uint8Array(sealed)
      bad[i]! ^= 0x01
      try {
        open(bad, entry(7, 3, 0))
        throw new Error('opened a tampered record')
      } catch (err) {
        expect(isStoreError(err, 'CORRUPT')).toBe(true)
        expect((err as { index?: number }).index).toBe(7)
      }
    }
    expectStoreError(() => open(new Uint8Array(10), entry(1)), 'CORRUPT')
    // Nonces are fresh per record.
    expect(seal(data, entry(7, 3, 0))).not.toEqual(sealed)
  })

  it('computes the same XChaCha20-Poly1305 with the native and the noble implementation', async () => {
    const path = join(dir, 'keys.json')
    const native = await KeyManager.open(path, { cipher: 'native' })
    const noble = await KeyManager.open(path, { cipher: 'noble' })
    const next = seeded(9)
    for (const size of [0, 1, 15, 16, 63, 64, 65, 1000, 4096, 65537]) {
      const data = next(size)
      const ctx = entry(size + 1, 3, size % 2)
      // Same nonce source, same bytes out.
      const a = (await KeyManager.open(path, { cipher: 'native', random: seeded(size + 1) }))
        .hooks()
        .seal(data, ctx)
      const b = (await KeyManager.open(path, { cipher: 'noble', random: seeded(size + 1) }))
        .hooks()
        .seal(data, ctx)
      expect(Buffer.from(a).equals(Buffer.from(b)), `size ${size}`).toBe(true)
      expect(noble.hooks().open(native.hooks().seal(data, ctx), ctx)).toEqual(data)
      expect(native.hooks().open(noble.hooks().seal(data, ctx), ctx)).toEqual(data)
      const bad = new Uint8Array(a)
      bad[bad.length - 1]! ^= 0x80
      expectStoreError(() => native.hooks().open(bad, ctx), 'CORRUPT')
      expectStoreError(() => noble.hooks().open(bad, ctx), 'CORRUPT')
    }
    await expect(KeyManager.open(path, { cipher: 'rot13' as never })).rejects.toThrow(TypeError)
  })

  it("seals a run of entries as one record, bound to the run's readable header", async () => {
    const path = join(dir, 'keys.json')
    const { seal } = (await KeyManager.open(path)).hooks()
    const next = seeded(3)
    for (const [count, size] of [
      [2, 0],
      [3, 100],
      [64, 65536],
    ] as const) {
      const header = next(16 + 13 * count)
      const data = next(size)
      const ctx = run(41, count, header, 7)
      const a = (await KeyManager.open(path, { cipher: 'native', random: seeded(count) })).hooks()
      const b = (await KeyManager.open(path, { cipher: 'noble', random: seeded(count) })).hooks()
      expect(a.batchSeal).toBe(true)
      const sealed = a.seal(data, ctx)
      expect(Buffer.from(sealed).equals(Buffer.from(b.seal(data, ctx)))).toBe(true)
      expect(sealed.length).toBe(size + SEAL_OVERHEAD)
      for (const h of [a, b]) {
        expect(h.open(sealed, ctx)).toEqual(data)
        // Every byte of the header is bound, and so are the first index, the last term and the kind.
        for (let i = 0; i < header.length; i += 5) {
          const changed = new Uint8Array(header)
          changed[i]! ^= 0x10
          expectStoreError(() => h.open(sealed, run(41, count, changed, 7)), 'CORRUPT', /log entries 41-/)
        }
        expectStoreError(() => h.open(sealed, run(42, count, header, 7)), 'CORRUPT')
        expectStoreError(() => h.open(sealed, run(41, count, header, 8)), 'CORRUPT')
        expectStoreError(() => h.open(sealed, entry(41, 7)), 'CORRUPT')
      }
    }
    expect(() => seal(new Uint8Array(1), { kind: 'entries', index: 1, term: 1, type: 0 })).toThrow(TypeError)
  })

  it('is XChaCha20-Poly1305 (cross-checked with node:crypto through HChaCha20)', async () => {
    const km = await KeyManager.open(join(dir, 'keys.json'), { cipher: 'noble' })
    const { seal } = km.hooks()
    const data = text('interop check')
    const ctx = entry(2 ** 40 + 5, 9, 1)
    const sealed = seal(data, ctx)
    const file = JSON.parse(await readFile(join(dir, 'keys.json'), 'utf8'))
    // The DEK is the 32-byte value after "current" in the msgpack payload.
    const payload = Buffer.from(file.payload, 'base64')
    const at = payload.indexOf(Buffer.from('current')) + 'current'.length
    expect(payload[at]).toBe(0xc4)
    expect(payload[at + 1]).toBe(32)
    const dek = new Uint8Array(payload.subarray(at + 2, at + 34))
    const nonce = sealed.subarray(5, 29)
    // HChaCha20 subkey, then IETF ChaCha20-Poly1305 with nonce 0000 || nonce[16..24], as the XChaCha draft says.
    const sigma = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])
    const k32 = new Uint32Array(dek.buffer.slice(dek.byteOffset, dek.byteOffset + 32))
    const n32 = new Uint32Array(nonce.slice(0, 16).buffer)
    const sub = new Uint32Array(8)
    hchacha(sigma, k32, n32, sub)
    const iv = Buffer.concat([Buffer.alloc(4), Buffer.from(nonce.subarray(16))])
    const aad = Buffer.alloc(23)
    aad[0] = 1
    aad.set(sealed.subarray(1, 5), 1)
    aad[5] = 0
    aad.writeUInt32BE(Math.floor(ctx.index / 2 ** 32), 6)
    aad.writeUInt32BE(ctx.index >>> 0, 10)
    aad.writeUInt32BE(0, 14)
    aad.writeUInt32BE(9, 18)
    aad[22] = 1
    const c = createCipheriv('chacha20-poly1305', Buffer.from(sub.buffer), iv, { authTagLength: 16 })
    c.setAAD(aad, { plaintextLength: data.length })
    const expected = Buffer.concat([c.update(data), c.final(), c.getAuthTag()])
    expect(Buffer.from(sealed.subarray(29))).toEqual(expected)
  })

  it('keeps the DEK across reopen, and refuses a damaged key file', async () => {
    const path = join(dir, 'keys.json')
    const a = await KeyManager.open(path)
    const sealed = a.hooks().seal(text('x'), entry(1))
    a.close()
    const b = await KeyManager.open(path)
    expect(b.autolock).toBe(false)
    expect(b.hooks().open(sealed, entry(1))).toEqual(text('x'))
    const f = JSON.parse(await readFile(path, 'utf8'))
    f.payload = Buffer.from(Buffer.from(f.payload, 'base64').map((x, i) => (i === 20 ? x ^ 1 : x))).toString(
      'base64',
    )
    await writeFile(path, JSON.stringify(f))
    await expect(KeyManager.open(path)).rejects.toMatchObject({ code: 'CORRUPT' })
    await writeFile(path, 'not json')
    await expect(KeyManager.open(path)).rejects.toMatchObject({ code: 'CORRUPT' })
  })
})

describe('KeyManager autolock', () => {
  it('locks the key file under the unlock key and replaces the DEK', async () => {
    const path = join(dir, 'keys.json')
    const a = await KeyManager.open(path, { random: seeded(3) })
    const before = a.hooks().seal(text('old'), entry(1))
    await a.writeSecret('tls-key', text('-----BEGIN PRIVATE KEY-----'))
    const key = await a.enableAutolock()
    expect(key).toMatch(/^SWMKEY-1-/)
    const after = a.hooks().seal(text('new'), entry(2))
    expect(after.subarray(1, 5)).not.toEqual(before.subarray(1, 5))
    expect(a.hasPreviousKeys).toBe(true)
    const raw = await readFile(path)
    expect(raw.includes(Buffer.from('-----BEGIN'))).toBe(false)
    a.close()

    const b = await KeyManager.open(path)
    expect(b.locked).toBe(true)
    expectStoreError(() => b.hooks(), 'LOCKED', new RegExp(`^${LOCKED_MESSAGE}$`))
    expect(() => b.readSecret('tls-key')).toThrow(LOCKED_MESSAGE)
    await expect(b.unlock(generateUnlockKey())).rejects.toMatchObject({
      code: 'BAD_KEY',
      message: 'swarm could not be unlocked: invalid key provided',
    })
    expect(b.locked).toBe(true)
    await b.unlock(key)
    expect(b.locked).toBe(false)
    await expect(b.unlock(key)).rejects.toMatchObject({ code: 'NOT_LOCKED' })
    const { open } = b.hooks()
    expect(open(before, entry(1))).toEqual(text('old'))
    expect(open(after, entry(2))).toEqual(text('new'))
    expect(b.readSecret('tls-key')).toEqual(text('-----BEGIN PRIVATE KEY-----'))

    await b.disableAutolock()
    b.close()
    const c = await KeyManager.open(path)
    expect(c.locked).toBe(false)
    expect(c.hooks().open(after, entry(2))).toEqual(text('new'))
  })

  it('lets a manager that missed a rotation unlock with its old key, then adopt the new one', async () => {
    const pathA = join(dir, 'a.json')
    const pathB = join(dir, 'b.json')
    const a = await KeyManager.open(pathA)
    const k1 = await a.enableAutolock()
    await copyFile(pathA, pathB) // B: the same key file, then down while the cluster rotates
    const k2 = await a.rotateUnlockKey()
    expect(k2).not.toBe(k1)
    const b = await KeyManager.open(pathB)
    await expect(b.unlock(k2)).rejects.toMatchObject({ code: 'BAD_KEY' })
    await b.unlock(k1)
    await b.rotateUnlockKey(k2)
    b.close()
    const again = await KeyManager.open(pathB, { unlockKey: k2 })
    expect(again.locked).toBe(false)
    await expect(KeyManager.open(pathB, { unlockKey: k1 })).rejects.toMatchObject({ code: 'BAD_KEY' })
    await expect((await KeyManager.open(join(dir, 'c.json'))).rotateUnlockKey()).rejects.toThrow(
      'cannot rotate because autolock is not turned on',
    )
  })
})

describe('KeyManager close', () => {
  it('forgets the keys: hooks made before refuse afterwards', async () => {
    const km = await KeyManager.open(join(dir, 'keys.json'))
    const { seal } = km.hooks()
    km.close()
    expectStoreError(() => seal(text('x'), entry(1)), 'CLOSED')
    expectStoreError(() => km.hooks(), 'CLOSED')
  })
})

describe('KeyManager cancellation', () => {
  it('stops a key file change before it starts when the signal is aborted', async () => {
    const path = join(dir, 'keys.json')
    const km = await KeyManager.open(path)
    const before = await readFile(path)
    const ac = new AbortController()
    ac.abort()
    await expect(km.enableAutolock(undefined, { signal: ac.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    })
    await expect(km.rotateDataKey({ signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' })
    expect(await readFile(path)).toEqual(before)
    expect(km.autolock).toBe(false)
    await expect(KeyManager.open(join(dir, 'other.json'), { signal: ac.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    })
  })
})

describe('KeyManager data key rotation', () => {
  it('seals new records under the new DEK and retires the old one behind a snapshot', async () => {
    const path = join(dir, 'keys.json')
    const km = await KeyManager.open(path)
    const { seal, open } = km.hooks()
    const old5 = seal(text('five'), entry(5))
    const old9 = seal(text('nine'), entry(9))
    const oldRun = seal(text('sixseveneight'), run(6, 3, new Uint8Array(55)))
    const oldRunPast = seal(text('eightnineten'), run(8, 3, new Uint8Array(55)))
    const oldSnap = seal(text('snap'), { kind: 'snapshot', index: 5, term: 1, type: 0 })
    await km.rotateDataKey()
    const new10 = seal(text('ten'), entry(10))
    expect(open(old5, entry(5))).toEqual(text('five'))
    expect(open(new10, entry(10))).toEqual(text('ten'))
    await km.retirePreviousKeys(9)
    expect(km.hasPreviousKeys).toBe(false)
    // Covered by the snapshot at 9: raft discards these on load.
    expect(open(old5, entry(5))).toEqual(new Uint8Array(0))
    expect(open(old9, entry(9))).toEqual(new Uint8Array(0))
    // A run wholly covered opens as zeros of its length, which raft splits and discards.
    expect(open(oldRun, run(6, 3, new Uint8Array(55)))).toEqual(new Uint8Array(13))
    expectStoreError(() => open(oldRunPast, run(8, 3, new Uint8Array(55))), 'CORRUPT', /unknown data key/)
    // Anything else under the retired key is an error, never silently empty.
    expectStoreError(() => open(old9, entry(10)), 'CORRUPT', /unknown data key/)
    expectStoreError(() => open(oldSnap, { kind: 'snapshot', index: 5, term: 1, type: 0 }), 'CORRUPT')
    km.close()
    const again = await KeyManager.open(path)
    expect(again.hooks().open(new10, entry(10))).toEqual(text('ten'))
    expect(again.hooks().open(old5, entry(5))).toEqual(new Uint8Array(0))
  })
})
