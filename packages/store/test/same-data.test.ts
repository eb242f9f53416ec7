import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { equalPlain } from '../src/internal/data.js'
import { sameData } from '../src/internal/intern.js'

/** A deep copy, keys in the same order, undefined fields and Uint8Array kept. */
function copy(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v)
  if (Array.isArray(v)) return v.map(copy)
  if (v === null || typeof v !== 'object') return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = copy((v as Record<string, unknown>)[k])
  return out
}

/** The same, with each object's keys reversed. */
function reordered(v: unknown): unknown {
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map(reordered)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).reverse()) out[k] = reordered((v as Record<string, unknown>)[k])
  return out
}

describe('sameData', () => {
  it('says what ordered equalPlain says, for any plain data (property)', () => {
    // Few keys and values, so that independent values are often equal; integer-like keys, which objects
    // list first whatever the order they were set in.
    const key = fc.constantFrom('a', 'b', 'c', '1', '0', 'meta')
    const leaf = fc.constantFrom<unknown>(
      'x',
      'y',
      1,
      0,
      -0,
      null,
      undefined,
      true,
      new Uint8Array([1, 2]),
      new Uint8Array([1, 3]),
    )
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4 }),
      ),
    }))
    const pair = fc.oneof(
      fc.tuple(value, value),
      value.map((v) => [v, copy(v)] as const),
      value.map((v) => [v, reordered(v)] as const),
    )
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(sameData(a, b)).toBe(equalPlain(a, b, true))
        expect(sameData(b, a)).toBe(equalPlain(b, a, true))
      }),
      { numRuns: 3000 },
    )
  })

  it('tells objects apart by key order, by an undefined field, and nested', () => {
    expect(sameData({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(false)
    expect(sameData({ a: 1, b: undefined }, { a: 1 })).toBe(false)
    expect(sameData({ a: { b: [1, { c: 'x' }] } }, { a: { b: [1, { c: 'x' }] } })).toBe(true)
    expect(sameData({ a: { b: [1, { c: 'x' }] } }, { a: { b: [1, { c: 'y' }] } })).toBe(false)
    expect(sameData({ a: { x: 1, y: 2 }, b: 1 }, { a: { x: 1, y: 2 }, c: 1 })).toBe(false)
    expect(sameData([], {})).toBe(false)
  })
})
