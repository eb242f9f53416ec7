import { describe, expect, it } from 'vitest'
import { crc32c } from '../src/internal/wal/crc32c.js'

function bitwise(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (const b of bytes) {
    c ^= b
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  }
  return ~c >>> 0
}

describe('crc32c', () => {
  it('matches the check value and the RFC 3720 (iSCSI) test vectors', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283)
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa)
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43)
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e)
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c)
    expect(crc32c(new Uint8Array(0))).toBe(0)
  })

  it('agrees with a bitwise reference on every length and alignment, whole or in pieces', () => {
    let seed = 12345
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
    for (let len = 0; len < 300; len++) {
      const bytes = Uint8Array.from({ length: len }, () => next() & 0xff)
      const want = bitwise(bytes)
      expect(crc32c(bytes)).toBe(want)
      const cut = len === 0 ? 0 : next() % len
      expect(crc32c(bytes, crc32c(bytes, 0, 0, cut), cut)).toBe(want)
    }
  })
})
