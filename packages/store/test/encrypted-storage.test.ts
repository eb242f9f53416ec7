import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage, type LogStorage } from '@swarmkit/raft'
import { logStorageCompliance } from '@swarmkit/raft/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { KeyManager } from '../src/index.js'

// Raft's LogStorage compliance suite, run by FileLogStorage with every record sealed by the store's keys.

const dirs = new Map<LogStorage, { dir: string; keys: KeyManager }>()

async function openSealed(dir: string, keys: KeyManager): Promise<FileLogStorage> {
  return FileLogStorage.open(join(dir, 'raft'), { segmentBytes: 2048, ...keys.hooks() })
}

logStorageCompliance('FileLogStorage sealed with XChaCha20-Poly1305', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'store-sealed-'))
    const keys = await KeyManager.open(join(dir, 'keys.json'))
    const s = await openSealed(dir, keys)
    dirs.set(s, { dir, keys })
    return s
  },
  async reopen(closed) {
    const { dir, keys } = dirs.get(closed)!
    keys.close()
    const again = await KeyManager.open(join(dir, 'keys.json'))
    const s = await openSealed(dir, again)
    dirs.set(s, { dir, keys: again })
    return s
  },
  async destroy(s) {
    const { dir, keys } = dirs.get(s)!
    keys.close()
    rmSync(dir, { recursive: true, force: true })
  },
})

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'store-sealed-'))
  made.push(d)
  return d
}
const text = (s: string) => new TextEncoder().encode(s)

function scan(dir: string, needle: Uint8Array): string[] {
  const hits: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const p = join(e.parentPath, e.name)
    if (readFileSync(p).includes(Buffer.from(needle))) hits.push(p)
  }
  return hits
}

describe('encrypted FileLogStorage', () => {
  it('writes no plaintext', async () => {
    const dir = temp()
    const keys = await KeyManager.open(join(dir, 'keys.json'))
    const s = await openSealed(dir, keys)
    const secret = text('correct horse battery staple')
    await s.save({
      entries: [1, 2, 3].map((index) => ({ index, term: 1, type: 0 as const, data: secret })),
      hardState: { term: 1, vote: 'a', commit: 3 },
    })
    await s.save({
      snapshot: { meta: { index: 2, term: 1, conf: { voters: ['a'], learners: [] } }, data: secret },
    })
    await s.close()
    expect(scan(dir, secret)).toEqual([])
  })

  // CRC-32C is no defence against someone who rewrites records: these tamper through the seal hook, so the
  // storage writes them with valid checksums, and only the AEAD can tell.
  for (const [what, tamper] of [
    [
      'a flipped ciphertext bit',
      (sealed: Uint8Array) => sealed.map((b, i) => (i === sealed.length - 20 ? b ^ 1 : b)),
    ],
    ['a record moved to another index', null],
  ] as const) {
    it(`opens ${what} as CORRUPT naming its index, and loses nothing`, async () => {
      const dir = temp()
      const keys = await KeyManager.open(join(dir, 'keys.json'))
      const hooks = keys.hooks()
      const s = await FileLogStorage.open(join(dir, 'raft'), {
        segmentBytes: 2048,
        open: hooks.open,
        seal: (data, ctx) => {
          if (ctx.index !== 3 || ctx.kind !== 'entry') return hooks.seal(data, ctx)
          return tamper ? tamper(hooks.seal(data, ctx)) : hooks.seal(data, { ...ctx, index: 2 })
        },
      })
      await s.save({
        entries: [1, 2, 3, 4].map((index) => ({ index, term: 1, type: 0 as const, data: text(`e${index}`) })),
        hardState: { term: 1, vote: 'a', commit: 4 },
      })
      await s.close()
      const before = readdirSync(join(dir, 'raft')).map((f) => [f, readFileSync(join(dir, 'raft', f)).length])
      const err = await openSealed(dir, keys).then(
        () => null,
        (e) => e,
      )
      expect(err?.name).toBe('RaftError')
      expect(err.code).toBe('CORRUPT')
      expect(err.message).toMatch(/entry 3/)
      expect(err.cause?.name).toBe('StoreError')
      expect(err.cause.code).toBe('CORRUPT')
      expect(err.cause.index).toBe(3)
      expect(
        readdirSync(join(dir, 'raft')).map((f) => [f, readFileSync(join(dir, 'raft', f)).length]),
      ).toEqual(before)
    })
  }

  it('refuses to open while locked, and with a wrong key, without touching the log', async () => {
    const dir = temp()
    const keys = await KeyManager.open(join(dir, 'keys.json'))
    const unlockKey = await keys.enableAutolock()
    const s = await openSealed(dir, keys)
    await s.save({
      entries: [{ index: 1, term: 1, type: 0, data: text('x') }],
      hardState: { term: 1, vote: null, commit: 1 },
    })
    await s.close()
    keys.close()
    const locked = await KeyManager.open(join(dir, 'keys.json'))
    expect(() => locked.hooks()).toThrow(expect.objectContaining({ code: 'LOCKED' }))
    await expect(locked.unlock('SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject(
      { code: 'BAD_KEY' },
    )
    await locked.unlock(unlockKey)
    const again = await openSealed(dir, locked)
    expect((await again.load()).entries.map((e) => e.data)).toEqual([text('x')])
    await again.close()
  })

  it('rotates the data key behind a snapshot and retires the old one', async () => {
    const dir = temp()
    const keys = await KeyManager.open(join(dir, 'keys.json'))
    let s = await openSealed(dir, keys)
    const conf = { voters: ['a'], learners: [] }
    for (let i = 1; i <= 20; i++)
      await s.save({ entries: [{ index: i, term: 1, type: 0, data: text(`old${i}`) }] })
    await keys.rotateDataKey()
    for (let i = 21; i <= 25; i++)
      await s.save({ entries: [{ index: i, term: 1, type: 0, data: text(`new${i}`) }] })
    await s.save({ snapshot: { meta: { index: 25, term: 1, conf }, data: text('state@25') } })
    await s.compact(25)
    await keys.retirePreviousKeys(25)
    for (let i = 26; i <= 27; i++)
      await s.save({ entries: [{ index: i, term: 1, type: 0, data: text(`new${i}`) }] })
    await s.close()
    keys.close()
    const k2 = await KeyManager.open(join(dir, 'keys.json'))
    expect(k2.hasPreviousKeys).toBe(false)
    s = await openSealed(dir, k2)
    const st = await s.load()
    expect(st.snapshot?.data).toEqual(text('state@25'))
    expect(st.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['new26', 'new27'])
    await s.close()
  })
})
