import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { type Ipam, ipam, isOverlayError, OverlayError, rebuildIpam } from '../src/index.js'
import { cidrEnd, formatIp, overlaps, parseCidr } from '../src/internal/ip.js'

const rng = mulberry32

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (isOverlayError(err)) return err.code
    throw err
  }
  return undefined
}

describe('ipam', () => {
  it('cuts /24 subnets from 10.0.0.0/8 lowest first, gateway first', () => {
    const a = ipam()
    expect(a.allocateSubnet('ingress')).toEqual({
      network: 'ingress',
      subnet: '10.0.0.0/24',
      gateway: '10.0.0.1',
    })
    expect(a.allocateSubnet('web').subnet).toBe('10.0.1.0/24')
    expect(a.allocateAddress('ingress')).toBe('10.0.0.2')
    expect(a.allocateAddress('ingress')).toBe('10.0.0.3')
  })

  it('reserves network, broadcast and gateway, and hands out every other address once', () => {
    const a = ipam({ pools: [{ base: '10.9.0.0/16', size: 28 }] })
    a.allocateSubnet('n')
    const got = new Set<string>()
    for (let i = 0; i < 13; i++) got.add(a.allocateAddress('n'))
    expect(got.size).toBe(13)
    for (const r of ['10.9.0.0', '10.9.0.1', '10.9.0.15']) expect(got.has(r)).toBe(false)
    expect(code(() => a.allocateAddress('n'))).toBe('POOL_EXHAUSTED')
    expect(code(() => a.releaseAddress('n', '10.9.0.1'))).toBe('NOT_ALLOCATED')
    expect(code(() => a.releaseAddress('n', '10.9.0.15'))).toBe('NOT_ALLOCATED')
    a.releaseAddress('n', '10.9.0.7')
    expect(code(() => a.releaseAddress('n', '10.9.0.7'))).toBe('NOT_ALLOCATED')
    expect(a.allocateAddress('n')).toBe('10.9.0.7')
  })

  it('reuses a released address only after the others (next-fit)', () => {
    const a = ipam()
    a.allocateSubnet('n')
    const first = a.allocateAddress('n')
    a.allocateAddress('n')
    a.releaseAddress('n', first)
    expect(a.allocateAddress('n')).not.toBe(first)
  })

  it('gives POOL_EXHAUSTED when the pool has no subnet left', () => {
    const a = ipam({ pools: [{ base: '192.168.0.0/23', size: 24 }] })
    a.allocateSubnet('a')
    a.allocateSubnet('b')
    const err = (() => {
      try {
        a.allocateSubnet('c')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(OverlayError)
    expect((err as OverlayError).code).toBe('POOL_EXHAUSTED')
    a.releaseNetwork('a')
    expect(a.allocateSubnet('c').subnet).toBe('192.168.0.0/24')
  })

  it('checks and reserves user-given subnets, and pool allocation steps around them', () => {
    const a = ipam({ pools: ['10.0.0.0/16'] })
    expect(a.allocateSubnet('u', { subnet: '10.0.0.128/25', gateway: '10.0.0.254' })).toEqual({
      network: 'u',
      subnet: '10.0.0.128/25',
      gateway: '10.0.0.254',
    })
    expect(a.allocateSubnet('p').subnet).toBe('10.0.1.0/24')
    expect(code(() => a.allocateSubnet('x', { subnet: '10.0.0.0/16' }))).toBe('SUBNET_OVERLAP')
    expect(code(() => a.allocateSubnet('x', { subnet: '10.0.1.64/26' }))).toBe('SUBNET_OVERLAP')
    // Another small user subnet shares the slot; the slot frees only when both are gone.
    a.allocateSubnet('v', { subnet: '10.0.0.0/25' })
    a.releaseNetwork('u')
    expect(a.allocateSubnet('q').subnet).toBe('10.0.2.0/24')
    a.releaseNetwork('v')
    expect(a.allocateSubnet('r').subnet).toBe('10.0.0.0/24')
    // Outside every pool is fine too.
    expect(a.allocateSubnet('o', { subnet: '172.20.0.0/16' }).gateway).toBe('172.20.0.1')
    expect(a.allocateAddress('o', { address: '172.20.9.9' })).toBe('172.20.9.9')
    expect(code(() => a.allocateAddress('o', { address: '172.20.9.9' }))).toBe('IN_USE')
    expect(code(() => a.allocateAddress('o', { address: '172.20.0.1' }))).toBe('IN_USE')
    expect(code(() => a.allocateAddress('o', { address: '172.21.0.1' }))).toBe('OUT_OF_RANGE')
    expect(code(() => a.allocateSubnet('g', { subnet: '172.30.0.0/24', gateway: '172.30.0.255' }))).toBe(
      'OUT_OF_RANGE',
    )
    expect(a.allocateSubnet('g', { subnet: '172.30.0.0/24' }).subnet).toBe('172.30.0.0/24')
  })

  it('steps over a huge user-given subnet in one go', () => {
    const a = ipam({ pools: ['10.0.0.0/8', { base: 'fd00::/8', size: 64 }] })
    a.allocateSubnet('big4', { subnet: '10.0.0.0/9' })
    expect(a.allocateSubnet('next4').subnet).toBe('10.128.0.0/24')
    a.allocateSubnet('big6', { subnet: 'fd00::/20' })
    expect(a.allocateSubnet('next6', { family: 6 }).subnet).toBe('fd00:1000::/64')
    expect(code(() => a.allocateSubnet('x', { subnet: 'fd00::/8' }))).toBe('SUBNET_OVERLAP')
    // The pool's usable 2^48 /64s are fd00::/16: a user subnet over all of it exhausts it at once.
    const b = ipam({ pools: [{ base: 'fd00::/8', size: 64 }] })
    b.allocateSubnet('all', { subnet: 'fd00::/16' })
    expect(code(() => b.allocateSubnet('y', { family: 6 }))).toBe('POOL_EXHAUSTED')
  })

  it('allocates IPv6 subnets and addresses, canonically written', () => {
    const a = ipam({ pools: ['10.0.0.0/8', 'fd00:5a::/48'] })
    a.allocateSubnet('n')
    expect(a.allocateSubnet('n', { family: 6 })).toEqual({
      network: 'n',
      subnet: 'fd00:5a::/64',
      gateway: 'fd00:5a::1',
    })
    expect(a.allocateSubnet('m', { family: 6 }).subnet).toBe('fd00:5a:0:1::/64')
    expect(a.allocateAddress('n')).toBe('10.0.0.2')
    expect(a.allocateAddress('n', { family: 6 })).toBe('fd00:5a::2')
    expect(a.allocateAddress('n', { address: 'FD00:5A:0:0:ffff:ffff:ffff:ffff' })).toBe(
      'fd00:5a::ffff:ffff:ffff:ffff',
    )
    expect(a.has('n', 'fd00:5a::ffff:ffff:ffff:ffff')).toBe(true)
    a.releaseAddress('n', 'fd00:5a::ffff:ffff:ffff:ffff')
    expect(a.has('n', 'fd00:5a::ffff:ffff:ffff:ffff')).toBe(false)
    expect(a.state().addresses).toEqual([
      { network: 'n', address: '10.0.0.2' },
      { network: 'n', address: 'fd00:5a::2' },
    ])
    const b = ipam({ pools: ['10.0.0.0/8'] })
    expect(code(() => b.allocateSubnet('x', { family: 6 }))).toBe('POOL_EXHAUSTED')
  })

  it('refuses bad input with TypeError/RangeError naming the argument', () => {
    const a = ipam()
    expect(() => a.allocateSubnet('')).toThrow(TypeError)
    expect(() => a.allocateSubnet('n', { subnet: '10.0.0.1/24' })).toThrow(/host bits/)
    expect(() => a.allocateSubnet('n', { subnet: '10.0.0.0/31' })).toThrow(RangeError)
    expect(() => a.allocateSubnet('n', { subnet: '10.00.0.0/24' })).toThrow(/request.subnet/)
    expect(() => ipam({ pools: ['10.0.0.0/8', '10.1.0.0/16'] })).toThrow(/overlaps/)
    expect(() => ipam({ pools: [{ base: '10.0.0.0/16', size: 8 }] })).toThrow(/pools\[0\].size/)
    expect(code(() => a.allocateAddress('nope'))).toBe('NOT_FOUND')
  })
})

describe('ipam properties', () => {
  it('never hands out an address twice across a million random allocations and releases (IPv4 and IPv6)', () => {
    const seed = Number(process.env.SEED ?? 0x5eed)
    const r = rng(seed)
    const a = ipam({ pools: [{ base: '10.0.0.0/8', size: 16 }, 'fd00::/48'] })
    a.allocateSubnet('big') // 10.0.0.0/16
    a.allocateSubnet('small', { subnet: '10.1.0.0/26' }) // exhausts often
    a.allocateSubnet('dual')
    a.allocateSubnet('dual', { family: 6 })
    const nets: Array<{ network: string; family: 4 | 6 }> = [
      { network: 'big', family: 4 },
      { network: 'small', family: 4 },
      { network: 'dual', family: 4 },
      { network: 'dual', family: 6 },
    ]
    const live = nets.map(() => ({ list: [] as string[], set: new Set<string>() }))
    let allocs = 0
    let exhausted = 0
    const ops = 1_000_000
    for (let i = 0; i < ops; i++) {
      const k = Math.floor(r() * nets.length)
      const { network, family } = nets[k]!
      const l = live[k]!
      // Drift between filling up and draining so both full and sparse bitmaps are exercised.
      const pAlloc = Math.floor(i / 100_000) % 2 === 0 ? 0.6 : 0.4
      if (l.list.length === 0 || r() < pAlloc) {
        let addr: string
        try {
          addr = a.allocateAddress(network, { family })
        } catch (err) {
          if (isOverlayError(err, 'POOL_EXHAUSTED')) {
            exhausted++
            continue
          }
          throw err
        }
        if (l.set.has(addr))
          throw new Error(`seed ${seed}: ${addr} handed out twice on ${network} at op ${i}`)
        l.set.add(addr)
        l.list.push(addr)
        allocs++
      } else {
        const j = Math.floor(r() * l.list.length)
        const addr = l.list[j]!
        l.list[j] = l.list[l.list.length - 1]!
        l.list.pop()
        l.set.delete(addr)
        a.releaseAddress(network, addr)
      }
    }
    expect(allocs).toBeGreaterThan(400_000)
    expect(exhausted).toBeGreaterThan(0)
    // The allocator holds exactly what the model holds.
    const held = a
      .state()
      .addresses.map((x) => `${x.network} ${x.address}`)
      .sort()
    const model = nets.flatMap((n, k) => [...live[k]!.set].map((addr) => `${n.network} ${addr}`)).sort()
    expect(held).toEqual(model)
  })

  it('rebuilds exactly the same state from the records, and the rebuilt allocator stays consistent', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 3000 }), (seed, n) => {
        const r = rng(seed)
        const pools = [{ base: '10.0.0.0/16', size: 20 }, 'fd00:1::/56']
        const a = ipam({ pools })
        const nets = ['n0', 'n1', 'n2']
        for (const net of nets) {
          a.allocateSubnet(net, { family: r() < 0.5 ? 4 : 6 })
          if (r() < 0.5) a.allocateSubnet(net, { family: r() < 0.5 ? 4 : 6 })
        }
        const held: Array<[string, string]> = []
        for (let i = 0; i < n; i++) {
          const net = nets[Math.floor(r() * nets.length)]!
          if (held.length > 0 && r() < 0.3) {
            const [hn, addr] = held.splice(Math.floor(r() * held.length), 1)[0]!
            a.releaseAddress(hn, addr)
          } else held.push([net, a.allocateAddress(net)])
        }
        const state = a.state()
        const b: Ipam = rebuildIpam(state, { pools })
        expect(b.state()).toEqual(state)
        // Both go on without handing out a held address.
        const more = b.allocateAddress('n0')
        expect(held.some(([hn, x]) => hn === 'n0' && x === more)).toBe(false)
        expect(b.allocateSubnet('fresh').subnet).toBe(a.allocateSubnet('fresh').subnet)
      }),
      { numRuns: 60, seed: 42 },
    )
  })

  it('never lets pools or subnets overlap, whatever is asked', () => {
    const pools = [
      { base: '10.0.0.0/20', size: 24 },
      { base: '10.0.16.0/20', size: 26 },
      { base: 'fd00::/60', size: 64 },
    ]
    const poolCidrs = pools.map((p) => parseCidr(p.base, 'pool'))
    const op = fc.oneof(
      fc.record({ kind: fc.constant('pool' as const), family: fc.constantFrom(4 as const, 6 as const) }),
      fc.record({
        kind: fc.constant('user4' as const),
        third: fc.integer({ min: 0, max: 40 }),
        fourth: fc.integer({ min: 0, max: 255 }),
        prefix: fc.integer({ min: 18, max: 30 }),
      }),
      fc.record({
        kind: fc.constant('user6' as const),
        group: fc.integer({ min: 0, max: 20 }),
        prefix: fc.integer({ min: 56, max: 72 }),
      }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const a = ipam({ pools })
        let id = 0
        for (const o of ops) {
          const net = `n${id++}`
          try {
            if (o.kind === 'pool') a.allocateSubnet(net, { family: o.family })
            else if (o.kind === 'user4') {
              const c = parseCidr(`10.0.${o.third}.0/24`, 'x')
              const full = c.base + BigInt(o.fourth)
              const mask = ~((1n << BigInt(32 - o.prefix)) - 1n) & 0xffffffffn
              const base = full & mask
              const text = `${Number(base >> 24n)}.${Number((base >> 16n) & 255n)}.${Number((base >> 8n) & 255n)}.${Number(base & 255n)}/${o.prefix}`
              a.allocateSubnet(net, { subnet: text })
            } else if (o.kind === 'user6') {
              // fd00:0:0:<group>::/64 widened to the prefix (host bits cleared).
              const v = (0xfd00n << 112n) | (BigInt(o.group) << 64n)
              const base = v & ~((1n << BigInt(128 - o.prefix)) - 1n)
              const text = `${formatIp(6, base)}/${o.prefix}`
              a.allocateSubnet(net, { subnet: text })
            } else {
              const subs = a.state().subnets
              if (subs.length > 0) a.releaseNetwork(subs[o.pick % subs.length]!.network)
            }
          } catch (err) {
            if (!isOverlayError(err) || !['SUBNET_OVERLAP', 'POOL_EXHAUSTED'].includes(err.code)) throw err
          }
          const cidrs = a.state().subnets.map((s) => parseCidr(s.subnet, 's'))
          for (let i = 0; i < cidrs.length; i++)
            for (let j = i + 1; j < cidrs.length; j++) expect(overlaps(cidrs[i]!, cidrs[j]!)).toBe(false)
          // Every subnet is either inside one pool or outside all of them.
          for (const c of cidrs) {
            const touching = poolCidrs.filter((p) => overlaps(p, c))
            if (touching.length > 1)
              expect(touching.every((p) => c.base <= p.base && cidrEnd(c) >= cidrEnd(p))).toBe(true)
          }
        }
      }),
      { numRuns: 200, seed: 7 },
    )
  })
})
