// bench/heartbeats: what one heartbeat costs, on each side. One manager process serves the reference
// cluster's control methods (the real Dispatcher on an in-memory store, mutual TLS as in production) and one
// worker host process runs N agents of simulated workers, each with its own key, certificate and mutual TLS
// session, heartbeating at the default 5 s period (as bench/cluster-scale's worker hosts, without the join).
// Once every node has registered and a warm-up has passed, the bench counts the heartbeats the dispatcher
// answered in a window and the CPU time both processes used (from /proc), and reports CPU per heartbeat.
//
// HB_NODES (default 2000), HB_SECONDS (measured window, default 20), HB_WARMUP_S (default 8), HB_ROUNDS
// (measured windows, default 2), HB_MESH=1 (the agents also follow the routing mesh, as daemons do).
// HB_GRAIN_MS (the agents' heartbeat timer grain; 1 gives each its own time, as separate machines have).
// HB_PERF=1 prints the two PIDs and waits for a line on stdin before measuring (to attach `perf record`).
// At the end, the manager's memory per session (RSS, V8 heap and external memory after a full GC, divided by N;
// the in-memory store's few objects per node included).
import { fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { createInterface } from 'node:readline'
import * as pki from '@swarmkit/pki'
import { ClusterStore } from '@swarmkit/store'
import { type RpcClient, rpcClient, rpcServer, tlsTransport } from '@swarmkit/transport'
import { Agent } from '../../examples/cluster/src/agent.js'
import { Dispatcher } from '../../examples/cluster/src/dispatcher.js'
import { CONTROL_ADDR_LABEL } from '../../examples/cluster/src/labels.js'
import { controlMethods } from '../../examples/cluster/src/manager/control.js'
import { MeshFollower } from '../../examples/cluster/src/routing.js'
import { simulatedExecutor } from '../../examples/cluster/src/simulated-executor.js'
import { sessionDispatcher } from '../../examples/cluster/src/simulated-worker.js'
import { cpuSeconds } from '../cluster-scale/stats.js'

const N = Number(process.env['HB_NODES'] ?? 2000)
const SECONDS = Number(process.env['HB_SECONDS'] ?? 20)
const WARMUP_S = Number(process.env['HB_WARMUP_S'] ?? 8)
const ROUNDS = Number(process.env['HB_ROUNDS'] ?? 2)
const MESH = process.env['HB_MESH'] === '1'
/** The agents' heartbeat timer grain (default the agent's, 50 ms; 1: each heartbeat at its own time). */
const GRAIN_MS = process.env['HB_GRAIN_MS'] ? Number(process.env['HB_GRAIN_MS']) : undefined

interface Setup {
  ca: pki.ExportedRootCA
  clusterId: string
  nodeIds: string[]
  controlAddr: string
}

const send = (m: unknown) => process.send!(m)
const once = <T>(child: { once(e: 'message', f: (m: T) => void): void }) =>
  new Promise<T>((resolve) => child.once('message', resolve))

async function manager(): Promise<void> {
  const ca = pki.createRootCA()
  const clusterId = pki.generateClusterId()
  const store = new ClusterStore()
  let heartbeats = 0
  const dispatcher = new Dispatcher({ store, observer: { heartbeat: () => heartbeats++ } })
  const nodeIds = Array.from({ length: N }, () => pki.generateNodeId())
  const managerIds = Array.from({ length: 3 }, () => pki.generateNodeId())
  const key = pki.generateKeyPair()
  const own = pki.issueNodeCertificate(ca, pki.createCSR(key.privateKey), {
    nodeId: managerIds[0]!,
    role: 'swarm-manager',
    clusterId,
  })
  const server = rpcServer({
    transport: tlsTransport({
      key: pki.encodePrivateKeyPem(key.privateKey),
      cert: own.chain,
      ca: ca.pem,
      authorize: pki.authorizer({ roles: ['swarm-manager', 'swarm-worker'], clusterId }),
    }),
    methods: controlMethods({
      dispatcher,
      store,
      cluster: () => store.view((tx) => tx.find('clusters')[0]),
      nodeLogs: async () => ({}),
      renew: async () => {
        throw new Error('not in this bench')
      },
    }),
  })
  const controlAddr = await server.listen('127.0.0.1:0')
  const exported = pki.exportRootCA(ca)
  await store.update((tx) => {
    tx.create('clusters', {
      id: clusterId,
      spec: {
        name: 'default',
        labels: {},
        orchestration: { taskHistoryRetentionLimit: 5 },
        dispatcher: { heartbeatPeriod: 5000 * 1e6 },
        caConfig: {},
        taskDefaults: {},
        encryptionConfig: { autoLockManagers: false },
      },
      rootCA: { caKey: exported.key, caCert: exported.certificate, caCertHash: '', joinTokens: {} },
      unlockKeys: [],
    } as never)
    for (const [i, id] of managerIds.entries())
      tx.create('nodes', {
        id,
        spec: { labels: {}, role: 'manager', availability: 'active' },
        role: 'manager',
        description: {
          hostname: `m${i}`,
          platform: { os: 'linux', architecture: 'x86_64' },
          resources: { nanoCPUs: 2e9, memoryBytes: 2 ** 30 },
          engine: {
            engineVersion: 'bench',
            labels: { [CONTROL_ADDR_LABEL]: `127.0.0.1:${4000 + i}` },
            plugins: [],
          },
        },
        status: { state: 'ready', addr: '127.0.0.1' },
        managerStatus: {
          raftId: String(i + 1),
          addr: `127.0.0.1:${5000 + i}`,
          leader: i === 0,
          reachability: 'reachable',
        },
      } as never)
    for (const id of nodeIds)
      tx.create('nodes', {
        id,
        spec: { labels: {}, role: 'worker', availability: 'active' },
        role: 'worker',
        status: { state: 'unknown', addr: '127.0.0.1' },
      } as never)
  })
  process.on('message', (m: { op: string }) => {
    if (m.op === 'count') send({ op: 'count', heartbeats })
    if (m.op === 'memory') {
      // After a full collection (when exposed): what the sessions hold, not garbage.
      ;(globalThis as { gc?: () => void }).gc?.()
      send({ op: 'memory', usage: process.memoryUsage() })
    }
  })
  send({ op: 'setup', setup: { ca: exported, clusterId, nodeIds, controlAddr } satisfies Setup })
}

async function workers(): Promise<void> {
  const setup = await new Promise<Setup>((resolve) =>
    process.once('message', (m: { setup: Setup }) => resolve(m.setup)),
  )
  const ca = pki.importRootCA(setup.ca)
  const agents: Agent[] = []
  const clients: RpcClient[] = []
  const meshes: MeshFollower[] = []
  let next = 0
  const one = async () => {
    for (let i = next++; i < setup.nodeIds.length; i = next++) {
      const nodeId = setup.nodeIds[i]!
      const key = pki.generateKeyPair()
      const cert = pki.issueNodeCertificate(ca, pki.createCSR(key.privateKey), {
        nodeId,
        role: 'swarm-worker',
        clusterId: setup.clusterId,
      })
      const transport = tlsTransport({
        key: pki.encodePrivateKeyPem(key.privateKey),
        cert: cert.chain,
        ca: ca.pem,
        authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId: setup.clusterId }),
      })
      const client = rpcClient({ transport, address: setup.controlAddr })
      clients.push(client)
      const dispatcher = sessionDispatcher(() => client)
      const info = {
        hostname: `sim-${i}`,
        platform: { os: 'linux', architecture: 'x86_64' },
        resources: { nanoCPUs: 8e9, memoryBytes: 32 * 2 ** 30 },
        engineVersion: 'simulated',
      }
      const agent = new Agent({
        nodeId,
        dispatcher,
        info,
        addr: '127.0.0.1',
        executor: simulatedExecutor({ hostname: info.hostname, addr: '127.0.0.1', serveTasks: false }),
        role: 'worker',
        ...(GRAIN_MS ? { heartbeatGrainMs: GRAIN_MS } : {}),
      })
      await agent.start()
      agents.push(agent)
      if (MESH) {
        const mesh = new MeshFollower({
          host: '127.0.0.1',
          nodeId,
          source: (signal) => dispatcher.mesh(nodeId, signal),
        })
        mesh.start()
        meshes.push(mesh)
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, one))
  send({ op: 'started', agents: agents.length })
  process.on('message', async (m: { op: string }) => {
    if (m.op === 'stop') {
      await Promise.all(meshes.map((m) => m.close()))
      await Promise.all(agents.map((a) => a.stop()))
      await Promise.all(clients.map((c) => c.close()))
      process.exit(0)
    }
  })
}

async function main(): Promise<void> {
  const role = process.argv[2]
  if (role === 'manager') return manager()
  if (role === 'workers') return workers()
  const m = fork(process.argv[1]!, ['manager'], { execArgv: process.execArgv })
  const { setup } = await once<{ setup: Setup }>(m)
  const w = fork(process.argv[1]!, ['workers'], { execArgv: process.execArgv })
  w.send({ setup })
  const t0 = Date.now()
  const started = await once<{ agents: number }>(w)
  console.log(
    `N=${N} agents up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${started.agents} registered)${MESH ? ', following the mesh' : ''}; manager pid ${m.pid}, workers pid ${w.pid}`,
  )
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000))
  if (process.env['HB_PERF'] === '1') {
    console.log('attach perf now; press enter to measure')
    await new Promise<void>((r) => createInterface({ input: process.stdin }).once('line', () => r()))
  }
  const count = async () => {
    m.send({ op: 'count' })
    return (await once<{ heartbeats: number }>(m)).heartbeats
  }
  const rows: Record<string, number>[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const hb0 = await count()
    const [mc0, wc0, t] = [cpuSeconds(m.pid), cpuSeconds(w.pid), Date.now()]
    await new Promise((r) => setTimeout(r, SECONDS * 1000))
    const hb = (await count()) - hb0
    const mc = cpuSeconds(m.pid) - mc0
    const wc = cpuSeconds(w.pid) - wc0
    const s = (Date.now() - t) / 1000
    const row = {
      heartbeats: hb,
      per_s: Math.round(hb / s),
      manager_cpu_s: Number(mc.toFixed(2)),
      workers_cpu_s: Number(wc.toFixed(2)),
      manager_us_per_hb: Math.round((mc / hb) * 1e6),
      workers_us_per_hb: Math.round((wc / hb) * 1e6),
      total_us_per_hb: Math.round(((mc + wc) / hb) * 1e6),
      load: Number(loadavg()[0]!.toFixed(1)),
    }
    rows.push(row)
    console.log(JSON.stringify(row))
  }
  const best = rows.reduce((a, b) => (a.total_us_per_hb! <= b.total_us_per_hb! ? a : b))
  m.send({ op: 'memory' })
  const { usage } = await once<{ usage: NodeJS.MemoryUsage }>(m)
  const kib = (bytes: number) => Math.round(bytes / N / 1024)
  const memory = {
    manager_rss_mib: Math.round(usage.rss / 2 ** 20),
    rss_kib_per_session: kib(usage.rss),
    heap_used_kib_per_session: kib(usage.heapUsed),
    external_kib_per_session: kib(usage.external),
  }
  console.log(
    JSON.stringify({ nodes: N, mesh: MESH, best_total_us_per_hb: best.total_us_per_hb, ...best, ...memory }),
  )
  w.send({ op: 'stop' })
  await new Promise((r) => w.once('exit', r))
  m.kill()
}

await main()
