// bench/overlay-cluster: bench/overlay-swarm's throughput comparison through the reference cluster (root
// only): three namespace hosts, each with its own dockerd and swarmkit node (examples/cluster's test hosts),
// a service on an overlay network with one task on h2 publishing a port, and a client task on h1. In one run:
// request rate (a new connection per request) and byte throughput from the client task straight to the
// task's overlay address, through the service VIP (nftables in the client's sandbox), and from h3 to h1's
// published port (h1's ingress sandbox -> VXLAN -> the task on h2, all in the kernel). The servers run inside
// the task's own network namespace (its busybox image has no fast server). Everything is removed at the end.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { overlayPrefix } from '../../examples/cluster/src/worker-network.js'
import { buildImages, IMAGES } from '../../examples/cluster/test/engine-helpers.js'
import { type Host, hostsUnavailable, NetnsHosts } from '../../examples/cluster/test/netns-hosts.js'
import { echoServer, requester, sender, sink } from '../overlay-swarm/traffic.js'

const MiB = 1 << 20
const BYTES = Number(process.env.BENCH_BYTES ?? 128 * MiB)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

async function main(): Promise<void> {
  // The node CLI beside the sources (this file is bundled into bench/.out).
  process.env.SWARMKIT_CLUSTER_CLI ??= join(process.cwd(), 'examples/cluster/dist/cli.js')
  const why = await hostsUnavailable()
  if (why !== undefined) {
    console.log(`(not measured: ${why})`)
    return
  }
  const lab = new NetnsHosts()
  const servers: ChildProcess[] = []
  try {
    await lab.create(3)
    const [h1, h2, h3] = lab.hosts as [Host, Host, Host]
    await Promise.all(lab.hosts.map((h) => lab.startDockerd(h)))
    for (const h of lab.hosts) await buildImages(h.engine)
    for (const h of lab.hosts) await lab.startNode(h)
    const ok = async (h: Host, args: string[]) => {
      const r = await lab.docker(h, args)
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    await ok(h1, ['swarm', 'init', '--advertise-addr', h1.addr])
    const token = (await ok(h1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    for (const h of lab.hosts.slice(1))
      await ok(h, ['swarm', 'join', '--token', token, '--advertise-addr', h.addr, `${h1.addr}:2377`])
    for (const h of lab.hosts) {
      h.nodeId = (await ok(h, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
      lab.sandboxPrefixes.add(overlayPrefix(h.nodeId))
    }
    await ok(h1, ['network', 'create', '-d', 'overlay', 'front'])
    const service = (name: string, host: string, extra: string[]) =>
      ok(h1, [
        'service',
        'create',
        '-d',
        '--name',
        name,
        '--network',
        'front',
        '--constraint',
        `node.hostname==${host}`,
        ...extra,
        IMAGES.webV1,
      ])
    await service('web', 'h2', ['--publish', '8080:7000', '--publish', '8081:7001'])
    await service('client', 'h1', [])
    // The containers' network namespaces (by their main process) and the addresses the cluster gave.
    const pidOf = async (h: Host, name: string) => {
      let pid = ''
      await lab.until(
        `${name} running with its addresses`,
        async () => {
          const id = (
            await lab.engine(h, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${name}`])
          ).stdout.trim()
          if (!id) return false
          pid = (await lab.engine(h, ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim()
          const addrs = execFileSync('nsenter', [
            `--net=/proc/${pid}/ns/net`,
            'ip',
            '-4',
            '-o',
            'addr',
          ]).toString()
          return /10\.0\.\d+\.\d+/.test(addrs.replace(/127\.0\.0\.1/, ''))
        },
        180_000,
      )
      return pid
    }
    const webPid = await pidOf(h2, 'web')
    const clientPid = await pidOf(h1, 'client')
    const front = (await ok(h1, ['network', 'inspect', '-f', '{{.ID}}', 'front'])).trim()
    const webTask = JSON.parse(
      await ok(h1, ['inspect', '--type', 'task', (await ok(h1, ['service', 'ps', '-q', 'web'])).trim()]),
    )[0]
    const direct = String(
      webTask.NetworksAttachments.find((a: { Network: { ID: string } }) => a.Network.ID === front)
        .Addresses[0],
    ).split('/')[0]!
    const vip = String(
      JSON.parse(await ok(h1, ['service', 'inspect', 'web']))[0].Endpoint.VirtualIPs.find(
        (v: { NetworkID: string }) => v.NetworkID === front,
      ).Addr,
    ).split('/')[0]!
    const inNet = (pid: string) => ['nsenter', `--net=/proc/${pid}/ns/net`]
    const start = (pid: string, script: string, port: number) =>
      new Promise<void>((resolve, reject) => {
        const [cmd, ...args] = inNet(pid)
        const c = spawn(cmd!, [...args, process.execPath, '-e', script, String(port)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        servers.push(c)
        c.stdout!.on('data', (d) => String(d).includes('ready') && resolve())
        c.on('exit', (code) => reject(new Error(`server on ${port} exited (${code})`)))
      })
    await start(webPid, sink, 7000)
    await start(webPid, echoServer, 7001)
    const inClient = (script: string, args: string[]) => {
      const [cmd, ...rest] = inNet(clientPid)
      return execFileSync(cmd!, [...rest, process.execPath, '-e', script, ...args], { timeout: 300_000 })
        .toString()
        .trim()
    }
    // The mesh's client is outside the task's and the entry node's: h3's namespace, to h1's published port.
    const inH3 = (script: string, args: string[]) =>
      execFileSync('ip', ['netns', 'exec', h3.ns, process.execPath, '-e', script, ...args], {
        timeout: 300_000,
      })
        .toString()
        .trim()
    // The published port must be in the kernel (no proxy listening on h1), or this measures the wrong thing.
    await lab.until(
      'port 8081 through h1',
      async () => inH3(requester, [h1.addr, '8081', '0.2', '1']).split(' ')[0] !== '0',
      60_000,
    )
    const listening = (await lab.inHost(h1, ['ss', '-Hltn', 'sport = :8080'])).stdout.trim()
    if (listening)
      throw new Error(`something listens on h1:8080, the kernel path is not in use: ${listening}`)

    const measure = (kind: 'rps' | 'mib') => {
      const run = (where: 'direct' | 'vip' | 'mesh') => {
        const exec = where === 'mesh' ? inH3 : inClient
        const host = where === 'direct' ? direct : where === 'vip' ? vip : h1.addr
        const port = kind === 'rps' ? (where === 'mesh' ? 8081 : 7001) : where === 'mesh' ? 8080 : 7000
        const out =
          kind === 'rps'
            ? exec(requester, [host, String(port), String(SECONDS), '8'])
            : exec(sender, [host, String(port), String(BYTES)])
        const v = Number(out.split(' ')[0])
        if (!Number.isFinite(v) || v <= 0) throw new Error(`${kind} ${where}: ${out}`)
        return v
      }
      const res = { direct: [] as number[], vip: [] as number[], mesh: [] as number[] }
      for (let r = 0; r < ROUNDS; r++) for (const w of ['direct', 'vip', 'mesh'] as const) res[w].push(run(w))
      return res
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const report = (title: string, unit: string, res: ReturnType<typeof measure>) => {
      const ratio = (xs: number[]) => median(xs.map((x, i) => x / res.direct[i]!))
      console.log(title)
      console.log(
        `  direct to the task's address  ${median(res.direct).toFixed(0)} ${unit}  (runs: ${res.direct.map((x) => x.toFixed(0)).join(', ')})`,
      )
      console.log(
        `  through the VIP               ${median(res.vip).toFixed(0)} ${unit}  = ${(ratio(res.vip) * 100).toFixed(0)}% of direct (runs: ${res.vip.map((x) => x.toFixed(0)).join(', ')})`,
      )
      console.log(
        `  through the ingress mesh      ${median(res.mesh).toFixed(0)} ${unit}  = ${(ratio(res.mesh) * 100).toFixed(0)}% of direct (runs: ${res.mesh.map((x) => x.toFixed(0)).join(', ')})`,
      )
      return { direct: median(res.direct), vip: ratio(res.vip), mesh: ratio(res.mesh) }
    }
    const rps = report(
      `requests (a new TCP connection each, 8 at a time, ${SECONDS} s per run, ${ROUNDS} rounds; ratio = median of per-round ratios):`,
      'req/s',
      measure('rps'),
    )
    const mib = report(`throughput (${BYTES / MiB} MiB per run, ${ROUNDS} rounds):`, 'MiB/s', measure('mib'))
    console.log(
      JSON.stringify({
        direct_req_per_s: Math.round(rps.direct),
        vip_vs_direct_requests: Number(rps.vip.toFixed(3)),
        mesh_vs_direct_requests: Number(rps.mesh.toFixed(3)),
        direct_mib_per_s: Math.round(mib.direct),
        vip_vs_direct_throughput: Number(mib.vip.toFixed(3)),
        mesh_vs_direct_throughput: Number(mib.mesh.toFixed(3)),
      }),
    )
  } finally {
    for (const c of servers) c.kill('SIGKILL')
    const left = await lab.destroy()
    if (left.length > 0) console.log(`left behind: ${left.join(' ')}`)
  }
}

if (!existsSync(join(process.cwd(), 'examples/cluster/dist/cli.js')))
  console.log('(not measured: examples/cluster/dist/cli.js is missing; npm run build)')
else await main()
