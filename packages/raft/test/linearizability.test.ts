import { describe, expect, it } from 'vitest'
import {
  checkLinearizability,
  type KvInput,
  type KvOutput,
  kvModel,
  type Operation,
} from '../src/testing/index.js'
import { rng } from './helpers/cores.js'

type Op = Operation<KvInput, KvOutput>
const put = (key: string, value: string, call: number, ret: number): Op => ({
  input: { op: 'put', key, value },
  output: ret === Number.POSITIVE_INFINITY ? undefined : { ok: true },
  call,
  return: ret,
})
const get = (key: string, value: string | null, call: number, ret: number): Op => ({
  input: { op: 'get', key },
  output: { value },
  call,
  return: ret,
})
const check = (h: Op[]) => checkLinearizability(kvModel, h).outcome
const INF = Number.POSITIVE_INFINITY

describe('checkLinearizability', () => {
  it('accepts a sequential history that follows the model', () => {
    expect(check([put('x', '1', 0, 1), get('x', '1', 2, 3), put('x', '2', 4, 5), get('x', '2', 6, 7)])).toBe(
      'ok',
    )
  })

  it('rejects a stale read after a write completed', () => {
    expect(check([put('x', '1', 0, 1), put('x', '2', 2, 3), get('x', '1', 4, 5)])).toBe('illegal')
  })

  it('accepts either value for a read concurrent with a write', () => {
    expect(check([put('x', '1', 0, 1), put('x', '2', 2, 6), get('x', '1', 3, 4)])).toBe('ok')
    expect(check([put('x', '1', 0, 1), put('x', '2', 2, 6), get('x', '2', 3, 4)])).toBe('ok')
  })

  it('rejects two sequential reads that see a concurrent write go backwards', () => {
    expect(check([put('x', '1', 0, 1), put('x', '2', 2, 10), get('x', '2', 3, 4), get('x', '1', 5, 6)])).toBe(
      'illegal',
    )
  })

  it('rejects a read of a value never written, and a read of the initial value after a write', () => {
    expect(check([get('x', 'zzz', 0, 1)])).toBe('illegal')
    expect(check([put('x', '1', 0, 1), get('x', null, 2, 3)])).toBe('illegal')
    expect(check([get('x', null, 0, 1), put('x', '1', 2, 3)])).toBe('ok')
  })

  it('lets an operation with unknown outcome take effect later, or never', () => {
    expect(check([put('x', '1', 0, INF), get('x', null, 1, 2), get('x', '1', 3, 4)])).toBe('ok')
    expect(check([put('x', '1', 0, INF), get('x', null, 1, 2), get('x', null, 3, 4)])).toBe('ok')
    // Once observed, it cannot be undone.
    expect(check([put('x', '1', 0, INF), get('x', '1', 1, 2), get('x', null, 3, 4)])).toBe('illegal')
  })

  it('checks keys independently (P-compositionality)', () => {
    const h = [put('x', '1', 0, 1), put('y', '1', 0, 1), get('y', '1', 2, 3), get('x', '1', 2, 3)]
    expect(check(h)).toBe('ok')
    const r = checkLinearizability(kvModel, [...h, get('y', null, 4, 5)])
    expect(r.outcome).toBe('illegal')
    expect(r.partition!.every((op) => op.input.key === 'y')).toBe(true)
  })

  it('handles appends', () => {
    const app = (v: string, c: number, r: number): Op => ({
      input: { op: 'append', key: 'k', value: v },
      output: { ok: true },
      call: c,
      return: r,
    })
    expect(check([app('a', 0, 5), app('b', 1, 6), get('k', 'ba', 7, 8)])).toBe('ok')
    expect(check([app('a', 0, 1), app('b', 2, 3), get('k', 'ba', 4, 5)])).toBe('illegal')
  })

  it('accepts random histories produced by a linearizable register and rejects them once a read is corrupted', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed)
      // Each op gets a linearization point; its interval [call, return] is drawn around that point.
      const ops: Op[] = []
      const state = new Map<string, string | null>()
      for (let i = 0; i < 40; i++) {
        const key = `k${Math.floor(r() * 3)}`
        const point = i * 10 + 5
        const call = point - Math.floor(r() * 30)
        const ret = r() < 0.05 ? INF : point + Math.floor(r() * 30)
        if (r() < 0.5) {
          const value = `v${i}`
          state.set(key, value)
          ops.push(put(key, value, call, ret))
        } else if (ret !== INF) {
          ops.push(get(key, state.get(key) ?? null, call, ret))
        }
      }
      expect(check(ops), `seed ${seed}`).toBe('ok')
      const reads = ops.map((o, i) => [o, i] as const).filter(([o]) => o.input.op === 'get')
      if (reads.length === 0) continue
      const [victim, at] = reads[Math.floor(r() * reads.length)]!
      const bad = ops.slice()
      bad[at] = { ...victim, output: { value: 'never-written' } }
      expect(check(bad), `seed ${seed} corrupted`).toBe('illegal')
    }
  })

  it('bounds an unknown put by the first read of its value, so many of them stay cheap to check', () => {
    // 24 writes whose outcome is unknown, each read once later: pending to the end, they made the search try
    // each at every point after its call; bounded by the read, the check is quick.
    const h: Op[] = []
    for (let i = 0; i < 24; i++) {
      h.push(put('x', `${i}`, i * 10, INF))
      h.push(get('x', `${i}`, i * 10 + 5, i * 10 + 6))
    }
    expect(checkLinearizability(kvModel, h, { maxSteps: 5_000 }).outcome).toBe('ok')
    // Read back out of order after both were read: still caught.
    const bad = [...h, get('x', '3', 1000, 1001)]
    expect(checkLinearizability(kvModel, bad, { maxSteps: 5_000 }).outcome).toBe('illegal')
    // A value written twice could come from either write: not bounded, but still correct.
    const twice = [put('x', 'a', 0, INF), put('x', 'a', 10, 11), get('x', 'a', 12, 13)]
    expect(check(twice)).toBe('ok')
  })

  it('decides reads concurrent with many writes without trying every order of the writes', () => {
    // The shape a durable simulation seed produced: reads of the initial value overlapping a dozen writes
    // whose values nobody read. The old search ran out of two million steps on it.
    const h: Op[] = []
    for (let i = 0; i < 12; i++) h.push(put('a', `w${i}`, 55 + i, 136 + i))
    for (let i = 0; i < 10; i++) h.push(get('a', null, 58 + i, 111 + i))
    h.push(put('a', 'last', 170, 171), get('a', 'last', 174, 175))
    expect(checkLinearizability(kvModel, h, { maxSteps: 20_000 }).outcome).toBe('ok')
    // One read of the initial value after a write completed makes it illegal, and that is found as fast.
    const bad = [...h, get('a', null, 150, 151)]
    expect(checkLinearizability(kvModel, bad, { maxSteps: 200_000 }).outcome).toBe('illegal')
  })

  it('reports unknown when the search budget runs out', () => {
    const h: Op[] = []
    for (let i = 0; i < 30; i++) h.push(put('x', `${i}`, 0, 100))
    h.push(get('x', 'nope', 101, 102))
    expect(checkLinearizability(kvModel, h, { maxSteps: 50 }).outcome).toBe('unknown')
  })

  it('validates its arguments', () => {
    expect(() => checkLinearizability(kvModel, null as never)).toThrow(TypeError)
    expect(() => check([put('x', '1', 5, 1)])).toThrow(RangeError)
  })
})
