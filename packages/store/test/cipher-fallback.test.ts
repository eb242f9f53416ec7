import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'

// Where node:crypto lacks chacha20-poly1305 (an OpenSSL built without it), the KeyManager falls back to the
// all-JavaScript @noble/ciphers path, and what it seals opens with the native path elsewhere (and back).

afterEach(() => {
  vi.doUnmock('node:crypto')
  vi.resetModules()
})

describe('KeyManager without a native chacha20-poly1305', () => {
  it('seals with @noble/ciphers by default, byte-compatible with the native path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'store-fallback-'))
    try {
      vi.resetModules()
      vi.doMock('node:crypto', async (importOriginal) => {
        const real = await importOriginal<typeof import('node:crypto')>()
        return { ...real, getCiphers: () => real.getCiphers().filter((c) => c !== 'chacha20-poly1305') }
      })
      const without = await import('../src/index.js')
      const path = join(dir, 'keys.json')
      await expect(without.KeyManager.open(path, { cipher: 'native' })).rejects.toThrow(
        /has no chacha20-poly1305/,
      )
      const fallback = await without.KeyManager.open(path)
      vi.doUnmock('node:crypto')
      vi.resetModules()
      const withNative = await import('../src/index.js')
      const native = await withNative.KeyManager.open(path, { cipher: 'native' })

      const data = new TextEncoder().encode('sealed where OpenSSL has no ChaCha20-Poly1305')
      const entry = { kind: 'entry' as const, index: 3, term: 1, type: 0 }
      const header = new Uint8Array(16 + 13 * 2).fill(9)
      const run = { kind: 'entries' as const, index: 4, term: 2, type: 0, count: 2, header }
      for (const ctx of [entry, run]) {
        expect(native.hooks().open(fallback.hooks().seal(data, ctx), ctx)).toEqual(data)
        expect(fallback.hooks().open(native.hooks().seal(data, ctx), ctx)).toEqual(data)
      }
      fallback.close()
      native.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
