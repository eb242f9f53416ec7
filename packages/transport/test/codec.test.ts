import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { messageCodec } from '../src/index.js'

describe('messageCodec', () => {
  it('round-trips values, with binaries decoded as copies that do not alias the frame', () => {
    const codec = messageCodec()
    const value = {
      a: [1, 'x', { bin: Uint8Array.of(1, 2, 3) }],
      big: new Uint8Array(10_000).fill(5),
      n: null,
    }
    const frame = codec.encode(value)
    // Decode from a view in the middle of a larger buffer, as frames cut from a socket read are.
    const chunk = new Uint8Array(frame.byteLength + 20)
    chunk.set(frame, 10)
    const decoded = codec.decode(chunk.subarray(10, 10 + frame.byteLength)) as typeof value
    chunk.fill(0)
    const small = (decoded.a[2] as { bin: Uint8Array }).bin
    expect(Array.from(small)).toEqual([1, 2, 3])
    expect(small.buffer).not.toBe(chunk.buffer)
    expect(decoded.big.every((b) => b === 5)).toBe(true)
    expect(decoded.n).toBeNull()
  })

  it('rejects empty, trailing, truncated and oversized frames with a TransportError', () => {
    const codec = messageCodec({ maxFrameBytes: 100 })
    expect(() => codec.decode(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }))
    expect(() => codec.decode(Uint8Array.of(0x92, 1, 2, 3))).toThrow(
      expect.objectContaining({ code: 'BAD_FRAME' }),
    )
    expect(() => codec.decode(Uint8Array.of(0x93, 1, 2))).toThrow(
      expect.objectContaining({ code: 'BAD_FRAME' }),
    )
    expect(() => codec.decode(new Uint8Array(101))).toThrow(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
    )
    expect(() => codec.encode(new Uint8Array(200))).toThrow(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
    )
    expect(() => messageCodec({ maxFrameBytes: -1 })).toThrow(RangeError)
  })

  it('survives hostile length headers and deep nesting without crashing', () => {
    const codec = messageCodec()
    for (const head of [0xdd, 0xdf, 0xdb, 0xc6]) {
      expect(() => codec.decode(Uint8Array.of(head, 0x7f, 0xff, 0xff, 0xff, 1))).toThrow(
        expect.objectContaining({ name: 'TransportError' }),
      )
    }
    expect(() => codec.decode(new Uint8Array(100_000).fill(0x91))).toThrow(
      expect.objectContaining({ code: 'BAD_FRAME' }),
    )
  })
})

describe('messageCodec types', () => {
  it('carries plain data, Maps (as objects), Sets, Dates and 64-bit bigints, and refuses RegExp, Error and typed arrays', () => {
    const codec = messageCodec()
    const when = new Date(1_700_000_000_000)
    const back = codec.decode(
      codec.encode({ m: new Map([['k', Uint8Array.of(1)]]), s: new Set([1, 2]), when, big: 2n ** 60n }),
    ) as { m: Record<string, Uint8Array>; s: Set<number>; when: Date; big: bigint }
    // msgpack maps decode as plain objects.
    expect(Array.from(back.m.k!)).toEqual([1])
    expect([...back.s]).toEqual([1, 2])
    expect(back.when.getTime()).toBe(when.getTime())
    expect(back.big).toBe(2n ** 60n)
    // What a hostile peer can send with msgpackr's extensions.
    const hostilePacker = new Packr({ moreTypes: true, useRecords: false })
    for (const hostile of [/a+$/, new Error('x'), new Float64Array(2), { nested: [new RangeError('y')] }]) {
      const frame = Uint8Array.from(hostilePacker.pack(hostile))
      expect(() => codec.decode(frame)).toThrow(expect.objectContaining({ code: 'BAD_FRAME' }))
    }
  })
})
