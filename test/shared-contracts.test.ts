import * as pki from '@swarmkit/pki'
import * as store from '@swarmkit/store'
import { describe, expect, it } from 'vitest'

// Formats that two packages must both speak but that the layering keeps from having one home (pki may import no
// swarmkit package, store only raft): each side keeps its own code, and this test holds them to the same output.

function seeded(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0
  return (n) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0
      out[i] = s >>> 24
    }
    return out
  }
}

describe('shared contracts between packages', () => {
  it('makes the same IDs in pki and store from the same random bytes', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const id = store.generateId(seeded(seed))
      expect(pki.generateId(seeded(seed))).toBe(id)
      expect(pki.isValidId(id)).toBe(true)
      expect(store.isId(id)).toBe(true)
    }
    for (const edge of [new Uint8Array(16), new Uint8Array(16).fill(255)]) {
      expect(pki.generateId(() => edge)).toBe(store.generateId(() => edge))
    }
  })

  it('writes and reads the same unlock keys in pki and store', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const bytes = seeded(seed)(32)
      const text = store.formatUnlockKey(bytes)
      expect(pki.encodeUnlockKey(bytes)).toBe(text)
      expect(pki.parseUnlockKey(text)).toEqual(store.parseUnlockKey(text))
      expect(pki.generateUnlockKey({ random: seeded(seed) })).toBe(store.generateUnlockKey(seeded(seed)))
    }
  })

  it('refuses the same malformed unlock keys in pki and store', () => {
    const good = store.formatUnlockKey(new Uint8Array(32).fill(7))
    const bad = [
      '',
      'SWMKEY-1-',
      good.slice(0, -1),
      good.replace('SWMKEY-1', 'SWMKEY-2'),
      `${good.slice(0, -1)}B`,
    ]
    for (const text of bad) {
      expect(() => store.parseUnlockKey(text), text).toThrow()
      expect(() => pki.parseUnlockKey(text), text).toThrow()
    }
  })
})
