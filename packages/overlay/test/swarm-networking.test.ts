import { describe, expect, it } from 'vitest'
import {
  type CommandRunner,
  ipsecPlan,
  linuxDriver,
  networkDb,
  newKeyRing,
  rotateKeyRing,
  rotationDue,
  sendingKey,
  spiOf,
  vipScript,
} from '../src/index.js'

describe('networkDb', () => {
  const setup = () => {
    const db = networkDb('n1')
    db.nodeUp('n1', '198.18.0.1')
    db.nodeUp('n2', '198.18.0.2')
    expect(db.attach('front')).toEqual([])
    return db
  }

  it('adds a remote endpoint, never a local one, and only on attached networks', () => {
    const db = setup()
    expect(db.endpointUp({ id: 't1', network: 'front', address: '10.0.0.5', node: 'n1' })).toEqual([])
    expect(db.endpointUp({ id: 't2', network: 'front', address: '10.0.0.6', node: 'n2' })).toEqual([
      { network: 'front', add: [{ address: '10.0.0.6', vtep: '198.18.0.2' }], remove: [] },
    ])
    expect(db.endpointUp({ id: 't3', network: 'back', address: '10.1.0.6', node: 'n2' })).toEqual([])
    // Attaching later returns what is known.
    expect(db.attach('back')).toEqual([{ address: '10.1.0.6', vtep: '198.18.0.2' }])
  })

  it('waits for a node’s address, removes its entries when it leaves, and moves them when it moves', () => {
    const db = setup()
    expect(db.endpointUp({ id: 't4', network: 'front', address: '10.0.0.7', node: 'n3' })).toEqual([])
    expect(db.nodeUp('n3', '198.18.0.3')).toEqual([
      { network: 'front', add: [{ address: '10.0.0.7', vtep: '198.18.0.3' }], remove: [] },
    ])
    expect(db.nodeUp('n3', '198.18.0.3')).toEqual([])
    expect(db.nodeUp('n3', '198.18.0.9')).toEqual([
      { network: 'front', add: [{ address: '10.0.0.7', vtep: '198.18.0.9' }], remove: [] },
    ])
    expect(db.nodeDown('n3')).toEqual([{ network: 'front', add: [], remove: ['10.0.0.7'] }])
    expect(db.peers('front')).toEqual([])
  })

  it('removes exactly the endpoint that went, and re-addresses a moved one', () => {
    const db = setup()
    db.endpointUp({ id: 'a', network: 'front', address: '10.0.0.6', node: 'n2' })
    db.endpointUp({ id: 'b', network: 'front', address: '10.0.0.8', node: 'n2' })
    expect(db.endpointUp({ id: 'a', network: 'front', address: '10.0.0.9', node: 'n2' })).toEqual([
      { network: 'front', add: [{ address: '10.0.0.9', vtep: '198.18.0.2' }], remove: ['10.0.0.6'] },
    ])
    expect(db.endpointDown('b')).toEqual([{ network: 'front', add: [], remove: ['10.0.0.8'] }])
    expect(db.endpointDown('b')).toEqual([])
    expect(db.peers('front')).toEqual([{ address: '10.0.0.9', vtep: '198.18.0.2' }])
  })
})

describe('linuxDriver.updatePeers', () => {
  it('adds and removes only the given entries (no flush, no other entry touched)', async () => {
    const calls: Array<{ file: string; args: string[]; input?: string }> = []
    const exec: CommandRunner = async (file, args, o) => {
      calls.push({ file, args, ...(o?.input === undefined ? {} : { input: o.input }) })
      if (args.includes('-V')) return 'ip utility'
      if (args.includes('neigh') && args.includes('show'))
        return JSON.stringify([{ dst: '10.0.0.6', lladdr: '02:42:0a:00:00:06' }])
      if (args.includes('link') && args.includes('show')) return '[]'
      if (args.includes('addr') && args.includes('show')) return '[]'
      return ''
    }
    const d = linuxDriver({ vtep: '198.18.0.1', namespace: 'fakens', exec })
    // The capability check needs root; these tests run as root or skip the driver part.
    if (process.getuid?.() !== 0) return
    await d.createNetwork({ id: 'front', vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1' })
    calls.length = 0
    await d.updatePeers('front', {
      add: [{ address: '10.0.0.9', vtep: '198.18.0.2' }],
      remove: ['10.0.0.6', '10.0.0.77'],
    })
    const batches = calls.filter((c) => c.args.includes('-batch'))
    expect(batches.map((b) => `${b.file}: ${b.input?.trim()}`)).toEqual([
      'bridge: fdb del 02:42:0a:00:00:06 dev skx35s self\nfdb replace 02:42:0a:00:00:09 dev skx35s dst 198.18.0.2 self permanent',
      'ip: neigh del 10.0.0.6 dev skx35s\nneigh replace 10.0.0.9 lladdr 02:42:0a:00:00:09 dev skx35s nud permanent',
    ])
    expect(calls.some((c) => c.args.includes('flush'))).toBe(false)
  })
})

describe('vipScript', () => {
  it('balances each VIP round-robin, refuses one with no backend, and replaces the table in one go', () => {
    const s = vipScript('swarmkit_lb', [
      { vip: '10.0.0.2', backends: ['10.0.0.5', '10.0.0.6', '10.0.0.7'] },
      { vip: '10.0.0.3', backends: ['10.0.0.8'] },
      { vip: '10.0.0.4', backends: [] },
    ])
    expect(s).toContain('table inet swarmkit_lb {}\ndelete table inet swarmkit_lb\n')
    expect(s).toContain(
      'ip daddr 10.0.0.2 dnat ip to numgen inc mod 3 map { 0 : 10.0.0.5, 1 : 10.0.0.6, 2 : 10.0.0.7 }',
    )
    expect(s).toContain('ip daddr 10.0.0.3 dnat ip to 10.0.0.8')
    expect(s).toContain('ip daddr 10.0.0.4 meta l4proto tcp reject with tcp reset')
    expect(vipScript('swarmkit_lb', [])).toBe('table inet swarmkit_lb {}\ndelete table inet swarmkit_lb\n')
  })

  it('rejects what could inject into the script', () => {
    expect(() => vipScript('lb; flush ruleset', [])).toThrow(RangeError)
    expect(() => vipScript('lb', [{ vip: '10.0.0.2 }', backends: [] }])).toThrow(/vips\[0\].vip/)
    expect(() => vipScript('lb', [{ vip: '10.0.0.2', backends: ['fd00::1'] }])).toThrow(RangeError)
  })
})

describe('IPsec keys and plan', () => {
  let n = 0
  const random = (len: number) => Uint8Array.from({ length: len }, () => ++n & 0xff)

  it('rotates: a new key is received with for one period before it sends; three keys at most', () => {
    const r1 = newKeyRing({ now: 0, random })
    expect(sendingKey(r1).tag).toBe(1)
    expect(rotationDue(r1, 12 * 3600_000 - 1)).toBe(false)
    expect(rotationDue(r1, 12 * 3600_000)).toBe(true)
    const r2 = rotateKeyRing(r1, { now: 1, random })
    expect(r2.keys.map((k) => k.tag)).toEqual([2, 1])
    expect(sendingKey(r2).tag).toBe(1)
    const r4 = rotateKeyRing(rotateKeyRing(r2, { random }), { random })
    expect(r4.keys.map((k) => k.tag)).toEqual([4, 3, 2])
    expect(sendingKey(r4).tag).toBe(3)
  })

  it('plans states per peer, direction and key, one outbound policy per peer on the sending SPI', () => {
    const ring = rotateKeyRing(newKeyRing({ random }), { random })
    const plan = ipsecPlan({
      local: '198.18.0.1',
      peers: ['198.18.0.2', '198.18.0.1'],
      ring,
      vnis: [4097, 4096],
    })
    expect(plan.states.size).toBe(4)
    expect(spiOf('198.18.0.1', '198.18.0.2', 1)).not.toBe(spiOf('198.18.0.2', '198.18.0.1', 1))
    const out = [...plan.states.values()].find((l) =>
      l.includes(`spi 0x${spiOf('198.18.0.1', '198.18.0.2', 2).toString(16)} `),
    )!
    expect(out).toMatch(
      /^xfrm state add src 198\.18\.0\.1 dst 198\.18\.0\.2 proto esp .* mode transport aead rfc4106\(gcm\(aes\)\) 0x[0-9a-f]{40} 128$/,
    )
    expect([...plan.policies.values()]).toEqual([
      `xfrm policy update src 198.18.0.1/32 dst 198.18.0.2/32 proto udp dport 4789 dir out mark 0xd0c4e3 mask 0xffffffff tmpl src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x${spiOf('198.18.0.1', '198.18.0.2', 1).toString(16)} reqid 23644 mode transport`,
    ])
    expect(plan.nft).toContain('udp dport 4789 @th,96,24 { 4096, 4097 } meta mark set 0xd0c4e3')
    expect(plan.nft).toContain('meta secpath missing drop')
  })

  it('refuses bad rings and keys', () => {
    expect(() =>
      ipsecPlan({ local: '198.18.0.1', peers: [], ring: { keys: [], rotatedAt: 0 }, vnis: [] }),
    ).toThrow(TypeError)
    expect(() =>
      ipsecPlan({
        local: '198.18.0.1',
        peers: [],
        ring: { keys: [{ key: new Uint8Array(16), tag: 1 }], rotatedAt: 0 },
        vnis: [],
      }),
    ).toThrow(/20 bytes/)
  })
})
