import type { SwarmView } from '@swarmkit/overlay'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { applyViewUpdate, diffView, type NetworkViewUpdate } from '../src/network-view.js'
import { cleanup, node, ok, waitFor } from './helpers.js'

const net = (id: string, vni: number) => ({
  id,
  vni,
  subnet: `10.9.${vni - 4096}.0/24`,
  gateway: `10.9.${vni - 4096}.1`,
})
const task = (id: string, node: string, addr: string, healthy = true) => ({
  id,
  name: `web.1.${id}`,
  service: 's1',
  node,
  addresses: { n1: addr },
  healthy,
})

describe('diffView / applyViewUpdate', () => {
  it('sends everything first, then only what changed, and the worker ends with the same view', () => {
    const views: SwarmView[] = [
      {
        nodes: [{ id: 'a', vtep: '198.18.0.1' }],
        networks: [net('n1', 4097)],
        services: [],
        tasks: [task('t1', 'a', '10.9.1.2')],
      },
      {
        nodes: [
          { id: 'a', vtep: '198.18.0.1' },
          { id: 'b', vtep: '198.18.0.2' },
        ],
        networks: [net('n1', 4097)],
        services: [{ id: 's1', name: 'web', endpointMode: 'vip', vips: { n1: '10.9.1.9' } }],
        tasks: [task('t1', 'a', '10.9.1.2'), task('t2', 'b', '10.9.1.3', false)],
      },
      {
        nodes: [{ id: 'b', vtep: '198.18.0.2' }],
        networks: [net('n1', 4097)],
        services: [{ id: 's1', name: 'web', endpointMode: 'vip', vips: { n1: '10.9.1.9' } }],
        tasks: [task('t2', 'b', '10.9.1.3', true)],
      },
    ]
    let sent: ReturnType<typeof diffView>['sent'] | undefined
    let held: SwarmView = { nodes: [], networks: [], services: [], tasks: [] }
    const updates: NetworkViewUpdate[] = []
    for (const v of views) {
      const d = diffView(sent, v)
      sent = d.sent
      if (d.update) {
        updates.push(d.update)
        held = applyViewUpdate(held, d.update)
      }
      const sort = (x: SwarmView) =>
        JSON.stringify(
          Object.fromEntries(
            Object.entries(x).map(([k, l]) => [k, [...l].sort((p, q) => (p.id < q.id ? -1 : 1))]),
          ),
        )
      expect(sort(held)).toEqual(sort(v))
    }
    expect(updates[0]!.full).toBe(true)
    // The third view changed t2 (now healthy) and removed t1 and node a; network n1 was not sent again.
    expect(updates[2]!.upsert.tasks.map((t) => t.id)).toEqual(['t2'])
    expect(updates[2]!.remove.tasks).toEqual(['t1'])
    expect(updates[2]!.remove.nodes).toEqual(['a'])
    expect(updates[2]!.upsert.networks).toEqual([])
    expect(diffView(sent, views[2]!).update).toBeUndefined()
  })

  it('refuses an update that is not one', () => {
    const bad = { kind: 'network-view', full: false, viewOnly: false, upsert: { nodes: 'x' }, remove: {} }
    expect(() => applyViewUpdate({ nodes: [], networks: [], services: [], tasks: [] }, bad as never)).toThrow(
      TypeError,
    )
  })
})

describe('the network view in the assignment stream (in-process cluster)', { timeout: 60_000 }, () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  const stop = new AbortController()
  const got: NetworkViewUpdate[] = []
  let wrkId = ''
  let view: SwarmView = { nodes: [], networks: [], services: [], tasks: [] }
  const mgrGot: NetworkViewUpdate[] = []
  let mgrView: SwarmView = { nodes: [], networks: [], services: [], tasks: [] }

  beforeAll(async () => {
    mgr = await node('nv-mgr')
    wrk = await node('nv-wrk')
    await ok(mgr, ['swarm', 'init'])
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
    wrkId = (await ok(wrk, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
    void (async () => {
      for await (const m of mgr.daemon.manager!.dispatcher.assignments(wrkId, stop.signal))
        if (m.view) {
          got.push(m.view)
          view = applyViewUpdate(view, m.view)
        }
    })()
    const mgrId = (await ok(mgr, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
    void (async () => {
      for await (const m of mgr.daemon.manager!.dispatcher.assignments(mgrId, stop.signal))
        if (m.view) {
          mgrGot.push(m.view)
          mgrView = applyViewUpdate(mgrView, m.view)
        }
    })()
  })

  afterAll(async () => {
    stop.abort()
    await wrk?.close()
    await mgr?.close()
    cleanup()
  })

  it('sends a node nothing while none of its tasks is on an overlay network', async () => {
    await ok(mgr, ['service', 'create', '-d', '--name', 'plain', '--replicas', '2', 'busybox'])
    await waitFor(
      async () => (await ok(mgr, ['service', 'ps', '-q', 'plain'])).trim().split('\n').length === 2,
      'plain tasks',
    )
    expect(got).toEqual([])
  })

  it('gives tasks distinct addresses, apart from the VIP, and sends the view of their networks', async () => {
    await ok(mgr, ['network', 'create', '-d', 'overlay', 'front'])
    await ok(mgr, ['network', 'create', '-d', 'overlay', 'other'])
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--network',
      'front',
      '--replicas',
      '4',
      'busybox',
    ])
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      'hidden',
      '--network',
      'other',
      '--constraint',
      'node.role==manager',
      'busybox',
    ])
    const front = (await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'front'])).trim()
    const other = (await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'other'])).trim()
    await waitFor(
      () => view.tasks.filter((t) => t.healthy).length === 4 && view.services.some((s) => s.name === 'web'),
      'the worker view with 4 running web tasks',
      30_000,
      () => JSON.stringify(view),
    )
    const addrs = view.tasks.map((t) => t.addresses[front])
    const vip = view.services.find((s) => s.name === 'web')!.vips![front]
    expect(new Set([...addrs, vip]).size).toBe(5)
    expect(view.networks.map((n) => n.id)).toEqual([front])
    // Tasks on both nodes, and both nodes' underlay addresses; nothing of the other network.
    expect(new Set(view.tasks.map((t) => t.node)).size).toBe(2)
    expect(view.nodes).toHaveLength(2)
    expect(JSON.stringify(view)).not.toContain(other)
    // The worker holds the same addresses the store gives (docker inspect of the tasks).
    for (const t of view.tasks) {
      const j = JSON.parse(await ok(mgr, ['inspect', '--type', 'task', t.id]))[0]
      expect(j.NetworksAttachments[0].Addresses[0].split('/')[0]).toBe(t.addresses[front])
    }
    // A service created later gets a VIP no task holds (the VIP allocator once ignored task addresses).
    await ok(mgr, ['service', 'create', '-d', '--name', 'later', '--network', 'front', 'busybox'])
    const later = JSON.parse(await ok(mgr, ['service', 'inspect', 'later']))[0].Endpoint.VirtualIPs[0].Addr
    expect(addrs).not.toContain(later.split('/')[0])
  })

  it('follows a scale-down with changes only', async () => {
    const before = [got.length, mgrGot.length]
    await ok(mgr, ['service', 'scale', '-d', 'web=1'])
    // The task left may be on either node: the node without one gets an empty view.
    const web = (healthy: boolean) =>
      new Set(
        [...view.tasks, ...mgrView.tasks]
          .filter((t) => (t.healthy || !healthy) && t.name.startsWith('web.'))
          .map((t) => t.id),
      )
    await waitFor(
      () =>
        web(true).size === 1 &&
        web(false).size === 1 &&
        (view.tasks.length === 0 || view.tasks.some((t) => t.node === wrkId)),
      'one web task left in the views',
      30_000,
      () => `${JSON.stringify(view.tasks)} ${JSON.stringify(mgrView.tasks)}`,
    )
    const later = [...got.slice(before[0]), ...mgrGot.slice(before[1])]
    expect(later.every((u) => !u.full)).toBe(true)
    expect(later.some((u) => u.remove.tasks.length > 0)).toBe(true)
  })
})
