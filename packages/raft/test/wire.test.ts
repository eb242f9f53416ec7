import { describe, expect, it } from 'vitest'
import { decodeBatch, decodeHello, encodeBatch, encodeHello, WireError } from '../src/internal/wire.js'
import { dataBytes } from '../src/internal/wire-entry.js'
import { ent, msg, rng, T } from './helpers/cores.js'

describe('wire', () => {
  it('round-trips hellos and batches', () => {
    expect(decodeHello(encodeHello('n1', 'nø2'))).toEqual({ from: 'n1', to: 'nø2' })
    const ms = [
      msg({
        type: T.Append,
        from: 'a',
        to: 'b',
        term: 3,
        index: 7,
        logTerm: 2,
        commit: 5,
        entries: [ent(8, 3, 'x'), ent(9, 3, '')],
      }),
      msg({ type: T.AppendResp, from: 'a', to: 'b', term: 3, reject: true, hint: 4, context: 2 ** 40 }),
    ]
    const back = decodeBatch(encodeBatch(ms, 0, 2), 'a', 'b', 100)
    const plain = (m: (typeof ms)[number]) => ({
      ...m,
      entries: m.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: [...e.data] })),
    })
    expect(back.map(plain)).toEqual(ms.map(plain))
  })

  it('gives the data length of decoded and plain entries alike (dataBytes)', () => {
    const ents = [ent(8, 3, 'xyz'), ent(9, 3, ''), ent(10, 3, 'hello')]
    const frame = encodeBatch([msg({ type: T.Append, from: 'a', to: 'b', term: 3, entries: ents })], 0, 1)
    const back = decodeBatch(frame, 'a', 'b', 100)[0]!.entries
    expect(back.map(dataBytes)).toEqual([3, 0, 5])
    expect(ents.map(dataBytes)).toEqual([3, 0, 5])
    // A former follower leads: its log's decoded entries are encoded again, unchanged.
    const again = decodeBatch(
      encodeBatch([msg({ type: T.Append, from: 'b', to: 'c', term: 3, entries: back })], 0, 1),
      'b',
      'c',
      100,
    )[0]!.entries
    expect(again.map((e) => [...e.data])).toEqual(ents.map((e) => [...e.data]))
  })

  it('refuses garbage, truncated and oversized frames with a WireError, never anything else', () => {
    const good = encodeBatch(
      [msg({ type: T.Append, from: 'a', to: 'b', term: 1, entries: [ent(1, 1, 'hello')] })],
      0,
      1,
    )
    expect(() => decodeBatch(good, 'a', 'b', 2)).toThrow(WireError)
    const r = rng(9)
    for (let i = 0; i < 20_000; i++) {
      const f = good.slice(0, Math.floor(r() * (good.length + 1)))
      if (r() < 0.7 && f.length > 0) f[Math.floor(r() * f.length)] = Math.floor(r() * 256)
      try {
        decodeBatch(f, 'a', 'b', 1 << 20)
      } catch (err) {
        expect(err).toBeInstanceOf(WireError)
      }
      try {
        decodeHello(f)
      } catch (err) {
        expect(err).toBeInstanceOf(WireError)
      }
    }
  })
})
