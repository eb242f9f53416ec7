import { describe, expect, it } from 'vitest'
import { isOverlayError, type OverlayError, portAllocator, VNI_MAX, vniAllocator } from '../src/index.js'

function caught(fn: () => unknown): OverlayError {
  try {
    fn()
  } catch (err) {
    if (isOverlayError(err)) return err
    throw err
  }
  throw new Error('expected an OverlayError')
}

describe('vniAllocator', () => {
  it('hands out 4096 upward, lowest free first, and reserves user-given ones', () => {
    const v = vniAllocator()
    expect(v.allocate('a')).toBe(4096)
    v.reserve('b', 4097)
    v.reserve('low', 42)
    expect(v.allocate('c')).toBe(4098)
    const err = caught(() => v.reserve('d', 4097))
    expect(err.code).toBe('IN_USE')
    expect(err.holder).toBe('b')
    v.release(4096)
    expect(v.allocate('e')).toBe(4096)
    expect(v.holder(42)).toBe('low')
    expect(caught(() => v.release(5000)).code).toBe('NOT_ALLOCATED')
    expect(v.state().map((x) => x.vni)).toEqual([42, 4096, 4097, 4098])
  })

  it('covers the range up to 2^24-1 and says when it is exhausted', () => {
    const v = vniAllocator({ min: VNI_MAX - 2 })
    expect([v.allocate('a'), v.allocate('b'), v.allocate('c')]).toEqual([VNI_MAX - 2, VNI_MAX - 1, VNI_MAX])
    expect(caught(() => v.allocate('d')).code).toBe('POOL_EXHAUSTED')
    expect(() => v.reserve('x', VNI_MAX + 1)).toThrow(RangeError)
    expect(() => v.reserve('x', 0)).toThrow(/vni/)
  })
})

describe('portAllocator', () => {
  it('reserves explicit ports per protocol and refuses conflicts naming the holder', () => {
    const p = portAllocator()
    p.allocate('web', [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }])
    p.allocate('dns', [{ protocol: 'udp', targetPort: 53, publishedPort: 8080 }]) // another space
    const err = caught(() => p.allocate('api', [{ protocol: 'tcp', targetPort: 3000, publishedPort: 8080 }]))
    expect(err.code).toBe('IN_USE')
    expect(err.holder).toBe('web')
    expect(err.message).toMatch(/web/)
    expect(p.holder('tcp', 8080)).toBe('web')
  })

  it('picks dynamic ports from 30000-32767 and keeps them across updates', () => {
    const p = portAllocator()
    const [a] = p.allocate('web', [{ protocol: 'tcp', targetPort: 80 }])
    expect(a!.publishedPort).toBe(30000)
    const [b] = p.allocate('api', [{ protocol: 'tcp', targetPort: 80 }])
    expect(b!.publishedPort).toBe(30001)
    const updated = p.allocate('web', [
      { protocol: 'tcp', targetPort: 80 },
      { protocol: 'udp', targetPort: 53 },
    ])
    expect(updated.map((x) => x.publishedPort)).toEqual([30000, 30000])
    p.release('api')
    expect(p.allocate('x', [{ protocol: 'tcp', targetPort: 1 }])[0]!.publishedPort).toBe(30001)
  })

  it('is all or nothing: a failed update leaves the old reservation', () => {
    const p = portAllocator()
    p.allocate('web', [{ protocol: 'tcp', targetPort: 80, publishedPort: 80 }])
    p.allocate('db', [{ protocol: 'tcp', targetPort: 5432, publishedPort: 5432 }])
    expect(
      caught(() =>
        p.allocate('web', [
          { protocol: 'tcp', targetPort: 80, publishedPort: 81 },
          { protocol: 'tcp', targetPort: 5432, publishedPort: 5432 },
        ]),
      ).holder,
    ).toBe('db')
    expect(p.state()).toEqual([
      { service: 'web', protocol: 'tcp', port: 80 },
      { service: 'db', protocol: 'tcp', port: 5432 },
    ])
  })

  it('does not reserve host-mode ports, and exhausts the dynamic range cleanly', () => {
    const p = portAllocator({ dynamicRange: [40000, 40001] })
    p.allocate('h', [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }])
    expect(p.holder('tcp', 8080)).toBeUndefined()
    p.allocate('a', [
      { protocol: 'tcp', targetPort: 1 },
      { protocol: 'tcp', targetPort: 2 },
    ])
    expect(caught(() => p.allocate('b', [{ protocol: 'tcp', targetPort: 1 }])).code).toBe('POOL_EXHAUSTED')
    expect(() => p.allocate('b', [{ protocol: 'tcp', targetPort: 0 }])).toThrow(/ports\[0\].targetPort/)
    expect(() => p.allocate('b', [{ protocol: 'icmp' as 'tcp', targetPort: 1 }])).toThrow(TypeError)
    expect(
      caught(() =>
        p.allocate('c', [
          { protocol: 'tcp', targetPort: 1, publishedPort: 9 },
          { protocol: 'tcp', targetPort: 2, publishedPort: 9 },
        ]),
      ).code,
    ).toBe('IN_USE')
    expect(p.holder('tcp', 9)).toBeUndefined()
  })
})

describe('rebuilding VNIs and ports from the objects that hold them', () => {
  it('gives equal state and the same next choices', () => {
    const v = vniAllocator()
    const p = portAllocator()
    for (let i = 0; i < 50; i++) {
      v.allocate(`n${i}`)
      p.allocate(`s${i}`, [
        { protocol: i % 2 ? 'udp' : 'tcp', targetPort: 80 },
        { protocol: 'tcp', targetPort: 81, publishedPort: 1000 + i },
      ])
    }
    for (let i = 0; i < 50; i += 3) {
      v.release(4096 + i)
      p.release(`s${i}`)
    }
    const v2 = vniAllocator()
    for (const { network, vni } of v.state()) v2.reserve(network, vni)
    const p2 = portAllocator()
    const byService = new Map<string, Array<{ protocol: 'tcp' | 'udp' | 'sctp'; port: number }>>()
    for (const r of p.state()) byService.set(r.service, [...(byService.get(r.service) ?? []), r])
    for (const [service, held] of byService)
      p2.allocate(
        service,
        held.map((h) => ({ protocol: h.protocol, targetPort: 1, publishedPort: h.port })),
      )
    expect(v2.state()).toEqual(v.state())
    expect(p2.state()).toEqual(p.state())
    expect(v2.allocate('x')).toBe(v.allocate('x'))
    expect(p2.allocate('y', [{ protocol: 'tcp', targetPort: 1 }])).toEqual(
      p.allocate('y', [{ protocol: 'tcp', targetPort: 1 }]),
    )
  })
})
