// bench/transport: one-way 1 KiB messages per second and RPC round trips per second over the memory,
// TCP and TLS transports, against a raw node:net baseline measured in the same run. The servers run
// in a child process (this same file with --server), so client and server each have a core.
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  MemoryNetwork,
  type RpcClient,
  rpcClient,
  rpcServer,
  type Transport,
  tcpTransport,
  tlsTransport,
} from '@swarmkit/transport'

const ONEWAY_MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200 * 1024)
const RPC_SECONDS = Number(process.env.BENCH_RPC_SECONDS ?? 1)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const MESSAGE_BYTES = 1024
const RPC_BYTES = 64
const ACK_EVERY = 1024 * 1024

interface Certs {
  ca: string
  server: { key: string; cert: string }
  client: { key: string; cert: string }
}

function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-bench-'))
  const run = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    run('genpkey', '-algorithm', 'ed25519', '-out', 'ca.key')
    run('req', '-new', '-x509', '-key', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=bench-ca')
    writeFileSync(join(dir, 'ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n')
    const issue = (name: string, ou: string) => {
      run('genpkey', '-algorithm', 'ed25519', '-out', `${name}.key`)
      run(
        'req',
        '-new',
        '-key',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/O=bench/OU=${ou}/CN=${name}`,
      )
      run(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-days',
        '1',
        '-extfile',
        'ext',
        '-out',
        `${name}.pem`,
      )
      return {
        key: readFileSync(join(dir, `${name}.key`), 'utf8'),
        cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
      }
    }
    return {
      ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      server: issue('server', 'swarm-manager'),
      client: issue('client', 'swarm-manager'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------- servers (child process)

function serveMethods(transport: Transport, address: string): Promise<string> {
  let received = 0
  const server = rpcServer({
    transport,
    methods: {
      sink: {
        kind: 'notify',
        handler: () => {
          received++
        },
      },
      sync: { kind: 'call', handler: () => received },
      echo: { kind: 'call', handler: (p: unknown) => p },
    },
  })
  return server.listen(address)
}

function listenRaw(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer({ noDelay: true }, onSocket)
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
}

async function runServers(): Promise<void> {
  const certs = JSON.parse(process.env.BENCH_CERTS!) as Certs
  // Raw one-way: count bytes, answer one byte per MiB received.
  const rawSink = await listenRaw((s) => {
    let bytes = 0
    s.on('data', (chunk: Buffer) => {
      const before = Math.floor(bytes / ACK_EVERY)
      bytes += chunk.length
      const acks = Math.floor(bytes / ACK_EVERY) - before
      if (acks > 0) s.write(Buffer.alloc(acks))
    })
    s.on('error', () => {})
  })
  // Raw echo: every byte straight back.
  const rawEcho = await listenRaw((s) => {
    s.on('data', (chunk: Buffer) => s.write(chunk))
    s.on('error', () => {})
  })
  const tcp = await serveMethods(tcpTransport(), '127.0.0.1:0')
  const tls = await serveMethods(tlsTransport({ ...certs.server, ca: certs.ca }), '127.0.0.1:0')
  // The client asks for this process's CPU time around each run.
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: cpuMicros() })
  })
  process.send!({ rawSink, rawEcho, tcp, tls })
}

// ---------------------------------------------------------------- client side

async function rawSocket(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, noDelay: true })
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve())
    s.once('error', reject)
  })
  return s
}

async function rawOneWay(port: number, n: number): Promise<number> {
  const s = await rawSocket(port)
  const msg = Buffer.alloc(MESSAGE_BYTES, 7)
  const expectedAcks = (n * MESSAGE_BYTES) / ACK_EVERY
  let acks = 0
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  s.on('data', (chunk: Buffer) => {
    acks += chunk.length
    if (acks >= expectedAcks) done()
  })
  const start = performance.now()
  for (let i = 0; i < n; i++) {
    if (!s.write(msg)) await new Promise((resolve) => s.once('drain', resolve))
  }
  await finished
  const seconds = (performance.now() - start) / 1000
  s.destroy()
  return n / seconds
}

/** Round trips of RPC_BYTES-byte messages with `concurrency` in flight, for RPC_SECONDS. */
async function rawRoundTrips(port: number, concurrency: number): Promise<number> {
  const s = await rawSocket(port)
  const msg = Buffer.alloc(RPC_BYTES, 1)
  let bytes = 0
  let completed = 0
  const start = performance.now()
  const end = start + RPC_SECONDS * 1000
  let stopping = false
  let done: () => void = () => {}
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  let inFlight = 0
  s.on('data', (chunk: Buffer) => {
    bytes += chunk.length
    while (bytes >= RPC_BYTES) {
      bytes -= RPC_BYTES
      completed++
      inFlight--
      if (!stopping && performance.now() < end) {
        inFlight++
        s.write(msg)
      } else {
        stopping = true
        if (inFlight === 0) done()
      }
    }
  })
  for (let i = 0; i < concurrency; i++) {
    inFlight++
    s.write(msg)
  }
  await finished
  const seconds = (performance.now() - start) / 1000
  s.destroy()
  return completed / seconds
}

async function oneWay(client: RpcClient, n: number): Promise<number> {
  const session = await client.connect()
  const payload = new Uint8Array(MESSAGE_BYTES).fill(7)
  const before = (await client.call<number>('sync')) ?? 0
  const start = performance.now()
  for (let i = 0; i < n; i++) {
    session.notify('sink', payload)
    if (!session.writable) await session.drained()
  }
  const got = await client.call<number>('sync', undefined, { timeoutMs: 120_000 })
  const seconds = (performance.now() - start) / 1000
  if (got - before !== n) throw new Error(`sink got ${got - before} of ${n} messages`)
  return n / seconds
}

async function roundTrips(client: RpcClient, concurrency: number): Promise<number> {
  const session = await client.connect()
  const payload = new Uint8Array(RPC_BYTES).fill(1)
  let completed = 0
  const start = performance.now()
  const end = start + RPC_SECONDS * 1000
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await session.call('echo', payload)
        completed++
      }
    }),
  )
  return completed / ((performance.now() - start) / 1000)
}

async function memoryPair(): Promise<RpcClient> {
  const net = new MemoryNetwork()
  await serveMethods(net.transport('server'), 'server')
  return rpcClient({ transport: net.transport('client'), address: 'server' })
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

function cpuMicros(): number {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** Messages per second, and CPU microseconds per message spent by client and server together. */
interface Measured {
  rate: number
  cpuPerMsg: number
}

let serverCpu: () => Promise<number> = async () => 0

/** Run a one-way measurement and add the CPU both processes spent on it. */
async function withCpu(n: number, run: () => Promise<number>, sameProcess = false): Promise<Measured> {
  const s0 = sameProcess ? 0 : await serverCpu()
  const c0 = cpuMicros()
  const rate = await run()
  const c1 = cpuMicros()
  const s1 = sameProcess ? 0 : await serverCpu()
  return { rate, cpuPerMsg: (c1 - c0 + (s1 - s0)) / n }
}

async function main(): Promise<void> {
  const certs = makeCerts()
  const child: ChildProcess = fork(process.argv[1]!, ['--server'], {
    env: { ...process.env, BENCH_CERTS: JSON.stringify(certs) },
    execArgv: [],
  })
  const ports = await new Promise<{ rawSink: number; rawEcho: number; tcp: string; tls: string }>((resolve) =>
    child.once('message', (m) => resolve(m as never)),
  )
  serverCpu = () =>
    new Promise<number>((resolve) => {
      const onMessage = (m: unknown) => {
        if (typeof m === 'object' && m !== null && 'cpu' in m) {
          child.off('message', onMessage)
          resolve((m as { cpu: number }).cpu)
        }
      }
      child.on('message', onMessage)
      child.send('cpu')
    })
  try {
    const tcp = rpcClient({ transport: tcpTransport(), address: ports.tcp })
    const tls = rpcClient({ transport: tlsTransport({ ...certs.client, ca: certs.ca }), address: ports.tls })
    const memory = await memoryPair()

    // Warm up every path (JIT, TLS session) before measuring.
    await rawOneWay(ports.rawSink, 16 * 1024)
    for (const c of [tcp, tls, memory]) await oneWay(c, 16 * 1024)

    // The machines are shared and noisy: run every measurement in interleaved rounds and keep the best
    // of each, so that the baseline and the transports see the same conditions.
    const n = ONEWAY_MESSAGES
    const oneWayRuns: Record<string, () => Promise<Measured>> = {
      raw: () => withCpu(n, () => rawOneWay(ports.rawSink, n)),
      tcp: () => withCpu(n, () => oneWay(tcp, n)),
      tls: () => withCpu(n, () => oneWay(tls, n)),
      memory: () => withCpu(n, () => oneWay(memory, n), true),
    }
    const rpcRuns: Record<string, () => Promise<number>> = {
      rawRtt1: () => rawRoundTrips(ports.rawEcho, 1),
      tcpRtt1: () => roundTrips(tcp, 1),
      tlsRtt1: () => roundTrips(tls, 1),
      memRtt1: () => roundTrips(memory, 1),
      rawRtt64: () => rawRoundTrips(ports.rawEcho, 64),
      tcpRtt64: () => roundTrips(tcp, 64),
      tlsRtt64: () => roundTrips(tls, 64),
      memRtt64: () => roundTrips(memory, 64),
    }
    const best: Record<string, number> = {}
    const cpu: Record<string, number> = {}
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of Object.entries(oneWayRuns)) {
        const m = await run()
        best[name] = Math.max(best[name] ?? 0, m.rate)
        cpu[name] = Math.min(cpu[name] ?? Number.POSITIVE_INFINITY, m.cpuPerMsg)
      }
      for (const [name, run] of Object.entries(rpcRuns)) best[name] = Math.max(best[name] ?? 0, await run())
    }
    const get = (name: string) => best[name]!
    const [raw1, tcp1, tls1, mem1] = [get('raw'), get('tcp'), get('tls'), get('memory')]
    const [rawRtt1, tcpRtt1, tlsRtt1, memRtt1] = [
      get('rawRtt1'),
      get('tcpRtt1'),
      get('tlsRtt1'),
      get('memRtt1'),
    ]
    const [rawRtt64, tcpRtt64, tlsRtt64, memRtt64] = [
      get('rawRtt64'),
      get('tcpRtt64'),
      get('tlsRtt64'),
      get('memRtt64'),
    ]
    const rows: [string, number, number, number, number, number][] = [
      ['raw node:net', raw1, rawRtt1, rawRtt64, 1, cpu.raw!],
      ['tcp', tcp1, tcpRtt1, tcpRtt64, tcp1 / raw1, cpu.tcp!],
      ['tls', tls1, tlsRtt1, tlsRtt64, tls1 / raw1, cpu.tls!],
      ['memory', mem1, memRtt1, memRtt64, mem1 / raw1, cpu.memory!],
    ]

    console.log(
      `one-way: ${ONEWAY_MESSAGES} messages of ${MESSAGE_BYTES} B; rpc: ${RPC_BYTES} B echo for ${RPC_SECONDS} s; ` +
        `best of ${ROUNDS} interleaved rounds`,
    )
    console.log(
      'transport      one-way msgs/s   one-way vs raw   CPU µs/msg   rpc/s (1 in flight)   rpc/s (64 in flight)',
    )
    for (const [name, ow, r1, r64, ratio, c] of rows) {
      console.log(
        `${name.padEnd(14)} ${fmt(ow).padStart(14)}   ${ratio.toFixed(2).padStart(14)}   ${c.toFixed(2).padStart(10)}   ` +
          `${fmt(r1).padStart(19)}   ${fmt(r64).padStart(20)}`,
      )
    }
    console.log(
      'CPU µs/msg: client and server processes together (one process for memory), lowest of the rounds.',
    )
    await Promise.all([tcp.close(), tls.close(), memory.close()])
    console.log(
      JSON.stringify({
        raw_msgs_per_s: Math.round(raw1),
        tcp_msgs_per_s: Math.round(tcp1),
        tls_msgs_per_s: Math.round(tls1),
        memory_msgs_per_s: Math.round(mem1),
        tcp_vs_raw: Number((tcp1 / raw1).toFixed(3)),
        tls_vs_raw: Number((tls1 / raw1).toFixed(3)),
        raw_cpu_us_per_msg: Number(cpu.raw!.toFixed(3)),
        tcp_cpu_us_per_msg: Number(cpu.tcp!.toFixed(3)),
        tls_cpu_us_per_msg: Number(cpu.tls!.toFixed(3)),
        memory_cpu_us_per_msg: Number(cpu.memory!.toFixed(3)),
        tcp_cpu_vs_raw: Number((cpu.raw! / cpu.tcp!).toFixed(3)),
        tls_cpu_vs_raw: Number((cpu.raw! / cpu.tls!).toFixed(3)),
        raw_rpc_per_s_1: Math.round(rawRtt1),
        tcp_rpc_per_s_1: Math.round(tcpRtt1),
        tls_rpc_per_s_1: Math.round(tlsRtt1),
        memory_rpc_per_s_1: Math.round(memRtt1),
        raw_rpc_per_s_64: Math.round(rawRtt64),
        tcp_rpc_per_s_64: Math.round(tcpRtt64),
        tls_rpc_per_s_64: Math.round(tlsRtt64),
        memory_rpc_per_s_64: Math.round(memRtt64),
        tcp_rpc_vs_raw_1: Number((tcpRtt1 / rawRtt1).toFixed(3)),
        tcp_rpc_vs_raw_64: Number((tcpRtt64 / rawRtt64).toFixed(3)),
        tls_rpc_vs_raw_64: Number((tlsRtt64 / rawRtt64).toFixed(3)),
      }),
    )
  } finally {
    child.kill()
  }
}

if (process.argv.includes('--server')) {
  await runServers()
} else {
  await main()
  process.exit(0)
}
