// bench/overlay: IPAM address allocations+releases per second and subnet allocations per second (against a
// plain Set of the same strings as baseline), and the routing mesh's throughput and connection rate
// against a direct connection in the same run, for both mesh modes: the userspace proxy and the kernel
// (nftables NAT) path. Server, userspace mesh and client run as separate processes (as they would on a real
// node), so the proxy's cost is its own CPU, not a share of the client's event loop. As root, the whole
// network part runs inside a network namespace the bench creates and deletes, so the kernel mesh's rules
// never touch the machine's own namespace; without root the kernel mesh is reported as not measured.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { ipam, type RoutingMesh, routingMesh } from '@swarmkit/overlay'

const self = fileURLToPath(import.meta.url)
const role = process.argv[2]

if (role === 'server') {
  // Port A: a sink that counts bytes and reports the total when the client ends. Port B: says hi, closes.
  // Port C: a source that streams as many bytes as the client asks for (a decimal line), then ends.
  const chunk = Buffer.alloc(256 * 1024, 7)
  const source = net.createServer((c) => {
    c.on('error', () => {})
    let line = ''
    c.on('data', (d) => {
      if (line.includes('\n')) return
      line += d
      if (!line.includes('\n')) return
      let left = Number(line.trim())
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length)
          left -= n
          if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void c.once('drain', pump)
        }
        c.end()
      }
      pump()
    })
  })
  const sink = net.createServer({ allowHalfOpen: true }, (c) => {
    let n = 0
    c.on('data', (d) => (n += d.length))
    c.on('end', () => c.end(`${n}\n`))
    c.on('error', () => {})
  })
  const hi = net.createServer((c) => {
    c.on('error', () => {})
    c.end('hi\n')
  })
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port
  sink.listen(0, '127.0.0.1', () =>
    hi.listen(0, '127.0.0.1', () =>
      source.listen(0, '127.0.0.1', () => console.log(`ready ${port(sink)} ${port(hi)} ${port(source)}`)),
    ),
  )
} else if (role === 'mesh') {
  const [sinkPort, hiPort, sourcePort] = process.argv.slice(3).map(Number)
  const mesh = routingMesh({ host: '127.0.0.2' })
  const bind = async (target: number) => {
    for (;;) {
      const port = 20000 + Math.floor(Math.random() * 10000)
      try {
        await mesh.publish({
          service: `s${target}`,
          protocol: 'tcp',
          publishedPort: port,
          endpoints: [{ address: '127.0.0.1', port: target }],
        })
        return port
      } catch {
        // taken: try another
      }
    }
  }
  // A clean exit on SIGINT lets `node --cpu-prof` write its profile when profiling the mesh.
  process.on('SIGINT', () => process.exit(0))
  const a = await bind(sinkPort!)
  const b = await bind(hiPort!)
  const c = await bind(sourcePort!)
  console.log(`ready ${a} ${b} ${c}`)
} else if (role === 'inner') {
  await main(true)
} else {
  await outer()
}

// As root with nftables: run the bench in a fresh network namespace (loopback only) and delete it after.
async function outer() {
  const why = kernelUnavailable()
  if (why !== undefined) {
    console.log(`(kernel mesh not measured: ${why})`)
    return main(false)
  }
  const ns = `swkbench${randomBytes(3).toString('hex')}`
  spawnSync('ip', ['netns', 'add', ns])
  try {
    spawnSync('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up'])
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, self, 'inner'], { stdio: 'inherit' })
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    if (code !== 0) process.exitCode = 1
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}

function kernelUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux'
  if (process.getuid?.() !== 0) return 'not root'
  if (spawnSync('nft', ['--version']).status !== 0) return '`nft` not installed (Debian package nftables)'
  const probe = `swkprobe${randomBytes(3).toString('hex')}`
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'cannot create a network namespace'
  spawnSync('ip', ['netns', 'del', probe])
  return undefined
}

function child(args: string[]): Promise<{ proc: ChildProcess; ports: number[] }> {
  const proc = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let buf = ''
    proc.stdout!.on('data', (d) => {
      buf += d
      const m = /ready ([\d ]+)/.exec(buf)
      if (m) resolve({ proc, ports: m[1]!.trim().split(' ').map(Number) })
    })
    proc.on('exit', (code) => reject(new Error(`${args[0]} exited ${code}`)))
  })
}

function throughput(host: string, port: number, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7)
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const c = net.connect({ host, port, allowHalfOpen: true })
    let sent = 0
    let reply = ''
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length
        if (!c.write(chunk)) return void c.once('drain', pump)
      }
      c.end()
    }
    c.on('connect', pump)
    c.on('data', (d) => (reply += d))
    c.on('end', () => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9
      if (Number(reply.trim()) !== sent) reject(new Error(`sink got ${reply.trim()} of ${sent} bytes`))
      resolve(sent / secs / 2 ** 20)
    })
    c.on('error', reject)
  })
}

// Endpoint -> client: ask the source for `bytes` and read them all.
function download(host: string, port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const c = net.connect({ host, port })
    let got = 0
    c.on('connect', () => c.write(`${bytes}\n`))
    c.on('data', (d) => (got += d.length))
    c.on('end', () => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9
      if (got !== bytes) reject(new Error(`source sent ${got} of ${bytes} bytes`))
      resolve(bytes / secs / 2 ** 20)
    })
    c.on('error', reject)
  })
}

async function connRate(host: string, port: number, total: number, parallel: number): Promise<number> {
  let left = total
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const c = net.connect({ host, port })
      let got = ''
      c.on('data', (d) => (got += d))
      c.on('end', () => (got === 'hi\n' ? resolve() : reject(new Error(`bad reply ${got}`))))
      c.on('error', reject)
    })
  const start = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (left-- > 0) await one()
    }),
  )
  return total / (Number(process.hrtime.bigint() - start) / 1e9)
}

function ipamOps(): { ops: number; baseline: number } {
  // Steady state in a /16: keep ~30k addresses held, allocate and release at random.
  const a = ipam({ pools: [{ base: '10.0.0.0/8', size: 16 }] })
  a.allocateSubnet('n')
  const held: string[] = []
  let seed = 1
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296
  for (let i = 0; i < 30_000; i++) held.push(a.allocateAddress('n'))
  const N = 2_000_000
  const start = process.hrtime.bigint()
  for (let i = 0; i < N / 2; i++) {
    const j = Math.floor(rnd() * held.length)
    a.releaseAddress('n', held[j]!)
    held[j] = a.allocateAddress('n')
  }
  const ops = N / (Number(process.hrtime.bigint() - start) / 1e9)
  // Baseline: the bookkeeping floor — a Set of the same address strings, add and delete.
  const set = new Set(held)
  const strings = held.slice()
  seed = 1
  const b0 = process.hrtime.bigint()
  for (let i = 0; i < N / 2; i++) {
    const j = Math.floor(rnd() * strings.length)
    set.delete(strings[j]!)
    set.add(strings[j]!)
  }
  const baseline = N / (Number(process.hrtime.bigint() - b0) / 1e9)
  return { ops, baseline }
}

function subnetOps(): { pool: number; user: number } {
  // Fill 10.0.0.0/8 with its 65536 /24 subnets, release them all; twice.
  const a = ipam()
  let n = 0
  const start = process.hrtime.bigint()
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 65536; i++) a.allocateSubnet(`n${i}`)
    for (let i = 0; i < 65536; i++) a.releaseNetwork(`n${i}`)
    n += 65536
  }
  const pool = n / (Number(process.hrtime.bigint() - start) / 1e9)
  // User-given subnets are checked against every allocated one: 2000 of them.
  const b = ipam()
  const u0 = process.hrtime.bigint()
  for (let i = 0; i < 2000; i++) b.allocateSubnet(`u${i}`, { subnet: `172.${16 + (i >> 8)}.${i & 255}.0/24` })
  const user = 2000 / (Number(process.hrtime.bigint() - u0) / 1e9)
  return { pool, user }
}

async function main(kernel: boolean) {
  const { ops, baseline } = ipamOps()
  const subnets = subnetOps()
  const server = await child(['server'])
  const [sinkPort, hiPort, sourcePort] = server.ports as [number, number, number]
  const mesh = await child(['mesh', String(sinkPort), String(hiPort), String(sourcePort)])
  const [meshSink, meshHi, meshSource] = mesh.ports as [number, number, number]
  // The kernel mesh: nftables rules in this (the bench's own) namespace, answering on 127.0.0.3.
  let km: RoutingMesh | undefined
  if (kernel) {
    km = routingMesh({ host: '127.0.0.3', mode: 'kernel', kernel: { table: 'swarmkit_bench' } })
    for (const [port, target] of [
      [meshSink, sinkPort],
      [meshHi, hiPort],
      [meshSource, sourcePort],
    ] as const)
      await km.publish({
        service: `k${port}`,
        protocol: 'tcp',
        publishedPort: port,
        endpoints: [{ address: '127.0.0.1', port: target }],
      })
  }
  type Path = { name: string; host: string; sink: number; hi: number; source: number; proc?: ChildProcess }
  const paths: Path[] = [
    { name: 'direct', host: '127.0.0.1', sink: sinkPort, hi: hiPort, source: sourcePort },
    {
      name: 'userspace',
      host: '127.0.0.2',
      sink: meshSink,
      hi: meshHi,
      source: meshSource,
      proc: mesh.proc,
    },
    ...(kernel
      ? [{ name: 'kernel', host: '127.0.0.3', sink: meshSink, hi: meshHi, source: meshSource }]
      : []),
  ]
  // The machines are shared and noisy: alternate the paths round by round and take medians, and the median
  // of the per-round ratios (each round's runs see about the same machine load).
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  for (const p of paths) await throughput(p.host, p.sink, 64 << 20)
  const STREAM = 256 << 20
  const ROUNDS = 7
  const tp = new Map(paths.map((p) => [p.name, [] as number[]]))
  // CPU seconds per GiB carried, from /proc and process.cpuUsage: the client (this process: the kernel
  // mesh's work lands here and in the sink, as softirq time), the sink endpoint, and the userspace mesh.
  const cpu = new Map(paths.map((p) => [p.name, { client: 0, sink: 0, mesh: 0 }]))
  for (let i = 0; i < ROUNDS; i++) {
    for (const p of paths) {
      const c0 = process.cpuUsage()
      const s0 = cpuSeconds(server.proc.pid!)
      const m0 = p.proc ? cpuSeconds(p.proc.pid!) : 0
      tp.get(p.name)!.push(await throughput(p.host, p.sink, STREAM))
      const c = process.cpuUsage(c0)
      const acc = cpu.get(p.name)!
      acc.client += (c.user + c.system) / 1e6
      acc.sink += cpuSeconds(server.proc.pid!) - s0
      if (p.proc) acc.mesh += cpuSeconds(p.proc.pid!) - m0
    }
  }
  const gib = (ROUNDS * STREAM) / 2 ** 30
  const perGiB = (name: string) => {
    const c = cpu.get(name)!
    return { client: c.client / gib, sink: c.sink / gib, mesh: c.mesh / gib }
  }
  const direct = tp.get('direct')!
  const ratio = (name: string) => med(direct.map((d, i) => tp.get(name)![i]! / d))
  // The other direction, endpoint -> client (a download), fewer rounds; the userspace mesh's CPU per GiB.
  const dl = new Map(paths.map((p) => [p.name, [] as number[]]))
  let dlMeshCpu = 0
  for (const p of paths) await download(p.host, p.source, 64 << 20)
  for (let i = 0; i < 5; i++)
    for (const p of paths) {
      const m0 = p.proc ? cpuSeconds(p.proc.pid!) : 0
      dl.get(p.name)!.push(await download(p.host, p.source, STREAM))
      if (p.proc) dlMeshCpu += cpuSeconds(p.proc.pid!) - m0
    }
  const dlMeshCpuPerGiB = dlMeshCpu / ((5 * STREAM) / 2 ** 30)
  const dlDirect = dl.get('direct')!
  const dlRatio = (name: string) => med(dlDirect.map((d, i) => dl.get(name)![i]! / d))
  for (const p of paths) await connRate(p.host, p.hi, 500, 16)
  const conns = new Map(paths.map((p) => [p.name, [] as number[]]))
  for (let i = 0; i < 5; i++)
    for (const p of paths) conns.get(p.name)!.push(await connRate(p.host, p.hi, 2000, 16))
  const dConns = conns.get('direct')!
  const connRatio = (name: string) => med(dConns.map((d, i) => conns.get(name)![i]! / d))
  await km?.close()
  server.proc.kill()
  mesh.proc.kill()

  const cpuRow = (name: string) => {
    const c = perGiB(name)
    return `${c.client.toFixed(2)} s / ${c.sink.toFixed(2)} s${name === 'userspace' ? ` / ${c.mesh.toFixed(2)} s` : ''}`
  }
  const rows: Array<[string, string]> = [
    ['ipam address allocations+releases', `${fmt(ops)} ops/s`],
    ['  baseline: Set add+delete of the same strings', `${fmt(baseline)} ops/s`],
    ['ipam subnet allocations+releases (pool, /24 of /8)', `${fmt(subnets.pool)} /s`],
    ['ipam user-given subnet allocations (2000)', `${fmt(subnets.user)} /s`],
    ['tcp throughput, direct', `${med(direct).toFixed(0)} MiB/s`],
    [
      'tcp throughput, via userspace mesh',
      `${med(tp.get('userspace')!).toFixed(0)} MiB/s (${(ratio('userspace') * 100).toFixed(0)}% of direct)`,
    ],
    ...(kernel
      ? ([
          [
            'tcp throughput, via kernel mesh (nftables)',
            `${med(tp.get('kernel')!).toFixed(0)} MiB/s (${(ratio('kernel') * 100).toFixed(0)}% of direct)`,
          ],
        ] as Array<[string, string]>)
      : []),
    ['tcp download (endpoint -> client), direct', `${med(dlDirect).toFixed(0)} MiB/s`],
    [
      'tcp download, via userspace mesh',
      `${med(dl.get('userspace')!).toFixed(0)} MiB/s (${(dlRatio('userspace') * 100).toFixed(0)}% of direct; mesh ${dlMeshCpuPerGiB.toFixed(2)} s cpu/GiB)`,
    ],
    ...(kernel
      ? ([
          [
            'tcp download, via kernel mesh',
            `${med(dl.get('kernel')!).toFixed(0)} MiB/s (${(dlRatio('kernel') * 100).toFixed(0)}% of direct)`,
          ],
        ] as Array<[string, string]>)
      : []),
    ['cpu per GiB, direct: client / sink', cpuRow('direct')],
    ['cpu per GiB, userspace: client / sink / mesh', cpuRow('userspace')],
    ...(kernel
      ? ([['cpu per GiB, kernel: client / sink', cpuRow('kernel')]] as Array<[string, string]>)
      : []),
    ['tcp connections, direct (16 parallel)', `${fmt(med(dConns))} conn/s`],
    [
      'tcp connections, via userspace mesh',
      `${fmt(med(conns.get('userspace')!))} conn/s (${(connRatio('userspace') * 100).toFixed(0)}% of direct)`,
    ],
    ...(kernel
      ? ([
          [
            'tcp connections, via kernel mesh',
            `${fmt(med(conns.get('kernel')!))} conn/s (${(connRatio('kernel') * 100).toFixed(0)}% of direct)`,
          ],
        ] as Array<[string, string]>)
      : []),
  ]
  const w = Math.max(...rows.map((r) => r[0].length))
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`)
  const r3 = (n: number) => Number(n.toFixed(3))
  console.log(
    JSON.stringify({
      ipam_ops_per_s: Math.round(ops),
      ipam_baseline_set_ops_per_s: Math.round(baseline),
      subnet_allocs_per_s: Math.round(subnets.pool),
      user_subnet_allocs_per_s: Math.round(subnets.user),
      direct_mib_per_s: Math.round(med(direct)),
      mesh_mib_per_s: Math.round(med(tp.get('userspace')!)),
      mesh_vs_direct_throughput: r3(ratio('userspace')),
      ...(kernel
        ? {
            kernel_mesh_mib_per_s: Math.round(med(tp.get('kernel')!)),
            kernel_mesh_vs_direct_throughput: r3(ratio('kernel')),
          }
        : {}),
      direct_download_mib_per_s: Math.round(med(dlDirect)),
      mesh_download_mib_per_s: Math.round(med(dl.get('userspace')!)),
      mesh_vs_direct_download: r3(dlRatio('userspace')),
      mesh_download_cpu_s_per_gib: r3(dlMeshCpuPerGiB),
      ...(kernel
        ? {
            kernel_mesh_download_mib_per_s: Math.round(med(dl.get('kernel')!)),
            kernel_mesh_vs_direct_download: r3(dlRatio('kernel')),
          }
        : {}),
      sink_cpu_s_per_gib: r3(perGiB('direct').sink),
      client_cpu_s_per_gib: r3(perGiB('direct').client),
      mesh_cpu_s_per_gib: r3(perGiB('userspace').mesh),
      ...(kernel
        ? {
            kernel_client_cpu_s_per_gib: r3(perGiB('kernel').client),
            kernel_sink_cpu_s_per_gib: r3(perGiB('kernel').sink),
          }
        : {}),
      direct_conns_per_s: Math.round(med(dConns)),
      mesh_conns_per_s: Math.round(med(conns.get('userspace')!)),
      mesh_vs_direct_conns: r3(connRatio('userspace')),
      ...(kernel
        ? {
            kernel_mesh_conns_per_s: Math.round(med(conns.get('kernel')!)),
            kernel_mesh_vs_direct_conns: r3(connRatio('kernel')),
          }
        : {}),
    }),
  )
}

// utime + stime of a process, in seconds (Linux /proc; 0 elsewhere).
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)
}
