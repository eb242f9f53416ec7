// Swarm networking end to end in the kernel, as root: three hosts (namespaces on an underlay bridge the
// test makes), task sandboxes on them, the network DB feeding forwarding entries, nftables VIPs in every
// sandbox, the embedded resolver answering at 127.0.0.11 inside each sandbox, the ingress routing mesh,
// host-mode ports, isolation, and an encrypted network observed with tcpdump on the underlay.
import { spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type DirectoryState,
  type EmbeddedResolver,
  embeddedResolver,
  type IngressMesh,
  ingressMesh,
  ipam,
  ipsecDataPlane,
  isOverlayError,
  linuxDriver,
  type NetworkDb,
  type NetworkDriver,
  networkDb,
  newKeyRing,
  type OverlayNetwork,
  type PeerDelta,
  type ServiceDirectory,
  serviceDirectory,
  serviceLoadBalancer,
  vniAllocator,
} from '../src/index.js'
import { kernelUnavailable, Lab, must, type Spawned, sh } from './helpers/lab.js'

const unavailable =
  (await kernelUnavailable()) ??
  ((await sh('nft', ['--version'])).code !== 0
    ? 'nft is not installed (apt-get install nftables)'
    : (await sh('busybox', ['--list'])).code !== 0
      ? 'busybox is not installed (apt-get install busybox-static)'
      : undefined)
const tcpdumpMissing = (await sh('tcpdump', ['--version'])).code !== 0

// Each task runs this: HTTP on 80 answering `<name> <client address>`, an echo on 81 answering `<name>:<data>`.
const taskServer = `
const http = require('node:http'), net = require('node:net'), name = process.argv[1]
http.createServer((q, s) => s.end(name + ' ' + q.socket.remoteAddress + '\\n')).listen(80, '0.0.0.0', () =>
  net.createServer((c) => { c.on('error', () => {}); c.on('data', (d) => c.write(name + ':' + d)) })
    .listen(81, '0.0.0.0', () => console.log('ready')))`

// A client holding one connection open: prints each answer; sends each stdin line.
const holdClient = `
const c = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) })
c.on('connect', () => { c.write('a'); console.log('ready') })
c.on('data', (d) => console.log('got ' + d))
c.on('error', (e) => console.log('error ' + e.code))
process.stdin.on('data', (d) => c.write(String(d).trim()))`

/** The first capture of `re` in what a lab process printed, once it shows (it fails with the output after 30 s). */
async function printed(p: Spawned, re: RegExp): Promise<string> {
  for (const end = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 20))) {
    const m = re.exec(p.output())
    if (m) return m[1]!
    if (Date.now() > end) throw new Error(`no ${re} in: ${p.output()}`)
  }
}

// GETs url n times, one connection each; prints each body's first line, or `ERR <code>`.
const httpGets = `
const http = require('node:http'), [url, n] = [process.argv[1], Number(process.argv[2])]
const one = () => new Promise((resolve) => {
  const r = http.get(url, { agent: false, timeout: 5000 }, (res) => {
    let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b.split('\\n')[0]))
  })
  r.on('timeout', () => r.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
  r.on('error', (e) => resolve('ERR ' + (e.code || e.message)))
})
;(async () => { for (let i = 0; i < n; i++) console.log(await one()) })()`

// Sends one UDP datagram (argv: address, payload) to port 9.
const udpSend = `
const s = require('node:dgram').createSocket('udp4')
s.send(process.argv[2], 9, process.argv[1], () => s.close())`

type NetName = 'front' | 'back' | 'ingress' | 'sec'
interface Task {
  id: string
  name: string
  service?: string
  host: number
  nets: NetName[]
  addresses: Partial<Record<NetName, string>>
  ns: string
  healthy?: boolean
}

describe('swarm networking in the kernel (3 hosts)', { timeout: 120_000 }, () => {
  if (unavailable !== undefined) {
    it(`cannot run here: ${unavailable}`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(`swarm networking tests could not run in CI: ${unavailable}`)
    })
    return
  }

  const lab = new Lab()
  const control = ipam({ pools: [{ base: '10.80.0.0/16', size: 24 }] })
  const vnis = vniAllocator()
  const nets = {} as Record<NetName, OverlayNetwork>
  const nodeIngress: string[] = []
  const drivers: NetworkDriver[] = []
  const dbs: NetworkDb[] = []
  const meshes: IngressMesh[] = []
  const resolvers: EmbeddedResolver[] = []
  const directory: ServiceDirectory = serviceDirectory()
  const lb = serviceLoadBalancer()
  const vip: Record<string, string> = {}
  const netnsDirs: string[] = []
  const services = [
    { id: 's-web', name: 'web', net: 'front' as const },
    { id: 's-db', name: 'db', endpointMode: 'dnsrr' as const },
    { id: 's-other', name: 'other', net: 'back' as const },
    { id: 's-hm', name: 'hm' },
  ]
  const tasks: Task[] = [
    {
      id: 'w1',
      name: 'web.1.w1',
      service: 's-web',
      host: 0,
      nets: ['front', 'ingress'],
      addresses: {},
      ns: '',
    },
    {
      id: 'w2',
      name: 'web.2.w2',
      service: 's-web',
      host: 1,
      nets: ['front', 'ingress'],
      addresses: {},
      ns: '',
    },
    {
      id: 'w3',
      name: 'web.3.w3',
      service: 's-web',
      host: 2,
      nets: ['front', 'ingress'],
      addresses: {},
      ns: '',
    },
    { id: 'd1', name: 'db.1.d1', service: 's-db', host: 1, nets: ['front'], addresses: {}, ns: '' },
    { id: 'd2', name: 'db.2.d2', service: 's-db', host: 2, nets: ['front'], addresses: {}, ns: '' },
    { id: 'o1', name: 'other.1.o1', service: 's-other', host: 1, nets: ['back'], addresses: {}, ns: '' },
    { id: 'h1', name: 'hm.1.h1', service: 's-hm', host: 1, nets: ['front'], addresses: {}, ns: '' },
    { id: 'c1', name: 'client', host: 0, nets: ['front'], addresses: {}, ns: '' },
  ]
  const task = (id: string) => tasks.find((t) => t.id === id)!
  const node = (i: number) => `n${i}`

  const apply = async (host: number, deltas: PeerDelta[]) => {
    for (const d of deltas) await drivers[host]!.updatePeers(d.network, d)
  }
  // What the managers send to every node: each node's network DB turns it into its own deltas.
  const broadcast = async (event: (db: NetworkDb) => PeerDelta[]) => {
    for (const [i, db] of dbs.entries()) await apply(i, event(db))
  }
  const state = (): DirectoryState => ({
    services: services.map((s) => ({
      id: s.id,
      name: s.name,
      endpointMode: s.endpointMode ?? 'vip',
      vips: s.net === undefined ? {} : { [s.net]: vip[s.id]! },
    })),
    tasks: tasks
      .filter((t) => t.ns !== '')
      .map((t) => ({
        id: t.id,
        name: t.name,
        ...(t.service === undefined ? {} : { service: t.service }),
        addresses: Object.fromEntries(Object.entries(t.addresses).filter(([n]) => n !== 'ingress')),
        healthy: t.healthy !== false,
      })),
  })
  // The managers' view changed: every node updates discovery and the VIP tables of its sandboxes.
  const sync = async () => {
    directory.set(state())
    for (const t of tasks.filter((x) => x.ns !== ''))
      await lb.apply(
        t.ns,
        t.nets.filter((n) => n !== 'ingress').flatMap((n) => directory.vipsOn(n)),
      )
  }
  // busybox-static's wget crashes (static glibc): HTTP GETs come from node, each on a new connection,
  // names resolved by getaddrinfo through the namespace's /etc/netns resolv.conf, as a container's are.
  const getMany = async (ns: string, url: string, n: number): Promise<string[]> => {
    const r = await lab.script(ns, httpGets, [url, String(n)])
    return r.out.trim().split('\n')
  }
  const wget = async (ns: string, url: string) => {
    const [line] = await getMany(ns, url, 1)
    const ok = line !== undefined && !line.startsWith('ERR ')
    return { code: ok ? 0 : 1, out: ok ? line! : '', err: line ?? '' }
  }
  const lookup = async (ns: string, name: string): Promise<string[]> => {
    const r = await sh('ip', ['netns', 'exec', ns, 'busybox', 'nslookup', name, '127.0.0.11'])
    // busybox prints the server first ("Address: 127.0.0.11:53"), then one Address line per answer.
    return [...r.out.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).sort()
  }

  async function startTask(t: Task): Promise<void> {
    const d = drivers[t.host]!
    const sb = await d.createSandbox({
      id: t.id,
      endpoints: t.nets.map((n) => ({ network: n, address: t.addresses[n]! })),
    })
    t.ns = sb.namespace
    // As Docker writes the container's resolv.conf: the embedded resolver only.
    const dir = `/etc/netns/${t.ns}`
    netnsDirs.push(dir)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.11\n')
    await resolvers[t.host]!.attach({
      id: t.id,
      namespace: t.ns,
      networks: t.nets.filter((n) => n !== 'ingress'),
    })
    for (const n of t.nets)
      await broadcast((db) =>
        db.endpointUp({ id: t.id, network: n, address: t.addresses[n]!, node: node(t.host) }),
      )
    if (t.id !== 'c1') await lab.node(t.ns, taskServer, [t.name])
  }

  beforeAll(async () => {
    await lab.create(3)
    await must('ip', ['-n', lab.underlay, 'addr', 'add', '198.18.0.100/15', 'dev', 'ubr'])
    for (const n of ['front', 'back', 'ingress', 'sec'] as const) {
      const s = control.allocateSubnet(n)
      nets[n] = { id: n, vni: vnis.allocate(n), subnet: s.subnet, gateway: s.gateway }
    }
    for (const s of services) if (s.net !== undefined) vip[s.id] = control.allocateAddress(s.net)
    for (let i = 0; i < 3; i++) nodeIngress.push(control.allocateAddress('ingress'))
    for (const t of tasks) for (const n of t.nets) t.addresses[n] = control.allocateAddress(n)
    for (const [i, h] of lab.hosts.entries()) {
      drivers.push(linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix, routed: true }))
      dbs.push(networkDb(node(i)))
      resolvers.push(embeddedResolver({ directory, upstream: [] }))
    }
    for (const [i, h] of lab.hosts.entries()) await broadcast((db) => db.nodeUp(node(i), h.vtep))
    // Every host has every network here (a sandbox on each of them, below); peers come from its DB.
    for (const [i, d] of drivers.entries())
      for (const n of ['front', 'back', 'ingress', 'sec'] as const) {
        await d.createNetwork(nets[n])
        await d.setPeers(n, dbs[i]!.attach(n))
      }
    for (const [i, h] of lab.hosts.entries()) {
      const m = ingressMesh({
        driver: drivers[i]!,
        network: nets.ingress,
        address: nodeIngress[i]!,
        node: node(i),
        namespace: h.ns,
        prefix: h.prefix,
      })
      meshes.push(m)
      await m.start()
      await broadcast((db) =>
        db.endpointUp({ id: `node:${node(i)}`, network: 'ingress', address: nodeIngress[i]!, node: node(i) }),
      )
    }
    for (const t of tasks.filter((x) => !x.nets.includes('sec'))) await startTask(t)
    await sync()
    await publish()
  }, 300_000)

  const publish = async () => {
    const web = tasks.filter((t) => t.service === 's-web' && t.ns !== '' && t.healthy !== false)
    for (const m of meshes) {
      await m.publish({
        service: 's-web',
        protocol: 'tcp',
        publishedPort: 8080,
        endpoints: web.map((t) => ({ address: t.addresses.ingress!, port: 80, node: node(t.host) })),
      })
      await m.publish({
        service: 's-hm',
        protocol: 'tcp',
        publishedPort: 9090,
        publishMode: 'host',
        endpoints: [{ address: task('h1').addresses.front!, port: 80, node: node(1) }],
      })
    }
  }

  afterAll(async () => {
    await lab.killAll()
    for (const r of resolvers) await r.close()
    const leftovers: string[] = []
    for (const m of meshes) await m.close().catch((e) => leftovers.push(`mesh close failed: ${e}`))
    for (const d of drivers) {
      await d.destroy().catch((e) => leftovers.push(`destroy failed: ${e}`))
      leftovers.push(...(await d.inspect()).resources)
    }
    for (const dir of netnsDirs) await rm(dir, { recursive: true, force: true })
    const rest = await lab.destroy()
    expect(leftovers).toEqual([])
    expect(rest).toEqual([])
  }, 120_000)

  it('lets a task reach another by name across hosts (ping and HTTP)', async () => {
    const c = task('c1').ns
    const ping = await sh('ip', ['netns', 'exec', c, 'busybox', 'ping', '-c', '1', '-W', '5', 'web.2.w2'])
    expect(ping.code, ping.out + ping.err).toBe(0)
    const r = await wget(c, 'http://web.3.w3/')
    expect(r.out.trim(), r.err).toBe(`web.3.w3 ${task('c1').addresses.front}`)
  })

  it('answers the service name with its VIP, tasks.NAME with every task, dnsrr with the tasks', async () => {
    const c = task('c1').ns
    expect(await lookup(c, 'web')).toEqual([vip['s-web']])
    expect(await lookup(c, 'tasks.web')).toEqual(
      ['w1', 'w2', 'w3'].map((id) => task(id).addresses.front!).sort(),
    )
    expect(await lookup(c, 'db')).toEqual([task('d1').addresses.front!, task('d2').addresses.front!].sort())
    const r = await wget(c, 'http://db/')
    expect(r.out, r.err).toMatch(/^db\.[12]\./)
  })

  it('never resolves names of a network the task is not on', async () => {
    expect(await lookup(task('c1').ns, 'other')).toEqual([])
    expect(await lookup(task('c1').ns, 'other.1.o1')).toEqual([])
    expect(await lookup(task('o1').ns, 'web')).toEqual([])
    expect(await lookup(task('o1').ns, 'other')).toEqual([vip['s-other']])
  })

  it('keeps two networks isolated (no route from back to front, even on a routing host)', async () => {
    const o = task('o1').ns
    const direct = await wget(o, `http://${task('w2').addresses.front}/`)
    expect(direct.code).not.toBe(0)
    const far = await wget(o, `http://${task('w1').addresses.front}/`)
    expect(far.code).not.toBe(0)
    // Power check: the same request from a task on front works.
    expect((await wget(task('c1').ns, `http://${task('w2').addresses.front}/`)).code).toBe(0)
  })

  it('spreads the VIP over tasks on three hosts, then follows a scale-down and a failed health check', async () => {
    const c = task('c1').ns
    const seen = async (n: number) => {
      const lines = await getMany(c, 'http://web/', n)
      expect(lines.filter((l) => l.startsWith('ERR'))).toEqual([])
      return [...new Set(lines.map((l) => l.split(' ')[0]!))].sort()
    }
    expect(await seen(6)).toEqual(['web.1.w1', 'web.2.w2', 'web.3.w3'])
    // A connection held open to the VIP keeps its task through the changes below.
    const hold = await lab.node(c, holdClient, [vip['s-web']!, '81'])
    const first = await printed(hold, /got (\S+):a/)
    // Scale down: remove a task that is not the held connection's.
    const gone = ['w3', 'w2', 'w1'].map(task).find((t) => t.name !== first)!
    gone.healthy = false
    const before = tasks.indexOf(gone)
    tasks.splice(before, 1)
    await broadcast((db) => db.endpointDown(gone.id))
    await sync()
    const left = ['web.1.w1', 'web.2.w2', 'web.3.w3'].filter((n) => n !== gone.name)
    expect(await seen(6)).toEqual(left)
    // A failed health check: that task leaves the VIP too.
    const sick = tasks.find((t) => t.service === 's-web' && t.name !== first)!
    sick.healthy = false
    await sync()
    expect(await seen(4)).toEqual([first])
    hold.child.stdin!.write('b\n')
    expect(await printed(hold, /got (\S+):b/)).toBe(first)
    await lab.kill(hold.child)
    // Back to health; the removed task's endpoint comes back with it.
    sick.healthy = true
    tasks.splice(before, 0, gone)
    gone.healthy = true
    for (const n of gone.nets)
      await broadcast((db) =>
        db.endpointUp({ id: gone.id, network: n, address: gone.addresses[n]!, node: node(gone.host) }),
      )
    await sync()
    expect(await seen(6)).toEqual(['web.1.w1', 'web.2.w2', 'web.3.w3'])
  })

  it('answers a published port on every host, round-robin over tasks on the other hosts', async () => {
    await publish()
    for (const h of lab.hosts) {
      const lines = await getMany(lab.underlay, `http://${h.vtep}:8080/`, 6)
      expect(
        lines.filter((l) => l.startsWith('ERR')),
        h.vtep,
      ).toEqual([])
      expect([...new Set(lines.map((l) => l.split(' ')[0]!))].sort()).toEqual([
        'web.1.w1',
        'web.2.w2',
        'web.3.w3',
      ])
    }
  })

  it('keeps the client source on a host-mode port, which only its task host answers', async () => {
    const r = await wget(lab.underlay, `http://${lab.hosts[1]!.vtep}:9090/`)
    expect(r.out.trim(), r.err).toBe('hm.1.h1 198.18.0.100')
    expect((await wget(lab.underlay, `http://${lab.hosts[0]!.vtep}:9090/`)).code).not.toBe(0)
  })

  it('keeps forwarding entries right as nodes leave and join, without flushing the others', async () => {
    const peersOf = async (host: number) =>
      (await drivers[host]!.inspect()).peers.map((p) => `${p.network} ${p.address} ${p.vtep}`).sort()
    const before = await peersOf(0)
    const h3 = lab.hosts[2]!.vtep
    expect(before.some((p) => p.endsWith(h3))).toBe(true)
    await broadcast((db) => db.nodeDown(node(2)))
    const during = await peersOf(0)
    expect(during).toEqual(before.filter((p) => !p.endsWith(h3)))
    // Traffic to the remaining remote node kept flowing.
    expect((await wget(task('c1').ns, 'http://web.2.w2/')).code).toBe(0)
    await broadcast((db) => db.nodeUp(node(2), h3))
    for (const t of tasks.filter((x) => x.host === 2))
      for (const n of t.nets)
        await broadcast((db) =>
          db.endpointUp({ id: t.id, network: n, address: t.addresses[n]!, node: node(2) }),
        )
    await broadcast((db) =>
      db.endpointUp({ id: `node:${node(2)}`, network: 'ingress', address: nodeIngress[2]!, node: node(2) }),
    )
    expect(await peersOf(0)).toEqual(before)
    expect((await wget(task('c1').ns, 'http://web.3.w3/')).code).toBe(0)
  })

  describe('an encrypted network', () => {
    it('never carries plaintext on the underlay', async () => {
      if (tcpdumpMissing) {
        if (process.env.SWARMKIT_CI === '1')
          throw new Error('tcpdump is not installed (apt-get install tcpdump)')
        return
      }
      const s1: Task = { id: 'e1', name: 'sec.1.e1', host: 0, nets: ['sec'], addresses: {}, ns: '' }
      const s2: Task = { id: 'e2', name: 'sec.2.e2', host: 1, nets: ['sec'], addresses: {}, ns: '' }
      for (const t of [s1, s2]) {
        t.addresses.sec = control.allocateAddress('sec')
        await startTask(t)
      }
      const ring = newKeyRing()
      const planes = [0, 1].map((i) => ipsecDataPlane({ namespace: lab.hosts[i]!.ns }))
      let sealed = true
      for (const [i, p] of planes.entries()) {
        try {
          await p.apply({
            local: lab.hosts[i]!.vtep,
            peers: [lab.hosts[1 - i]!.vtep],
            ring,
            vnis: [nets.sec.vni],
          })
        } catch (err) {
          // This kernel cannot make ESP states: the plane must then fail closed.
          if (!isOverlayError(err, 'UNSUPPORTED')) throw err
          expect((err as Error).message).toMatch(/ESP/)
          sealed = false
        }
      }
      const pcap = join(tmpdir(), `${lab.tag}-underlay.pcap`)
      const dump = spawn(
        'ip',
        [
          'netns',
          'exec',
          lab.underlay,
          'tcpdump',
          '-Z',
          'root',
          '-i',
          'e1',
          '-n',
          '-U',
          '--immediate-mode',
          '-w',
          pcap,
          'udp port 4789 or esp',
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
      let err = ''
      try {
        // --immediate-mode: without it packets wait in the capture ring's block and a prompt SIGINT loses them.
        await new Promise<void>((resolve, reject) => {
          dump.stderr!.on('data', (d) => {
            err += d
            if (err.includes('listening on')) resolve()
          })
          dump.on('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${err}`)))
        })
        // A datagram needs no handshake: if anything let it out in clear, the capture holds it.
        await lab.script(s1.ns, udpSend, [s2.addresses.sec!, `SECRET-MARKER-${lab.tag}`])
        const secret = await wget(s1.ns, `http://${s2.addresses.sec}/SECRET-MARKER-${lab.tag}`)
        // Power check: a request on the clear network is visible in the same capture.
        const clear = await wget(
          task('c1').ns,
          `http://${task('w2').addresses.front}/CLEAR-MARKER-${lab.tag}`,
        )
        expect(clear.code).toBe(0)
        if (sealed) expect(secret.out.trim()).toBe(`sec.2.e2 ${s1.addresses.sec}`)
        else expect(secret.code, 'an encrypted network without ESP must not pass traffic').not.toBe(0)
      } finally {
        dump.kill('SIGINT')
        await new Promise((r) => (dump.exitCode !== null ? r(null) : dump.once('exit', r)))
        for (const p of planes) await p.clear().catch(() => {})
      }
      const bytes = await readFile(pcap)
      await rm(pcap, { force: true })
      expect(bytes.includes(`CLEAR-MARKER-${lab.tag}`)).toBe(true)
      expect(bytes.includes(`SECRET-MARKER-${lab.tag}`)).toBe(false)
    })
  })
})
