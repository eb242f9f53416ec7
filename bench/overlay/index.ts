// bench/overlay: IPAM address allocations+releases per second and subnet allocations per second (against a
// plain Set of the same strings as baseline), and the routing mesh's throughput and connection rate
// against a direct connection in the same run. Server, mesh and client run as separate processes (as they
// would on a real node), so the mesh's cost is its own CPU, not a share of the client's event loop.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { ipam, routingMesh } from '@swarmkit/overlay'

const self = fileURLToPath(import.meta.url)
const role = process.argv[2]

if (role === 'server') {
  // Port A: a sink that counts bytes and reports the total when the client ends. Port B: says hi, closes.
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
  sink.listen(0, '127.0.0.1', () =>
    hi.listen(0, '127.0.0.1', () =>
      console.log(
        `ready ${(sink.address() as net.AddressInfo).port} ${(hi.address() as net.AddressInfo).port}`,
      ),
    ),
  )
} else if (role === 'mesh') {
  const [sinkPort, hiPort] = process.argv.slice(3).map(Number)
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
  console.log(`ready ${a} ${b}`)
} else {
  await main()
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

async function main() {
  const { ops, baseline } = ipamOps()
  const subnets = subnetOps()
  const server = await child(['server'])
  const [sinkPort, hiPort] = server.ports as [number, number]
  const mesh = await child(['mesh', String(sinkPort), String(hiPort)])
  const [meshSink, meshHi] = mesh.ports as [number, number]
  // The machines are shared and noisy: alternate direct and mesh runs and take medians, and the median of
  // the per-round ratios (each round's two runs see about the same machine load).
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  await throughput('127.0.0.1', sinkPort, 64 << 20)
  await throughput('127.0.0.2', meshSink, 64 << 20)
  const direct: number[] = []
  const viaMesh: number[] = []
  // CPU seconds per GiB carried, from /proc: what the endpoint (sink) and the mesh each spend.
  let serverCpu = 0
  let meshCpu = 0
  let directBytes = 0
  let meshBytes = 0
  for (let i = 0; i < 7; i++) {
    let s0 = cpuSeconds(server.proc.pid!)
    direct.push(await throughput('127.0.0.1', sinkPort, 256 << 20))
    serverCpu += cpuSeconds(server.proc.pid!) - s0
    directBytes += 256 << 20
    s0 = cpuSeconds(mesh.proc.pid!)
    viaMesh.push(await throughput('127.0.0.2', meshSink, 256 << 20))
    meshCpu += cpuSeconds(mesh.proc.pid!) - s0
    meshBytes += 256 << 20
  }
  const serverCpuPerGiB = serverCpu / (directBytes / 2 ** 30)
  const meshCpuPerGiB = meshCpu / (meshBytes / 2 ** 30)
  const dMBs = med(direct)
  const mMBs = med(viaMesh)
  const tpRatio = med(direct.map((d, i) => viaMesh[i]! / d))
  await connRate('127.0.0.1', hiPort, 500, 16)
  await connRate('127.0.0.2', meshHi, 500, 16)
  const dConns: number[] = []
  const mConns: number[] = []
  for (let i = 0; i < 5; i++) {
    dConns.push(await connRate('127.0.0.1', hiPort, 2000, 16))
    mConns.push(await connRate('127.0.0.2', meshHi, 2000, 16))
  }
  const dConn = med(dConns)
  const mConn = med(mConns)
  const connRatio = med(dConns.map((d, i) => mConns[i]! / d))
  server.proc.kill()
  mesh.proc.kill()

  const rows: Array<[string, string]> = [
    ['ipam address allocations+releases', `${fmt(ops)} ops/s`],
    ['  baseline: Set add+delete of the same strings', `${fmt(baseline)} ops/s`],
    ['ipam subnet allocations+releases (pool, /24 of /8)', `${fmt(subnets.pool)} /s`],
    ['ipam user-given subnet allocations (2000)', `${fmt(subnets.user)} /s`],
    ['tcp throughput, direct', `${dMBs.toFixed(0)} MiB/s`],
    [
      'tcp throughput, via routing mesh',
      `${mMBs.toFixed(0)} MiB/s (${(tpRatio * 100).toFixed(0)}% of direct)`,
    ],
    [
      'cpu per GiB: endpoint (sink) / mesh process',
      `${serverCpuPerGiB.toFixed(2)} s / ${meshCpuPerGiB.toFixed(2)} s`,
    ],
    ['tcp connections, direct (16 parallel)', `${fmt(dConn)} conn/s`],
    [
      'tcp connections, via routing mesh',
      `${fmt(mConn)} conn/s (${(connRatio * 100).toFixed(0)}% of direct)`,
    ],
  ]
  const w = Math.max(...rows.map((r) => r[0].length))
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`)
  console.log(
    JSON.stringify({
      ipam_ops_per_s: Math.round(ops),
      ipam_baseline_set_ops_per_s: Math.round(baseline),
      subnet_allocs_per_s: Math.round(subnets.pool),
      user_subnet_allocs_per_s: Math.round(subnets.user),
      direct_mib_per_s: Math.round(dMBs),
      mesh_mib_per_s: Math.round(mMBs),
      mesh_vs_direct_throughput: Number(tpRatio.toFixed(3)),
      sink_cpu_s_per_gib: Number(serverCpuPerGiB.toFixed(3)),
      mesh_cpu_s_per_gib: Number(meshCpuPerGiB.toFixed(3)),
      direct_conns_per_s: Math.round(dConn),
      mesh_conns_per_s: Math.round(mConn),
      mesh_vs_direct_conns: Number(connRatio.toFixed(3)),
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
