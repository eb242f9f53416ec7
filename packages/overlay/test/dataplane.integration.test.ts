// The kernel data plane end to end, as root: three hosts (network namespaces on an underlay bridge,
// 198.18.0.0/15), two overlay networks allocated by the control plane, tasks in sandboxes on every host.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ClusterView,
  ipam,
  linuxDriver,
  type NetworkDriver,
  nodeDataPlane,
  type OverlayNetwork,
  type Peer,
  routingMesh,
  vniAllocator,
} from '../src/index.js'
import { kernelUnavailable, Lab, must, sh } from './helpers/lab.js'

const unavailable = await kernelUnavailable()
const nftMissing = (await sh('nft', ['--version'])).code !== 0

// A TCP server that says its name, then echoes; and a client that prints what it got (or the error).
const server = `
const net = require('node:net')
const s = net.createServer((c) => { c.write(process.argv[1] + '\\n'); c.pipe(c); c.on('error', () => {}) })
s.listen(Number(process.argv[2]), '0.0.0.0', () => console.log('ready'))`
const client = `
const net = require('node:net')
const c = net.connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 3000 })
let buf = ''
c.on('data', (d) => { buf += d; if (buf.includes('\\n') && buf.includes('ping')) { console.log(buf.trim().split('\\n').join(' ')); process.exit(0) } })
c.on('connect', () => c.write('ping\\n'))
c.on('timeout', () => { console.log('timeout'); process.exit(3) })
c.on('error', (e) => { console.log(e.code); process.exit(2) })`

// A UDP server that answers `<name>:<payload>`, and a client that sends `ping` until answered (UDP may drop
// the first datagram while ARP settles; it retries on a timer, not a fixed wait for success).
const udpServer = `
const s = require('node:dgram').createSocket('udp4')
s.on('message', (m, r) => s.send(process.argv[1] + ':' + m, r.port, r.address))
s.bind(Number(process.argv[2]), '0.0.0.0', () => console.log('ready'))`
const udpClient = `
const c = require('node:dgram').createSocket('udp4')
c.on('message', (m) => { console.log(String(m)); process.exit(0) })
const send = () => c.send('ping', Number(process.argv[2]), process.argv[1])
send()
setInterval(send, 500)
setTimeout(() => { console.log('timeout'); process.exit(3) }, 10000)`

describe('overlay data plane (kernel, 3 hosts)', { timeout: 60_000 }, () => {
  if (unavailable !== undefined) {
    it(`cannot run here: ${unavailable}`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(`kernel data-plane tests could not run in CI: ${unavailable}`)
    })
    return
  }

  const lab = new Lab()
  const drivers: NetworkDriver[] = []
  const control = ipam({ pools: [{ base: '10.77.0.0/16', size: 24 }, 'fd77:5a::/48'] })
  const vnis = vniAllocator()
  type Net = 'red' | 'blue' | 'green'
  const nets: Record<Net, OverlayNetwork & { nodes: string[] }> = {} as never
  // Tasks: name -> host index, network, address (filled in by beforeAll).
  const tasks: Array<{ name: string; host: number; network: Net; address: string; ns: string }> = [
    { name: 'r1', host: 0, network: 'red', address: '', ns: '' },
    { name: 'r2', host: 1, network: 'red', address: '', ns: '' },
    { name: 'r3', host: 2, network: 'red', address: '', ns: '' },
    { name: 'b1', host: 0, network: 'blue', address: '', ns: '' },
    { name: 'b2', host: 1, network: 'blue', address: '', ns: '' },
    { name: 'g1', host: 0, network: 'green', address: '', ns: '' },
    { name: 'g3', host: 2, network: 'green', address: '', ns: '' },
  ]
  const task = (name: string) => tasks.find((t) => t.name === name)!

  const peersOf = (network: Net): Peer[] => [
    ...tasks
      .filter((t) => t.network === network)
      .map((t) => ({ address: t.address, vtep: lab.hosts[t.host]!.vtep })),
    ...nets[network].nodes.map((address, i) => ({ address, vtep: lab.hosts[i]!.vtep })),
  ]
  const networkOn = (network: Net, host: number): OverlayNetwork => {
    const { nodes, ...n } = nets[network]
    return { ...n, nodeAddress: nodes[host]! }
  }

  beforeAll(async () => {
    await lab.create(3)
    // Hosts that forward packets, like a real docker host: isolation must not depend on ip_forward=0.
    for (const h of lab.hosts)
      await must('ip', ['netns', 'exec', h.ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'])
    // Control plane: subnets, VNIs, a node address per host and an address per task.
    for (const name of ['red', 'blue', 'green'] as const) {
      const s = control.allocateSubnet(name, { family: name === 'green' ? 6 : 4 })
      nets[name] = {
        id: name,
        vni: vnis.allocate(name),
        subnet: s.subnet,
        gateway: s.gateway,
        nodes: lab.hosts.map(() => control.allocateAddress(name)),
      }
    }
    for (const t of tasks) t.address = control.allocateAddress(t.network)
    // Data plane on each host.
    for (const [i, h] of lab.hosts.entries()) {
      const d = linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix })
      drivers.push(d)
      for (const name of ['red', 'blue', 'green'] as const) {
        await d.createNetwork(networkOn(name, i))
        await d.setPeers(name, peersOf(name))
      }
      for (const t of tasks.filter((x) => x.host === i)) {
        const sb = await d.createSandbox({
          id: t.name,
          endpoints: [{ network: t.network, address: t.address }],
        })
        t.ns = sb.namespace
      }
    }
  }, 120_000)

  afterAll(async () => {
    // Processes first (they pin namespaces), then each driver's own teardown, then the lab; assert last
    // so a failing assertion cannot leave anything behind.
    await lab.killAll()
    const leftovers: string[] = []
    for (const d of drivers) {
      await d.destroy().catch((e) => leftovers.push(`destroy failed: ${e}`))
      leftovers.push(...(await d.inspect()).resources)
    }
    const rest = await lab.destroy()
    expect(leftovers).toEqual([])
    expect(rest).toEqual([])
  }, 120_000)

  it('gives every host its bridge, VXLAN device and peers', async () => {
    const s = await drivers[0]!.inspect()
    expect(s.networks.map((n) => n.id).sort()).toEqual(['blue', 'green', 'red'])
    expect(s.sandboxes).toEqual(['b1', 'g1', 'r1'])
    // Remote only: r2, r3 and the other two hosts' addresses on red.
    expect(
      s.peers
        .filter((p) => p.network === 'red')
        .map((p) => p.address)
        .sort(),
    ).toEqual([task('r2').address, task('r3').address, nets.red.nodes[1]!, nets.red.nodes[2]!].sort())
  })

  it('lets tasks on different hosts reach each other over VXLAN (ping)', async () => {
    for (const [from, to] of [
      ['r1', 'r2'],
      ['r2', 'r3'],
      ['r3', 'r1'],
      ['b1', 'b2'],
    ] as const) {
      const r = await sh('ip', [
        'netns',
        'exec',
        task(from).ns,
        'ping',
        '-c',
        '1',
        '-W',
        '5',
        task(to).address,
      ])
      expect(r.code, `${from} -> ${to}: ${r.out}${r.err}`).toBe(0)
    }
  })

  it('lets tasks on different hosts reach each other over VXLAN (TCP)', async () => {
    await lab.node(task('r2').ns, server, ['r2', '7000'])
    const r = await lab.script(task('r1').ns, client, [task('r2').address, '7000'])
    expect(r.out.trim()).toBe('r2 ping')
  })

  it('carries IPv6 overlays too (ping and TCP)', async () => {
    expect(nets.green.subnet).toBe('fd77:5a::/64')
    const r = await sh('ip', [
      'netns',
      'exec',
      task('g1').ns,
      'ping',
      '-6',
      '-c',
      '1',
      '-W',
      '5',
      task('g3').address,
    ])
    expect(r.code, `${r.out}${r.err}`).toBe(0)
    await lab.node(task('g3').ns, server.replace("'0.0.0.0'", "'::'"), ['g3', '7003'])
    expect((await lab.script(task('g1').ns, client, [task('g3').address, '7003'])).out.trim()).toBe('g3 ping')
  })

  it('keeps overlay networks apart', async () => {
    await lab.node(task('b2').ns, server, ['b2', '7001'])
    // Blue on host 1 cannot reach red on host 2, nor red on its own host; red cannot reach blue.
    for (const [from, to] of [
      ['b1', 'r2'],
      ['b1', 'r1'],
      ['r1', 'b2'],
    ] as const) {
      const r = await sh('ip', [
        'netns',
        'exec',
        task(from).ns,
        'ping',
        '-c',
        '1',
        '-W',
        '1',
        task(to).address,
      ])
      expect(r.code, `${from} -> ${to} must fail`).not.toBe(0)
    }
    const tcp = await lab.script(task('r1').ns, client, [task('b2').address, '7001'])
    expect(tcp.code).not.toBe(0)
    // The same server is reachable from its own network.
    expect((await lab.script(task('b1').ns, client, [task('b2').address, '7001'])).out.trim()).toBe('b2 ping')
  })

  it('routes the mesh on one host to a task on another (TCP and UDP)', async () => {
    await lab.node(task('r3').ns, server, ['r3', '7002'])
    await lab.node(task('r2').ns, udpServer, ['r2', '7004'])
    const bundle = join(tmpdir(), `${lab.tag}-mesh-node.mjs`)
    await build({
      entryPoints: [join(import.meta.dirname, 'fixtures', 'mesh-node.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@swarmkit/source'],
      logLevel: 'silent',
    })
    const config = {
      host: lab.hosts[0]!.vtep,
      node: 'h1',
      services: [
        {
          service: 'web',
          protocol: 'tcp',
          publishedPort: 8080,
          endpoints: [{ address: task('r3').address, port: 7002, node: 'h3' }],
        },
        {
          service: 'dns',
          protocol: 'udp',
          publishedPort: 5353,
          endpoints: [{ address: task('r2').address, port: 7004, node: 'h2' }],
        },
      ],
    }
    const mesh = await lab.spawnNode(lab.hosts[0]!.ns, [bundle, JSON.stringify(config)])
    expect(mesh.line).toContain('8080')
    // A client on host 2 connects to host 1's published port; host 1 forwards over VXLAN to r3 on host 3.
    const r = await lab.script(lab.hosts[1]!.ns, client, [lab.hosts[0]!.vtep, '8080'])
    expect(r.out.trim()).toBe('r3 ping')
    // UDP from host 3 to host 1's published port reaches r2 on host 2 and the reply comes back.
    const u = await lab.script(lab.hosts[2]!.ns, udpClient, [lab.hosts[0]!.vtep, '5353'])
    expect(u.out.trim()).toBe('r2:ping')
    await lab.kill(mesh.child)
    await sh('rm', ['-f', bundle])
  })

  const vipTitle = 'balances a service VIP inside a task sandbox over tasks on other hosts (kernel mesh)'
  if (nftMissing)
    it(`${vipTitle}: cannot run here, \`nft\` is not installed`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(
          'kernel mesh tests could not run in CI: `nft` is not installed (apt-get install nftables)',
        )
    })
  else
    it(vipTitle, async () => {
      // Swarm's VIP load balancing: IPVS in each container's namespace. Here the kernel routing mesh in r1's
      // sandbox answers on a virtual IP of the red network and DNATs to r2 and r3 on the other hosts; the
      // traffic leaves r1 through its veth into the bridge and over VXLAN, so nothing needs forwarding.
      await lab.node(task('r2').ns, server, ['r2', '7005'])
      await lab.node(task('r3').ns, server, ['r3', '7005'])
      const vip = control.allocateAddress('red')
      const mesh = routingMesh({
        host: vip,
        mode: 'kernel',
        kernel: { namespace: task('r1').ns, forwarding: false },
      })
      try {
        await mesh.publish({
          service: 'api',
          protocol: 'tcp',
          publishedPort: 80,
          endpoints: [
            { address: task('r2').address, port: 7005 },
            { address: task('r3').address, port: 7005 },
          ],
        })
        const got: string[] = []
        for (let i = 0; i < 4; i++)
          got.push((await lab.script(task('r1').ns, client, [vip, '80'])).out.trim())
        expect(got).toEqual(['r2 ping', 'r3 ping', 'r2 ping', 'r3 ping'])
      } finally {
        await mesh.close()
        control.releaseAddress('red', vip)
      }
      expect((await must('ip', ['netns', 'exec', task('r1').ns, 'nft', 'list', 'tables'])).trim()).toBe('')
    })

  it('matches what nodeDataPlane plans from the cluster view (reconciling to it changes nothing)', async () => {
    const view: ClusterView = {
      nodes: lab.hosts.map((h, i) => ({ id: `h${i}`, vtep: h.vtep })),
      networks: (['red', 'blue', 'green'] as const).map((name) => {
        const { nodes, ...n } = nets[name]
        return { ...n, nodeAddresses: Object.fromEntries(nodes.map((a, i) => [`h${i}`, a])) }
      }),
      tasks: tasks.map((t) => ({
        id: t.name,
        node: `h${t.host}`,
        endpoints: [{ network: t.network, address: t.address }],
      })),
    }
    for (const [i, d] of drivers.entries()) {
      const before = await d.inspect()
      await d.reconcile(nodeDataPlane(view, `h${i}`))
      expect(await d.inspect()).toEqual(before)
    }
    const r = await sh('ip', [
      'netns',
      'exec',
      task('r1').ns,
      'ping',
      '-c',
      '1',
      '-W',
      '5',
      task('r3').address,
    ])
    expect(r.code).toBe(0)
  })

  it('drives the namespace it runs in when given none (as a node agent does)', async () => {
    const bundle = join(tmpdir(), `${lab.tag}-root-ns.mjs`)
    await build({
      entryPoints: [join(import.meta.dirname, 'fixtures', 'root-ns-driver.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      conditions: ['@swarmkit/source'],
      logLevel: 'silent',
    })
    try {
      const h = lab.hosts[2]!
      // Its own prefix: the namespace-wide listing must not touch the test's driver on this host.
      const { line } = await lab.spawnNode(h.ns, [bundle, h.vtep, `${lab.tag}z`])
      const out = JSON.parse(line.slice('ready '.length))
      expect(out.made.networks).toEqual([{ id: 'local', vni: 9000 }])
      expect(out.made.sandboxes).toEqual(['sb'])
      expect(out.forwarding).toBe('0')
      expect(out.after.resources).toEqual([])
      // The test's own driver on that host is untouched.
      expect((await drivers[2]!.inspect()).sandboxes).toEqual(['g3', 'r3'])
    } finally {
      await sh('rm', ['-f', bundle])
    }
  })

  it('cleans up after a driver process killed in the middle of its work', async () => {
    const bundle = join(tmpdir(), `${lab.tag}-crash.mjs`)
    await build({
      entryPoints: [join(import.meta.dirname, 'fixtures', 'crash-driver.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      conditions: ['@swarmkit/source'],
      logLevel: 'silent',
    })
    try {
      const h = lab.hosts[1]!
      const prefix = `${lab.tag}y`
      const { child } = await lab.spawnNode(h.ns, [bundle, h.vtep, prefix])
      await lab.kill(child) // SIGKILL, wherever it was
      const fresh = linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix })
      const left = await fresh.inspect()
      expect(left.networks).toEqual([{ id: 'doomed', vni: 9100 }])
      expect(left.sandboxes.length).toBeGreaterThanOrEqual(4)
      await fresh.destroy()
      expect(await fresh.inspect()).toEqual({ networks: [], peers: [], sandboxes: [], resources: [] })
      // The test's own driver on that host is untouched.
      expect((await drivers[1]!.inspect()).sandboxes).toEqual(['b2', 'r2'])
    } finally {
      await sh('rm', ['-f', bundle])
    }
  })

  it('lets a restarted driver clean up after a crashed one', async () => {
    // A new driver instance knows nothing; reconciling to "only red, only r1" removes the rest it finds.
    const h = lab.hosts[0]!
    const fresh = linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix })
    await fresh.reconcile({
      networks: [networkOn('red', 0)],
      peers: { red: peersOf('red') },
      sandboxes: [{ id: 'r1', endpoints: [{ network: 'red', address: task('r1').address }] }],
    })
    const s = await fresh.inspect()
    expect(s.networks.map((n) => n.id)).toEqual(['red'])
    expect(s.sandboxes).toEqual(['r1'])
    const r = await sh('ip', [
      'netns',
      'exec',
      task('r1').ns,
      'ping',
      '-c',
      '1',
      '-W',
      '5',
      task('r2').address,
    ])
    expect(r.code).toBe(0)
  })
})
