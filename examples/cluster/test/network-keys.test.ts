import { ipsecDataPlane, ipsecPlan, sendingKey, spiOf } from '@swarmkit/overlay'
import type { Cluster } from '@swarmkit/store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encryptedOverlays, ipsecInputOf } from '../src/encrypted-overlays.js'
import type { ClusterNode } from '../src/index.js'
import { keyRingOf, maintainNetworkKeys } from '../src/network-keys.js'
import { applyViewUpdate, type NetworkViewUpdate, type NodeView } from '../src/network-view.js'
import { cleanup, node, ok, waitFor } from './helpers.js'

const HOUR = 3600_000

/** A store holding only a cluster object (what the key manager reads and writes). */
function clusterStore() {
  let cluster = { id: 'c1', networkBootstrapKeys: [] } as unknown as Cluster
  const tx = {
    find: () => [cluster],
    update: (_t: string, c: Cluster) => {
      cluster = c
    },
  }
  return {
    get cluster() {
      return cluster
    },
    view: <R>(fn: (t: typeof tx) => R) => fn(tx),
    update: async <R>(fn: (t: typeof tx) => R) => fn(tx),
  }
}

describe('maintainNetworkKeys (the managers make and rotate the keys)', () => {
  it('makes a first key, rotates every 12 hours by the injected clock, and keeps three', async () => {
    const store = clusterStore()
    let now = 1_000_000
    const clock = { now: () => now }
    const s = store as unknown as Parameters<typeof maintainNetworkKeys>[0]
    expect(await maintainNetworkKeys(s, clock)).toBe('made')
    const first = keyRingOf(store.cluster)!
    expect(first.keys.map((k) => k.tag)).toEqual([1])
    expect(first.keys[0]!.key).toHaveLength(20)
    now += 12 * HOUR - 1
    expect(await maintainNetworkKeys(s, clock)).toBe('kept')
    now += 1
    expect(await maintainNetworkKeys(s, clock)).toBe('rotated')
    let ring = keyRingOf(store.cluster)!
    expect(ring.keys.map((k) => k.tag)).toEqual([2, 1])
    // The new key is only received with for a period: the previous one still seals.
    expect(sendingKey(ring).tag).toBe(1)
    for (let i = 0; i < 3; i++) {
      now += 12 * HOUR
      expect(await maintainNetworkKeys(s, clock)).toBe('rotated')
    }
    ring = keyRingOf(store.cluster)!
    // Newest (receive only), primary (seals), previous (still accepted): the oldest is gone.
    expect(ring.keys.map((k) => k.tag)).toEqual([5, 4, 3])
    expect(sendingKey(ring).tag).toBe(4)
    expect(new Set(ring.keys.map((k) => Buffer.from(k.key).toString('hex'))).size).toBe(3)
    expect(store.cluster.encryptionKeyLamportClock).toBe(5)
    expect(store.cluster.networkKeysRotatedAt).toBe(now)
    expect(store.cluster.networkBootstrapKeys!.every((k) => k.subsystem === 'networking:ipsec')).toBe(true)
  })
})

describe('IPsec for a node, from its view', () => {
  const key = (b: number) => new Uint8Array(20).fill(b)
  const view: NodeView = {
    nodes: [
      { id: 'n1', vtep: '198.18.0.1' },
      { id: 'n2', vtep: '198.18.0.2' },
      { id: 'n3', vtep: '198.18.0.3' },
    ],
    networks: [
      { id: 'sec', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
      { id: 'clear', vni: 4098, subnet: '10.0.2.0/24', gateway: '10.0.2.1' },
    ],
    services: [],
    tasks: [
      {
        id: 't1',
        name: 'a.1.t1',
        node: 'n1',
        addresses: { sec: '10.0.1.2', clear: '10.0.2.2' },
        healthy: true,
      },
      { id: 't2', name: 'a.2.t2', node: 'n2', addresses: { sec: '10.0.1.3' }, healthy: true },
      { id: 't3', name: 'b.1.t3', node: 'n3', addresses: { clear: '10.0.2.3' }, healthy: true },
    ],
    security: {
      encrypted: ['sec'],
      keys: [
        { tag: 1, key: key(0x11) },
        { tag: 2, key: key(0x22) },
      ],
    },
  }

  it('peers only with nodes that have a task on the encrypted network, and makes these exact commands', () => {
    const input = ipsecInputOf(view, { id: 'n1', addr: '198.18.0.1' })!
    expect(input.peers).toEqual(['198.18.0.2'])
    expect(input.vnis).toEqual([4097])
    expect(input.ring.keys.map((k) => k.tag)).toEqual([2, 1])
    const plan = ipsecPlan(input)
    const reqid = input.reqid!
    const hex = (b: number) => `0x${b.toString(16).repeat(20)}`
    const state = (src: string, dst: string, tag: number, b: number) =>
      `xfrm state add src ${src} dst ${dst} proto esp spi 0x${spiOf(src, dst, tag).toString(16)} reqid ${reqid} mode transport aead rfc4106(gcm(aes)) ${hex(b)} 128`
    expect([...plan.states.values()].sort()).toEqual(
      [
        state('198.18.0.1', '198.18.0.2', 2, 0x22),
        state('198.18.0.2', '198.18.0.1', 2, 0x22),
        state('198.18.0.1', '198.18.0.2', 1, 0x11),
        state('198.18.0.2', '198.18.0.1', 1, 0x11),
      ].sort(),
    )
    // One outbound policy per peer, sealing with the primary key (tag 1 of [2, 1]).
    expect([...plan.policies.values()]).toEqual([
      `xfrm policy update src 198.18.0.1/32 dst 198.18.0.2/32 proto udp dport 4789 dir out mark 0xd0c4e3 mask 0xffffffff tmpl src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x${spiOf('198.18.0.1', '198.18.0.2', 1).toString(16)} reqid ${reqid} mode transport`,
    ])
    expect(plan.nft).toContain(`table inet ${input.table} {`)
    expect(plan.nft).toContain('udp dport 4789 @th,96,24 { 4097 } meta mark set 0xd0c4e3')
    expect(plan.nft).toContain('udp dport 4789 @th,96,24 { 4097 } meta secpath missing drop')
  })

  it('is nothing without encrypted networks, and fails without keys', () => {
    const { security: _, ...clear } = view
    expect(ipsecInputOf(clear, { id: 'n1', addr: '198.18.0.1' })).toBeUndefined()
    expect(() =>
      ipsecInputOf({ ...view, security: { encrypted: ['sec'], keys: [] } }, { id: 'n1', addr: '198.18.0.1' }),
    ).toThrow(/no encryption keys/)
  })
})

describe('encryptedOverlays (a worker programs IPsec, or fails closed)', () => {
  const key = (b: number) => new Uint8Array(20).fill(b)
  const view: NodeView = {
    nodes: [
      { id: 'n1', vtep: '198.18.0.1' },
      { id: 'n2', vtep: '198.18.0.2' },
    ],
    networks: [
      { id: 'sec', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
      { id: 'clear', vni: 4098, subnet: '10.0.2.0/24', gateway: '10.0.2.1' },
    ],
    services: [],
    tasks: [
      {
        id: 't1',
        name: 'a.1.t1',
        node: 'n1',
        addresses: { sec: '10.0.1.2', clear: '10.0.2.2' },
        healthy: true,
      },
      { id: 't2', name: 'a.2.t2', node: 'n2', addresses: { sec: '10.0.1.3' }, healthy: true },
    ],
    security: { encrypted: ['sec'], keys: [{ tag: 1, key: key(0x11) }] },
  }
  const local = { id: 'n1', addr: '198.18.0.1' }
  const recorder = () => {
    const calls: string[] = []
    const plane = ipsecDataPlane({
      exec: async (file, args, o) => {
        calls.push(`${file} ${args.join(' ')}\n${o?.input ?? ''}`)
        return ''
      },
    })
    return { calls, plane }
  }

  it('runs exactly these iproute2 and nft commands, and keeps the sealed network', async () => {
    const { calls, plane } = recorder()
    const enc = encryptedOverlays({ plane, probe: async () => {} })
    await enc.sync(view, local)
    const { table, reqid } = ipsecInputOf(view, local)!
    const out = spiOf('198.18.0.1', '198.18.0.2', 1).toString(16)
    const back = spiOf('198.18.0.2', '198.18.0.1', 1).toString(16)
    const k = `0x${'11'.repeat(20)}`
    expect(calls).toEqual([
      `ip -batch -\nxfrm policy update src 198.18.0.1/32 dst 198.18.0.2/32 proto udp dport 4789 dir out mark 0xd0c4e3 mask 0xffffffff tmpl src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x${out} reqid ${reqid} mode transport\n`,
      `nft -f -\n${ipsecPlan(ipsecInputOf(view, local)!).nft}`,
      `ip -batch -\nxfrm state add src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x${out} reqid ${reqid} mode transport aead rfc4106(gcm(aes)) ${k} 128\nxfrm state add src 198.18.0.2 dst 198.18.0.1 proto esp spi 0x${back} reqid ${reqid} mode transport aead rfc4106(gcm(aes)) ${k} 128\n`,
    ])
    expect(calls[1]).toContain(`table inet ${table} {`)
    expect(enc.sealedView(view).networks.map((n) => n.id)).toEqual(['sec', 'clear'])
    expect(enc.refusal(['sec'], view)).toBeUndefined()
  })

  it('on a kernel without ESP or AES-GCM installs nothing, leaves the network out and refuses its tasks', async () => {
    const { calls, plane } = recorder()
    const enc = encryptedOverlays({
      plane,
      probe: async () => {
        throw new Error(
          'this kernel cannot seal overlay traffic: ESP with rfc4106(gcm(aes)) is not available',
        )
      },
    })
    await enc.sync(view, local)
    expect(calls).toEqual([])
    const built = enc.sealedView(view)
    expect(built.networks.map((n) => n.id)).toEqual(['clear'])
    expect(built.tasks).toEqual([{ ...view.tasks[0]!, addresses: { clear: '10.0.2.2' } }])
    expect(JSON.stringify(built)).not.toContain('security')
    expect(enc.refusal(['sec', 'clear'], view)).toMatch(
      /^encrypted overlay network sec cannot be sealed on this node, so the task is not attached to it in clear: .*ESP with rfc4106\(gcm\(aes\)\) is not available/,
    )
    expect(enc.refusal(['clear'], view)).toBeUndefined()
  })

  it('fails closed while the keys have not arrived', async () => {
    const { calls, plane } = recorder()
    const enc = encryptedOverlays({ plane, probe: async () => {} })
    const keyless = { ...view, security: { encrypted: ['sec'], keys: [] } }
    await enc.sync(keyless, local)
    expect(calls).toEqual([])
    expect(enc.refusal(['sec'], keyless)).toMatch(/no encryption keys/)
    expect(enc.sealedView(keyless).networks.map((n) => n.id)).toEqual(['clear'])
  })
})

describe('encrypted networks in the network view (in-process cluster, workers over mutual TLS)', {
  timeout: 90_000,
}, () => {
  let mgr: ClusterNode
  let onSec: ClusterNode
  let offSec: ClusterNode
  const got = new Map<string, NetworkViewUpdate[]>()
  const views = new Map<string, NodeView>()

  /** Records the view updates a worker's agent hands its executor (they came over its TLS session). */
  const listen = (n: ClusterNode, name: string) => {
    got.set(name, [])
    views.set(name, { nodes: [], networks: [], services: [], tasks: [] })
    const executor = n.daemon.agent!.executor as { networkView?: (u: NetworkViewUpdate) => void }
    executor.networkView = (u) => {
      got.get(name)!.push(u)
      views.set(name, applyViewUpdate(views.get(name)!, u))
    }
  }

  beforeAll(async () => {
    mgr = await node('nk-mgr')
    onSec = await node('nk-on')
    offSec = await node('nk-off')
    await ok(mgr, ['swarm', 'init'])
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    for (const w of [onSec, offSec])
      await ok(w, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
    listen(onSec, 'on')
    listen(offSec, 'off')
    listen(mgr, 'mgr')
    await ok(mgr, ['network', 'create', '-d', 'overlay', '--opt', 'encrypted', 'sec'])
    await ok(mgr, ['network', 'create', '-d', 'overlay', 'clear'])
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      's',
      '--network',
      'sec',
      '--constraint',
      'node.hostname==nk-on',
      'busybox',
    ])
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      'c',
      '--network',
      'clear',
      '--replicas',
      '2',
      '--constraint',
      'node.role==worker',
      'busybox',
    ])
  })

  afterAll(async () => {
    for (const n of [offSec, onSec, mgr]) await n?.close()
    cleanup()
  })

  const keyText = () => {
    const ring = keyRingOf(mgr.daemon.manager!.store.view((tx) => tx.find('clusters')[0]))!
    return ring.keys.flatMap((k) => [
      Buffer.from(k.key).toString('hex'),
      Buffer.from(k.key).toString('base64'),
    ])
  }

  it('sends the keys to the node with a task on the encrypted network, and to no other', async () => {
    const sec = (await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'sec'])).trim()
    await waitFor(
      () => views.get('on')!.security?.keys.length === 1,
      'the keys on nk-on',
      30_000,
      () =>
        JSON.stringify([
          got.get('on')!.length,
          views.get('on'),
          mgr.daemon.manager!.store.view((tx) => tx.find('clusters')[0]?.networkBootstrapKeys?.length),
        ]),
    )
    expect(views.get('on')!.security!.encrypted).toEqual([sec])
    await waitFor(() => views.get('off')!.tasks.length === 2, 'the clear network on nk-off', 30_000)
    // nk-off (tasks on the clear network only) and the manager (no task) never got a key.
    for (const name of ['off', 'mgr'])
      expect(
        got.get(name)!.some((u) => u.security),
        `${name} got keys`,
      ).toBe(false)
    const held = Buffer.from(views.get('on')!.security!.keys[0]!.key).toString('hex')
    expect(keyText()).toContain(held)
  })

  it('never shows the keys through the Engine API', async () => {
    const outputs = await Promise.all(
      [
        ['swarm', 'join-token', 'worker'],
        ['info', '--format', '{{json .}}'],
        ['network', 'inspect', 'sec'],
        ['service', 'inspect', 's'],
        ['node', 'inspect', 'nk-on'],
      ].map((args) => ok(mgr, args)),
    )
    const tasks = (await ok(mgr, ['service', 'ps', '-q', 's'])).trim().split('\n')
    outputs.push(await ok(mgr, ['inspect', '--type', 'task', ...tasks]))
    expect(JSON.parse(outputs[2]!)[0].Options.encrypted).toBe('')
    for (const text of keyText()) for (const out of outputs) expect(out).not.toContain(text)
  })

  it('sends a rotation as a change of the keys only, to that node only', async () => {
    const before = { on: got.get('on')!.length, off: got.get('off')!.length }
    const later = Date.now() + 13 * 3600_000
    expect(await maintainNetworkKeys(mgr.daemon.manager!.store, { now: () => later })).toBe('rotated')
    await waitFor(() => views.get('on')!.security?.keys.length === 2, 'the rotated keys on nk-on', 30_000)
    const updates = got.get('on')!.slice(before.on)
    expect(updates.every((u) => !u.full && u.upsert.tasks.length === 0)).toBe(true)
    expect(
      views
        .get('on')!
        .security!.keys.map((k) => k.tag)
        .sort(),
    ).toEqual([1, 2])
    expect(
      got
        .get('off')!
        .slice(before.off)
        .some((u) => u.security),
    ).toBe(false)
  })
})
