// The swarm the overlay host tests share: NetnsHosts (namespace hosts, each with its dockerd and swarmkit node)
// joined into one swarm (h1 the manager, the others workers), and the docker CLI helpers their cases use.
import { overlayPrefix } from '../src/worker-network.js'
import { buildImages } from './engine-helpers.js'
import { type CmdResult, type Host, NetnsHosts } from './netns-hosts.js'

export interface LabTask {
  name: string
  /** Hostname of the task's node. */
  node: string
  /** Its address on the network asked about (no prefix length), or ''. */
  address: string
  state: string
  id: string
}

/** A shell command for a busybox container: one HTTP/1.0 request with `nc` (busybox wget crashes there). */
export function httpRequest(host: string, port = 80): string[] {
  return [
    'sh',
    '-c',
    'printf "GET / HTTP/1.0\\r\\nHost: $0\\r\\n\\r\\n" | nc -w 5 "$0" "$1"',
    host,
    String(port),
  ]
}

/** The body of an answer to {@link httpRequest}, or `ERR …`. */
export function httpBody(r: CmdResult): string {
  const cut = r.stdout.indexOf('\r\n\r\n')
  return r.code === 0 && cut >= 0 ? r.stdout.slice(cut + 4).trim() : `ERR ${r.code} ${r.stderr.trim()}`
}

/** The addresses an `nslookup NAME 127.0.0.11` printed (the server's own address left out), sorted. */
export function lookedUp(r: CmdResult): string[] {
  return [...r.stdout.matchAll(/Address:\s*([0-9.]+)$/gm)]
    .map((m) => m[1]!)
    .filter((a) => a !== '127.0.0.11')
    .sort()
}

export class OverlayLab extends NetnsHosts {
  /** Makes `n` hosts with their dockerd and node, images loaded; h1 inits the swarm and the others join. */
  async startSwarm(n: number): Promise<Host[]> {
    await this.create(n)
    await Promise.all(this.hosts.map((h) => this.startDockerd(h)))
    for (const h of this.hosts) await buildImages(h.engine)
    for (const h of this.hosts) await this.startNode(h)
    const [h1, ...rest] = this.hosts as [Host, ...Host[]]
    await this.ok(h1, ['swarm', 'init', '--advertise-addr', h1.addr])
    const token = (await this.ok(h1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    for (const h of rest)
      await this.ok(h, ['swarm', 'join', '--token', token, '--advertise-addr', h.addr, `${h1.addr}:2377`])
    for (const h of this.hosts) {
      h.nodeId = (await this.ok(h, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
      this.sandboxPrefixes.add(overlayPrefix(h.nodeId))
    }
    await this.until(`${n} ready nodes`, async () => {
      const out = await this.ok(h1, ['node', 'ls', '--format', '{{.Status}}'])
      return out.split('\n').filter((l) => l === 'Ready').length === n
    })
    return this.hosts
  }

  /** Kills a host's swarmkit node process (SIGKILL, as a crash): its containers go on running. */
  async killNode(h: Host): Promise<void> {
    const child = h.node
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await exited
  }

  /** The docker CLI against a host's node; fails with its stderr. */
  async ok(h: Host, args: string[]): Promise<string> {
    const r = await this.docker(h, args)
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${h.name} failed (${r.code}): ${r.stderr}`)
    return r.stdout
  }

  /** The running containers of `service`'s tasks on host `h` (its own dockerd). */
  async containersOf(h: Host, service: string): Promise<string[]> {
    const out = await this.engine(h, [
      'ps',
      '-q',
      '--filter',
      `label=com.docker.swarm.service.name=${service}`,
      '--filter',
      'status=running',
    ])
    return out.stdout.split('\n').filter(Boolean)
  }

  /** The container of the (one) running task of `service` on `h`. */
  async containerOf(h: Host, service: string): Promise<string | undefined> {
    return (await this.containersOf(h, service))[0]
  }

  /** The tasks of `service` that should run: name, node hostname, address on `network`, state. */
  async tasksOf(service: string, network: string): Promise<LabTask[]> {
    const h1 = this.hosts[0]!
    const ids = (await this.ok(h1, ['service', 'ps', '-q', '--filter', 'desired-state=running', service]))
      .split('\n')
      .filter(Boolean)
    const netId = (await this.ok(h1, ['network', 'inspect', '-f', '{{.ID}}', network])).trim()
    const out: LabTask[] = []
    for (const id of ids) {
      const j = JSON.parse(await this.ok(h1, ['inspect', '--type', 'task', id]))[0]
      const node = JSON.parse(await this.ok(h1, ['node', 'inspect', j.NodeID]))[0].Description.Hostname
      const att = (j.NetworksAttachments ?? []).find(
        (a: { Network: { ID: string } }) => a.Network.ID === netId,
      )
      out.push({
        id: j.ID,
        name: `${service}.${j.Slot || j.NodeID}.${j.ID}`,
        node,
        address: String(att?.Addresses?.[0] ?? '').split('/')[0]!,
        state: j.Status.State,
      })
    }
    return out
  }
}

export type { Host }
