// bench/overlay-swarm: swarm networking in the kernel, between host namespaces this bench makes (root only):
// TCP throughput to a task through its service VIP (nftables DNAT in the client's sandbox) and through the
// ingress routing mesh (published port -> ingress sandbox -> VXLAN -> task), each against a direct
// connection over the same VXLAN path in the same run; the embedded resolver's answers per second and p99
// as seen from inside a task namespace; and the time from a task's start to its address answering pings
// from every other host. Every namespace and device is deleted at the end.
import { type ChildProcess, spawn } from 'node:child_process'
import {
  embeddedResolver,
  ingressMesh,
  ipam,
  linuxDriver,
  type NetworkDb,
  type NetworkDriver,
  networkDb,
  type OverlayNetwork,
  type PeerDelta,
  serviceDirectory,
  serviceLoadBalancer,
  vniAllocator,
} from '@swarmkit/overlay'
import { kernelUnavailable, Lab, must } from '../../packages/overlay/test/helpers/lab.js'
import { sender, sink } from './traffic.js'

const MiB = 1 << 20
const BYTES = Number(process.env.BENCH_BYTES ?? 256 * MiB)
const ROUNDS = 5

// DNS load from inside a namespace: n queries, c at a time, to 127.0.0.11; prints answers/s and p99 (µs).
const dnsLoad = `
const dgram = require('node:dgram'), [n, conc, name] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]]
const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)])
const s = dgram.createSocket('udp4'); const lat = []; const pending = new Map(); let next = 0, done = 0
const send = () => { if (next >= n) return; const id = next++ & 0xffff
  const q = Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1])
  pending.set(id, process.hrtime.bigint()); s.send(q, 53, '127.0.0.11') }
const start = process.hrtime.bigint()
s.on('message', (m) => { const id = (m[0] << 8) | m[1]; const t = pending.get(id); if (t === undefined) return
  pending.delete(id); lat.push(Number(process.hrtime.bigint() - t) / 1000)
  if (++done === n) { const secs = Number(process.hrtime.bigint() - start) / 1e9; lat.sort((a, b) => a - b)
    console.log(Math.round(n / secs) + ' ' + Math.round(lat[Math.floor(lat.length * 0.99)])); process.exit(0) }
  send() })
s.bind(0, () => { for (let i = 0; i < conc; i++) send() })`

async function main(): Promise<void> {
  const why = await kernelUnavailable()
  if (why !== undefined) {
    console.log(`(not measured: ${why})`)
    return
  }
  const lab = new Lab()
  const drivers: NetworkDriver[] = []
  const dbs: NetworkDb[] = []
  const children: ChildProcess[] = []
  const resolver = embeddedResolver({ directory: serviceDirectory(), upstream: [] })
  try {
    await lab.create(3)
    await must('ip', ['-n', lab.underlay, 'addr', 'add', '198.18.0.100/15', 'dev', 'ubr'])
    const control = ipam({ pools: [{ base: '10.81.0.0/16', size: 24 }] })
    const vnis = vniAllocator()
    const nets: Record<string, OverlayNetwork> = {}
    for (const n of ['front', 'ingress']) {
      const s = control.allocateSubnet(n)
      nets[n] = { id: n, vni: vnis.allocate(n), subnet: s.subnet, gateway: s.gateway }
    }
    const apply = async (i: number, ds: PeerDelta[]) => {
      for (const d of ds) await drivers[i]!.updatePeers(d.network, d)
    }
    const broadcast = async (f: (db: NetworkDb) => PeerDelta[]) => {
      for (const [i, db] of dbs.entries()) await apply(i, f(db))
    }
    for (const [i, h] of lab.hosts.entries()) {
      drivers.push(linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix, routed: true }))
      dbs.push(networkDb(`n${i}`))
    }
    for (const [i, h] of lab.hosts.entries()) await broadcast((db) => db.nodeUp(`n${i}`, h.vtep))
    for (const [i, d] of drivers.entries())
      for (const n of ['front', 'ingress']) {
        await d.createNetwork(nets[n]!)
        await d.setPeers(n, dbs[i]!.attach(n))
      }
    const start = async (id: string, host: number, networks: string[]) => {
      const addresses = networks.map((n) => control.allocateAddress(n))
      const sb = await drivers[host]!.createSandbox({
        id,
        endpoints: networks.map((n, i) => ({ network: n, address: addresses[i]! })),
      })
      for (const [i, n] of networks.entries())
        await broadcast((db) => db.endpointUp({ id, network: n, address: addresses[i]!, node: `n${host}` }))
      return { ns: sb.namespace, addresses }
    }
    // The task (host 2) and a client (host 1): every byte crosses the underlay in VXLAN.
    const task = await start('task', 1, ['front', 'ingress'])
    const client = await start('client', 0, ['front'])
    const probe2 = await start('probe', 2, ['front'])
    const vip = control.allocateAddress('front')
    await serviceLoadBalancer().apply(client.ns, [{ vip, backends: [task.addresses[0]!] }])
    const mesh = ingressMesh({
      driver: drivers[0]!,
      network: nets.ingress!,
      address: control.allocateAddress('ingress'),
      node: 'n0',
      namespace: lab.hosts[0]!.ns,
      prefix: lab.hosts[0]!.prefix,
    })
    await mesh.start()
    await broadcast((db) =>
      db.endpointUp({
        id: 'node:n0',
        network: 'ingress',
        address: mesh.sandbox!.interfaces[0]!.address,
        node: 'n0',
      }),
    )
    await mesh.publish({
      service: 'web',
      protocol: 'tcp',
      publishedPort: 8080,
      endpoints: [{ address: task.addresses[1]!, port: 7000 }],
    })
    children.push((await lab.node(task.ns, sink, ['7000'])).child)
    const run = async (ns: string, host: string, port: number) => {
      const r = await lab.script(ns, sender, [host, String(port), String(BYTES)])
      const v = Number(r.out.trim())
      if (!Number.isFinite(v)) throw new Error(`sender in ${ns} -> ${host}:${port}: ${r.out}${r.err}`)
      return v
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const res = { direct: [] as number[], vip: [] as number[], mesh: [] as number[] }
    for (let r = 0; r < ROUNDS; r++) {
      res.direct.push(await run(client.ns, task.addresses[0]!, 7000))
      res.vip.push(await run(client.ns, vip, 7000))
      // The mesh's comparison: a client on host 1's underlay side straight to the task is not possible
      // (tasks are not on the underlay), so "direct" is the same VXLAN hop from host 1's sandbox.
      res.mesh.push(await run(lab.underlay, lab.hosts[0]!.vtep, 8080))
    }
    // Ratios per round (each round's three runs see about the same load from other sessions), then the median.
    const ratio = (xs: number[]) => median(xs.map((x, i) => x / res.direct[i]!))
    console.log(
      `throughput over VXLAN, ${BYTES / MiB} MiB per run, ${ROUNDS} rounds (median; ratio = median of per-round ratios):`,
    )
    console.log(
      `  direct to the task        ${median(res.direct).toFixed(0)} MiB/s  (runs: ${res.direct.map((x) => x.toFixed(0)).join(', ')})`,
    )
    console.log(
      `  through the VIP (nft)     ${median(res.vip).toFixed(0)} MiB/s  = ${(ratio(res.vip) * 100).toFixed(0)}% of direct`,
    )
    console.log(
      `  through the ingress mesh  ${median(res.mesh).toFixed(0)} MiB/s  = ${(ratio(res.mesh) * 100).toFixed(0)}% of direct`,
    )

    // DNS: the resolver answers in the client's namespace from this process.
    const dir = serviceDirectory({
      services: [{ id: 's', name: 'web', vips: { front: vip } }],
      tasks: [{ id: 'task', name: 'web.1.task', service: 's', addresses: { front: task.addresses[0]! } }],
    })
    const dnsResolver = embeddedResolver({ directory: dir, upstream: [] })
    await dnsResolver.attach({ id: 'client', namespace: client.ns, networks: ['front'] })
    const dnsRuns: Array<[number, number]> = []
    for (let r = 0; r < ROUNDS; r++) {
      const out = await lab.script(client.ns, dnsLoad, ['20000', '32', 'web'])
      const [qps, p99] = out.out.trim().split(' ').map(Number)
      dnsRuns.push([qps!, p99!])
    }
    await dnsResolver.close()
    dnsRuns.sort((a, b) => a[0] - b[0])
    const mid = dnsRuns[Math.floor(dnsRuns.length / 2)]!
    console.log(
      `embedded DNS from a task namespace, 20000 A queries, 32 in flight: ${mid[0]} answers/s, p99 ${(mid[1] / 1000).toFixed(2)} ms`,
    )

    // Time from a task's start (sandbox creation) to its address answering pings from the other hosts.
    const times: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const address = control.allocateAddress('front')
      const pingers = [client.ns, probe2.ns].map(
        (ns) =>
          new Promise<number>((resolve) => {
            const p = spawn('ip', [
              'netns',
              'exec',
              ns,
              'ping',
              '-n',
              '-q',
              '-c',
              '1',
              '-i',
              '0.01',
              '-w',
              '30',
              address,
            ])
            p.on('exit', (code) => resolve(code === 0 ? performance.now() : Number.NaN))
          }),
      )
      const t0 = performance.now()
      const id = `new${r}`
      await drivers[1]!.createSandbox({ id, endpoints: [{ network: 'front', address }] })
      await broadcast((db) => db.endpointUp({ id, network: 'front', address, node: 'n1' }))
      const ends = await Promise.all(pingers)
      times.push(Math.max(...ends) - t0)
    }
    console.log(
      `task start -> reachable from every other host (sandbox, veth, FDB/neighbour entries on 2 hosts, ping every 10 ms): median ${median(times).toFixed(0)} ms (runs: ${times.map((t) => t.toFixed(0)).join(', ')})`,
    )
    await mesh.close()
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await resolver.close()
    await lab.killAll()
    for (const d of drivers) await d.destroy().catch(() => {})
    const left = await lab.destroy()
    if (left.length > 0) console.log(`left behind: ${left.join(' ')}`)
  }
}

await main()
