import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Bitmap } from '../src/internal/bitmap.js'

describe('Bitmap (internal)', () => {
  it('agrees with a Set model under random set/clear/next/lowest, across chunk boundaries', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('set' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('clear' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('next' as const) }),
      fc.record({ k: fc.constant('lowest' as const) }),
    )
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 31, 33, 256, 65535, 65536, 65537, 200_000),
        fc.array(op, { maxLength: 300 }),
        (size, ops) => {
          const b = new Bitmap(size)
          const model = new Set<number>()
          for (const o of ops) {
            if (o.k === 'set') {
              const i = o.i % size
              expect(b.set(i)).toBe(!model.has(i))
              model.add(i)
            } else if (o.k === 'clear') {
              const i = o.i % size
              expect(b.clear(i)).toBe(model.has(i))
              model.delete(i)
            } else if (o.k === 'lowest') {
              const got = b.lowest()
              let want = -1
              for (let i = 0; i < size; i++)
                if (!model.has(i)) {
                  want = i
                  break
                }
              expect(got).toBe(want)
              if (got >= 0) model.add(got)
            } else {
              const got = b.next()
              if (model.size === size) expect(got).toBe(-1)
              else {
                expect(got).toBeGreaterThanOrEqual(0)
                expect(got).toBeLessThan(size)
                expect(model.has(got)).toBe(false)
                model.add(got)
              }
            }
            expect(b.used).toBe(model.size)
          }
          expect([...b.values()]).toEqual([...model].sort((x, y) => x - y))
        },
      ),
      { numRuns: 300, seed: 11 },
    )
  })
})
