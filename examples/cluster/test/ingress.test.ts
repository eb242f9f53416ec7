// The ingress routing mesh's control side, in process: the leader attaches the tasks of services that
// publish ports to the ingress network and gives every node an ingress sandbox address; every node's view
// then carries the ingress network with every sandbox; the mesh stream names each port's target port and
// the tasks' ingress addresses. On the worker: a node whose kernel path cannot run keeps its data plane off
// the ingress network, and the userspace fallback forwards every published TCP and UDP target port.
import { createSocket } from 'node:dgram'
import { connect, createServer } from 'node:net'
import type { SwarmView } from '@swarmkit/overlay'
import { memoryDriver } from '@swarmkit/overlay'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { forwardTaskPorts } from '../src/endpoint-forwarder.js'
import type { ClusterNode } from '../src/index.js'
import { ingressSandboxId, ownIngress } from '../src/ingress-view.js'
import { kernelIngress, type PublishedPort } from '../src/kernel-ingress.js'
import { applyViewUpdate } from '../src/network-view.js'
import { cleanup, node, ok, waitFor } from './helpers.js'

describe('ingress attachments and views (in-process cluster)', { timeout: 60_000 }, () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  const stop = new AbortController()
  const ids: string[] = []
  const views = new Map<string, SwarmView>()
  const lists = new Map<string, Array<{ networks: Array<{ networkId: string }> }>>()
  let mesh: PublishedPort[] = []
  let ingress = ''

  beforeAll(async () => {
    mgr = await node('ing-mgr')
    wrk = await node('ing-wrk')
    await ok(mgr, ['swarm', 'init'])
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
    for (const n of [mgr, wrk]) ids.push((await ok(n, ['info', '--format', '{{.Swarm.NodeID}}'])).trim())
    const d = mgr.daemon.manager!.dispatcher
    for (const id of ids) {
      views.set(id, { nodes: [], networks: [], services: [], tasks: [] })
      void (async () => {
        for await (const m of d.assignments(id, stop.signal)) {
          if (m.view) views.set(id, applyViewUpdate(views.get(id)!, m.view))
          if (m.update.length > 0) lists.set(id, [...(lists.get(id) ?? []), ...m.update])
        }
      })()
    }
    void (async () => {
      for await (const list of d.mesh(ids[0]!, stop.signal)) mesh = list as PublishedPort[]
    })()
    ingress = (await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'ingress'])).trim()
  })

  afterAll(async () => {
    stop.abort()
    await wrk?.close()
    await mgr?.close()
    cleanup()
  })

  it('attaches the tasks of a publishing service and every node to ingress, with distinct addresses', async () => {
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      'pub',
      '--replicas',
      '2',
      '--replicas-max-per-node',
      '1',
      '--publish',
      '8080:80',
      '--publish',
      'published=5353,target=53,protocol=udp',
      'busybox',
    ])
    const taskIds = async () => (await ok(mgr, ['service', 'ps', '-q', 'pub'])).trim().split('\n')
    await waitFor(async () => (await taskIds()).length === 2, 'two pub tasks')
    const addressOf = async (id: string) => {
      const j = JSON.parse(await ok(mgr, ['inspect', '--type', 'task', id]))[0]
      const a = (j.NetworksAttachments ?? []).find(
        (x: { Network: { ID: string } }) => x.Network.ID === ingress,
      )
      return a ? String(a.Addresses[0]).split('/')[0]! : undefined
    }
    await waitFor(
      async () => (await Promise.all((await taskIds()).map(addressOf))).every(Boolean),
      'ingress addresses of the pub tasks',
    )
    const taskAddrs = await Promise.all((await taskIds()).map(addressOf))
    const vip = JSON.parse(await ok(mgr, ['service', 'inspect', 'pub']))[0]
      .Endpoint.VirtualIPs.find((v: { NetworkID: string }) => v.NetworkID === ingress)
      .Addr.split('/')[0]
    // Both nodes' views: the ingress network, both sandboxes, both tasks.
    for (const id of ids)
      await waitFor(
        () => {
          const v = views.get(id)!
          return (
            ownIngress(v, id) !== undefined &&
            ids.every((n) => v.tasks.some((t) => t.id === ingressSandboxId(n))) &&
            v.tasks.filter((t) => t.service !== undefined && t.addresses[ingress]).length === 2
          )
        },
        `the view of ${id} with the ingress network`,
        30_000,
        () => JSON.stringify(views.get(id)),
      )
    const v = views.get(ids[0]!)!
    const sandboxes = ids.map((n) => v.tasks.find((t) => t.id === ingressSandboxId(n))!)
    // Sandboxes back no VIP and answer no name.
    expect(sandboxes.every((s) => s.healthy === false && s.name === '' && s.service === undefined)).toBe(true)
    const all = [...taskAddrs, ...sandboxes.map((s) => s.addresses[ingress]), vip]
    expect(new Set(all).size).toBe(5)
    // The ingress VIP is not in the view (no name resolves on ingress), and the assignments leave the
    // ingress attachment to the node.
    expect(JSON.stringify(v.services)).not.toContain(ingress)
    for (const id of ids)
      for (const t of lists.get(id) ?? []) expect(t.networks.map((n) => n.networkId)).not.toContain(ingress)
  })

  it('streams each published port with its target port and the tasks ingress addresses', async () => {
    await waitFor(
      () => mesh.filter((p) => (p.tasks ?? []).filter((t) => t.ingress).length === 2).length === 2,
      'both ports with both tasks',
      30_000,
      () => JSON.stringify(mesh),
    )
    const byPort = Object.fromEntries(mesh.map((p) => [`${p.protocol}/${p.publishedPort}`, p]))
    expect(byPort['tcp/8080']!.targetPort).toBe(80)
    expect(byPort['udp/5353']!.targetPort).toBe(53)
    expect(byPort['udp/5353']!.publishMode).toBe('ingress')
  })
})

describe('the userspace fallback: a forwarder per published port (in-process cluster)', {
  timeout: 60_000,
}, () => {
  let mgr: ClusterNode
  const stop = new AbortController()
  let mesh: PublishedPort[] = []

  beforeAll(async () => {
    mgr = await node('ing-proxy')
    await ok(mgr, ['swarm', 'init'])
    void (async () => {
      for await (const list of mgr.daemon.manager!.dispatcher.mesh('', stop.signal))
        mesh = list as PublishedPort[]
    })()
  })

  afterAll(async () => {
    stop.abort()
    await mgr?.close()
    cleanup()
  })

  it('balances each TCP and UDP port over the endpoints the tasks reported for it', async () => {
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--name',
      'two',
      '--publish',
      '8090:80',
      '--publish',
      'published=5390,target=53,protocol=udp',
      'busybox',
    ])
    await waitFor(
      () => mesh.some((p) => p.publishedPort === 8090 && p.endpoints.length === 1),
      'the task running with its endpoint',
      30_000,
      () => JSON.stringify(mesh),
    )
    const id = (await ok(mgr, ['service', 'ps', '-q', 'two'])).trim()
    const nodeId = (await ok(mgr, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
    const addr = mesh.find((p) => p.publishedPort === 8090)!.endpoints[0]!.address
    // What a node's task networking reports: one forwarder per published target port.
    await mgr.daemon.manager!.dispatcher.updateStatus(nodeId, [
      {
        taskId: id,
        state: 'running',
        message: 'started',
        endpoint: {
          address: addr,
          port: 41001,
          ports: [
            { protocol: 'tcp', targetPort: 80, port: 41001 },
            { protocol: 'udp', targetPort: 53, port: 41002 },
          ],
        } as never,
      },
    ])
    await waitFor(
      () => mesh.find((p) => p.publishedPort === 5390)?.endpoints[0]?.port === 41002,
      'the UDP port reaching its own forwarder',
      30_000,
      () => JSON.stringify(mesh),
    )
    expect(mesh.find((p) => p.publishedPort === 8090)!.endpoints.map((e) => e.port)).toEqual([41001])
    expect(mesh.find((p) => p.publishedPort === 5390)!.endpoints).toEqual([
      { address: addr, port: 41002, node: nodeId },
    ])
  })
})

describe('kernelIngress where the kernel path cannot run', () => {
  const view: SwarmView = {
    nodes: [{ id: 'a', vtep: '127.0.0.1' }],
    networks: [
      { id: 'ing', vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1' },
      { id: 'front', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
    ],
    services: [],
    tasks: [
      { id: ingressSandboxId('a'), name: '', node: 'a', addresses: { ing: '10.0.0.2' }, healthy: false },
      {
        id: 't1',
        name: 'web.1.t1',
        service: 's',
        node: 'a',
        addresses: { ing: '10.0.0.3', front: '10.0.1.3' },
      },
    ],
  }

  it('keeps the data plane off the ingress network and says why the proxy carries published ports', async () => {
    const k = kernelIngress({
      context: () => ({ driver: memoryDriver({ vtep: '127.0.0.1' }), node: 'a', prefix: 'ta' }),
      addressOf: () => undefined,
    })
    await k.probe('127.0.0.1')
    expect(k.usable).toBe(false)
    const v = k.viewFor(view)
    expect(v.networks.map((n) => n.id)).toEqual(['front'])
    expect(v.tasks).toEqual([{ ...view.tasks[1], addresses: { front: '10.0.1.3' } }])
    const state = await k.state('127.0.0.1')
    expect(state).toEqual({ unavailable: expect.stringMatching(/loopback|root|nft/) })
  })
})

describe('forwardTaskPorts (the userspace fallback)', () => {
  it('forwards every published TCP and UDP target port of a task', async () => {
    const tcp = createServer((c) => c.end('tcp answer')).listen(0, '127.0.0.1')
    const udp = createSocket('udp4')
    udp.on('message', (m, r) => udp.send(`udp ${m}`, r.port, r.address))
    await new Promise((r) => tcp.once('listening', r))
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r))
    const tcpPort = (tcp.address() as { port: number }).port
    const udpPort = udp.address().port
    const f = await forwardTaskPorts('127.0.0.1', '127.0.0.1', [
      { protocol: 'tcp', targetPort: tcpPort },
      { protocol: 'udp', targetPort: udpPort },
      { protocol: 'udp', targetPort: udpPort },
      { protocol: 'sctp', targetPort: 9 },
    ])
    try {
      const e = f.endpoint!
      expect(e.ports.map((p) => `${p.protocol}/${p.targetPort}`)).toEqual([
        `tcp/${tcpPort}`,
        `udp/${udpPort}`,
      ])
      expect(e.port).toBe(e.ports[0]!.port)
      const viaTcp = await new Promise<string>((resolve, reject) => {
        let b = ''
        const c = connect(e.ports[0]!.port, '127.0.0.1')
        c.on('data', (d: Buffer) => (b += d))
          .on('end', () => resolve(b))
          .on('error', reject)
      })
      expect(viaTcp).toBe('tcp answer')
      const client = createSocket('udp4')
      const reply = await new Promise<string>((resolve) => {
        client.on('message', (m) => resolve(String(m)))
        client.send('ping', e.ports[1]!.port, '127.0.0.1')
      })
      client.close()
      expect(reply).toBe('udp ping')
    } finally {
      f.close()
      tcp.close()
      udp.close()
    }
  })
})
