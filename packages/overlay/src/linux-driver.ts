// The Linux data plane of an overlay node through iproute2: bridges, VXLAN devices, static forwarding and
// neighbour entries, network-namespace sandboxes. Over 600 lines because every operation goes through the
// same serialized, idempotent read-compare-write of the kernel's state (links, addresses, FDB) with one naming
// scheme for what the driver owns; its input checks (driver.ts) and command runner (internal/exec.ts) are separate.

import { writeFile } from 'node:fs/promises'
import {
  abortable,
  type CallOptions,
  type CheckedNetwork,
  checkDesired,
  checkNetwork,
  checkPeers,
  checkSandbox,
  type DataPlaneState,
  type DesiredDataPlane,
  type NetworkDriver,
  type OverlayNetwork,
  type Peer,
  type PeerUpdate,
  type Sandbox,
  type SandboxSpec,
} from './driver.js'
import { OverlayError } from './errors.js'
import { execRunner, missingCapabilities } from './internal/exec.js'
import { formatIp, parseCidr, parseIp } from './internal/ip.js'

/** Runs `ip`, `bridge` or `nft` with arguments and resolves with its stdout. Injectable for tests. */
export type CommandRunner = (
  file: 'ip' | 'bridge' | 'nft',
  args: string[],
  options?: { signal?: AbortSignal; input?: string },
) => Promise<string>

/** How a {@link linuxDriver} is built: its VTEP address, underlay device, name prefix and namespace. */
export interface LinuxDriverOptions {
  /** This node's underlay address: the local end (VTEP) of its VXLAN tunnels. */
  vtep: string
  /** The underlay device VXLAN traffic leaves through (optional; the kernel routes by `vtep`). */
  underlayDevice?: string
  /**
   * Prefix of every device and namespace name the driver makes: 1-5 characters, a lowercase letter then
   * lowercase letters or digits. Default `sk`. Each driver on a machine needs its own prefix.
   */
  prefix?: string
  /** Program this network namespace (as `ip -n`) instead of the current one, e.g. a test's host namespace. */
  namespace?: string
  /** VXLAN UDP port. Default 4789. */
  port?: number
  /**
   * Let the namespace route between overlay bridges and its other interfaces (default false: nothing that
   * enters an overlay bridge is routed). True is what host-mode published ports and task egress need: the
   * bridges forward, and an nftables table (`inet <prefix>_isolation`) drops whatever would be routed from
   * one overlay network to another, so networks stay isolated whatever `ip_forward` says.
   */
  routed?: boolean
  /** Command runner (default: execFile of iproute2). */
  exec?: CommandRunner
}

const MAX_OUTPUT = 16 * 1024 * 1024
const defaultRunner: CommandRunner = execRunner(MAX_OUTPUT)

/**
 * Checks that the Linux driver can run here: Linux, iproute2 installed, and root (CAP_NET_ADMIN and
 * CAP_SYS_ADMIN). Throws `OverlayError` `UNSUPPORTED` or `PERMISSION_DENIED` saying what is missing.
 */
export async function checkLinuxDriver(options: { exec?: CommandRunner } = {}): Promise<void> {
  if (process.platform !== 'linux')
    throw new OverlayError(
      'UNSUPPORTED',
      `the Linux overlay driver needs Linux (this is ${process.platform})`,
    )
  const run = options.exec ?? defaultRunner
  for (const tool of ['ip', 'bridge'] as const) {
    try {
      await run(tool, ['-V'])
    } catch (err) {
      throw new OverlayError(
        'UNSUPPORTED',
        `the Linux overlay driver needs iproute2 (\`${tool}\` did not run)`,
        {
          cause: err,
        },
      )
    }
  }
  const missing = await missingCapabilities(true)
  if (missing.length > 0)
    throw new OverlayError(
      'PERMISSION_DENIED',
      `the Linux overlay driver needs root (missing ${missing.join(' and ')}); run it as root, or use memoryDriver() where the kernel cannot be used`,
    )
}

interface LinkInfo {
  ifname: string
  master?: string
  ifalias?: string
  address?: string
  linkinfo?: {
    info_kind?: string
    info_data?: { id?: number; local?: string; local6?: string; port?: number }
  }
}

// FNV-1a, 32 bits, in base 36 (7 characters): short, stable veth names from sandbox IDs.
function shortHash(s: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(36).padStart(7, '0')
}

class LinuxDriver implements NetworkDriver {
  readonly kind = 'linux' as const
  private readonly prefix: string
  private readonly vtep: string
  private readonly port: number
  private readonly underlayDevice: string | undefined
  private readonly ns: string | undefined
  private readonly run: CommandRunner
  private readonly routed: boolean
  private isolated = ''
  private readonly networks = new Map<string, CheckedNetwork>()
  private ready: Promise<void> | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(options: LinuxDriverOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    this.vtep = options.vtep
    parseIp(options.vtep, 'options.vtep')
    this.prefix = options.prefix ?? 'sk'
    if (typeof this.prefix !== 'string' || !/^[a-z][a-z0-9]{0,4}$/.test(this.prefix))
      throw new TypeError(
        'options.prefix must be 1-5 characters: a lowercase letter, then lowercase letters or digits',
      )
    this.port = options.port ?? 4789
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535)
      throw new RangeError('options.port must be an integer in 1..65535')
    if (options.underlayDevice !== undefined && !/^[A-Za-z0-9_.@-]{1,15}$/.test(options.underlayDevice))
      throw new TypeError('options.underlayDevice must be an interface name')
    this.underlayDevice = options.underlayDevice
    if (options.namespace !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(options.namespace))
      throw new TypeError('options.namespace must be a network namespace name')
    this.ns = options.namespace
    if (options.exec !== undefined && typeof options.exec !== 'function')
      throw new TypeError('options.exec must be a function')
    this.run = options.exec ?? defaultRunner
    if (options.routed !== undefined && typeof options.routed !== 'boolean')
      throw new TypeError('options.routed must be a boolean')
    this.routed = options.routed ?? false
  }

  /**
   * Adds and removes remote endpoints of a network without touching the others (the network DB's
   * incremental updates: an entry in use is never flushed and re-added). One batch per tool.
   */
  updatePeers(network: string, update: PeerUpdate, options?: CallOptions): Promise<void> {
    if (typeof update !== 'object' || update === null) throw new TypeError('update must be an object')
    const add = checkPeers(update.add ?? [])
    const remove = (update.remove ?? []).map((a, i) => {
      const p = parseIp(a, `update.remove[${i}]`)
      return formatIp(p.family, p.value)
    })
    return this.serial(options, async () => {
      const net = this.known(network)
      const vx = this.vxlanName(net.vni)
      const ipCmds: string[][] = []
      const bridgeCmds: string[][] = []
      if (remove.length > 0) {
        const neigh = new Map((await this.neighbours(vx, options)).map((n) => [n.address, n.mac]))
        for (const a of remove) {
          const mac = neigh.get(a)
          if (mac === undefined) continue
          ipCmds.push(['neigh', 'del', a, 'dev', vx])
          bridgeCmds.push(['fdb', 'del', mac, 'dev', vx, 'self'])
        }
      }
      for (const p of add) {
        if (p.vtep === this.vtep) continue
        if (p.family !== net.family)
          throw new RangeError(`peer ${p.address} is not an IPv${net.family} address`)
        bridgeCmds.push(['fdb', 'replace', p.mac, 'dev', vx, 'dst', p.vtep, 'self', 'permanent'])
        ipCmds.push(['neigh', 'replace', p.address, 'lladdr', p.mac, 'dev', vx, 'nud', 'permanent'])
      }
      await this.batch('bridge', bridgeCmds, options)
      await this.batch('ip', ipCmds, options)
    })
  }

  createNetwork(network: OverlayNetwork, options?: CallOptions): Promise<void> {
    const net = checkNetwork(network)
    return this.serial(options, async () => {
      for (const other of this.networks.values())
        if (other.vni === net.vni && other.id !== net.id)
          throw new OverlayError(
            'IN_USE',
            `VNI ${net.vni} is already used by network ${other.id} on this node`,
            {
              holder: other.id,
            },
          )
      let links = await this.links(options)
      // The same network under another VNI (known, or found by the bridge's alias after a restart): its
      // old devices go first.
      const stale = this.bridgeName(net.vni)
      for (const l of links.values())
        if (l.ifalias === net.id && l.ifname.startsWith(`${this.prefix}b`) && l.ifname !== stale) {
          const old = l.ifname.slice(this.prefix.length + 1)
          for (const name of [`${this.prefix}x${old}`, l.ifname])
            if (links.has(name)) await this.ip(['link', 'del', 'dev', name], options)
          links = await this.links(options)
        }
      await this.ensureNetwork(net, links, options)
      this.networks.set(net.id, net)
    })
  }

  removeNetwork(id: string, options?: CallOptions): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string')
    return this.serial(options, async () => {
      const links = await this.links(options)
      const net = this.networks.get(id)
      const names = new Set<string>()
      if (net !== undefined) names.add(this.bridgeName(net.vni)).add(this.vxlanName(net.vni))
      // After a restart the driver may not know the network: find its bridge by alias.
      for (const l of links.values())
        if (l.ifalias === id && l.ifname.startsWith(`${this.prefix}b`))
          names.add(l.ifname).add(`${this.prefix}x${l.ifname.slice(this.prefix.length + 1)}`)
      for (const name of [...names].sort().reverse())
        if (links.has(name)) await this.ip(['link', 'del', 'dev', name], options)
      this.networks.delete(id)
    })
  }

  setPeers(network: string, peers: Peer[], options?: CallOptions): Promise<void> {
    const checked = checkPeers(peers)
    return this.serial(options, async () => {
      const net = this.known(network)
      await this.syncPeers(net, checked, options)
    })
  }

  createSandbox(spec: SandboxSpec, options?: CallOptions): Promise<Sandbox> {
    const s = checkSandbox(spec)
    return this.serial(options, () => this.ensureSandbox(s, options))
  }

  removeSandbox(id: string, options?: CallOptions): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string')
    return this.serial(options, async () => {
      await this.dropSandbox(id, await this.links(options), await this.namespaces(options), options)
    })
  }

  reconcile(desired: DesiredDataPlane, options?: CallOptions): Promise<void> {
    const d = checkDesired(desired)
    const nets = d.networks.map(checkNetwork)
    const peers = new Map<string, ReturnType<typeof checkPeers>>()
    for (const n of nets) peers.set(n.id, checkPeers(d.peers?.[n.id] ?? []))
    const sandboxes = d.sandboxes.map(checkSandbox)
    const vnis = new Set<number>()
    for (const n of nets) {
      if (vnis.has(n.vni)) throw new RangeError(`desired.networks: VNI ${n.vni} is used twice`)
      vnis.add(n.vni)
    }
    const ids = new Set(nets.map((n) => n.id))
    for (const s of d.sandboxes)
      for (const e of s.endpoints)
        if (!ids.has(e.network))
          throw new RangeError(`desired.sandboxes: ${s.id} joins network ${e.network}, which is not desired`)
    return this.serial(options, async () => {
      // 1. Sandboxes that should not exist go first (their veths hang on the bridges).
      const wantBoxes = new Set(sandboxes.map((s) => s.id))
      let links = await this.links(options)
      for (const id of await this.namespaces(options))
        if (!wantBoxes.has(id)) await this.dropSandbox(id, links, [id], options)
      // 2. Devices of networks that should not exist, and stray veths.
      links = await this.links(options)
      const wantNames = new Set<string>()
      for (const n of nets) wantNames.add(this.bridgeName(n.vni)).add(this.vxlanName(n.vni))
      for (const s of sandboxes)
        for (let i = 0; i < s.endpoints.length; i++) wantNames.add(this.vethName(s.id, i))
      for (const name of [...links.keys()].sort().reverse())
        if (this.owns(name) && !wantNames.has(name) && links.has(name)) {
          await this.ip(['link', 'del', 'dev', name], options)
          links = await this.links(options)
        }
      this.networks.clear()
      // 3. Networks and their peers, then sandboxes.
      for (const n of nets) {
        await this.ensureNetwork(n, links, options)
        this.networks.set(n.id, n)
        await this.syncPeers(n, peers.get(n.id)!, options)
      }
      for (const s of sandboxes) await this.ensureSandbox(s, options)
    })
  }

  inspect(options?: CallOptions): Promise<DataPlaneState> {
    return this.serial(options, async () => {
      const links = await this.links(options)
      const networks: DataPlaneState['networks'] = []
      const peers: DataPlaneState['peers'] = []
      for (const l of links.values()) {
        if (!l.ifname.startsWith(`${this.prefix}b`) || l.linkinfo?.info_kind !== 'bridge') continue
        const vni = Number.parseInt(l.ifname.slice(this.prefix.length + 1), 36)
        const id = l.ifalias ?? ''
        networks.push({ id, vni })
        const vx = this.vxlanName(vni)
        if (!links.has(vx)) continue
        const fdb = await this.fdb(vx, options)
        for (const n of await this.neighbours(vx, options)) {
          const vtep = fdb.get(n.mac)
          if (vtep !== undefined) peers.push({ network: id, address: n.address, mac: n.mac, vtep })
        }
      }
      const namespaces = await this.namespaces(options)
      return {
        networks: networks.sort((a, b) => a.vni - b.vni),
        peers: peers.sort((a, b) =>
          a.network === b.network ? cmp(a.address, b.address) : cmp(a.network, b.network),
        ),
        sandboxes: [...namespaces].sort(),
        resources: [
          ...[...links.keys()].filter((n) => this.owns(n)),
          ...namespaces.map((id) => this.nsName(id)),
        ].sort(),
      }
    })
  }

  async destroy(options?: CallOptions): Promise<void> {
    await this.reconcile({ networks: [], sandboxes: [] }, options)
    if (!this.routed) return
    const table = `${this.prefix}_isolation`
    const script = `table inet ${table} {}\ndelete table inet ${table}\n`
    const args = this.ns === undefined ? ['-f', '-'] : ['netns', 'exec', this.ns, 'nft', '-f', '-']
    await this.run(this.ns === undefined ? 'nft' : 'ip', args, { ...options, input: script }).catch((err) => {
      throw this.failure(['nft', 'delete', 'table', table], err)
    })
    this.isolated = ''
  }

  // ---- internals ----

  private async ensureNetwork(net: CheckedNetwork, links: Map<string, LinkInfo>, options?: CallOptions) {
    const br = this.bridgeName(net.vni)
    const vx = this.vxlanName(net.vni)
    const b = links.get(br)
    if (b !== undefined && b.linkinfo?.info_kind !== 'bridge')
      await this.ip(['link', 'del', 'dev', br], options)
    if (b === undefined || b.linkinfo?.info_kind !== 'bridge')
      await this.ip(['link', 'add', 'name', br, 'type', 'bridge'], options)
    await this.ip(
      ['link', 'set', 'dev', br, 'address', net.mac, 'mtu', String(net.mtu), 'alias', net.id],
      options,
    )
    // Addresses: this node's own first (so it is the source the node uses), then the gateway.
    const want = [...(net.nodeAddress === undefined ? [] : [net.nodeAddress]), net.gateway].map(
      (a) => `${a.toLowerCase()}/${net.prefix}`,
    )
    const have = await this.addresses(br, net.family, options)
    if (have.join(' ') !== want.join(' ')) {
      if (have.length > 0) await this.ip([`-${net.family}`, 'addr', 'flush', 'dev', br], options)
      for (const a of want)
        await this.ip(['addr', 'add', a, 'dev', br, ...(net.family === 6 ? ['nodad'] : [])], options)
    }
    const x = links.get(vx)
    const data = x?.linkinfo?.info_data
    const same =
      x !== undefined &&
      x.linkinfo?.info_kind === 'vxlan' &&
      data?.id === net.vni &&
      data?.port === this.port &&
      (data?.local ?? data?.local6) === this.vtep
    if (x !== undefined && !same) await this.ip(['link', 'del', 'dev', vx], options)
    if (!same) {
      const args = [
        'link',
        'add',
        'name',
        vx,
        'type',
        'vxlan',
        'id',
        String(net.vni),
        'dstport',
        String(this.port),
      ]
      args.push('local', this.vtep, 'nolearning', 'proxy')
      if (this.underlayDevice !== undefined) args.push('dev', this.underlayDevice)
      await this.ip(args, options)
    }
    await this.ip(['link', 'set', 'dev', vx, 'mtu', String(net.mtu), 'master', br, 'up'], options)
    await this.ip(['link', 'set', 'dev', br, 'up'], options)
    // Networks are isolated from each other even on a host that forwards (ip_forward=1): nothing that
    // enters through an overlay bridge is routed anywhere.
    if (this.routed) await this.isolate(net.vni, options)
    await this.sysctl(`net/ipv4/conf/${br}/forwarding`, this.routed ? '1' : '0', options)
  }

  // The routed mode's isolation: one table that drops routing from one overlay bridge to another. A rule
  // per bridge ("from B to an overlay bridge other than B"): with br_netfilter, frames bridged inside one
  // network also pass the forward hook with B as both interfaces, and those must pass.
  private async isolate(also: number, options?: CallOptions): Promise<void> {
    const bridges = [...new Set([...[...this.networks.values()].map((n) => n.vni), also])]
      .sort((a, b) => a - b)
      .map((v) => this.bridgeName(v))
    const key = bridges.join(' ')
    if (this.isolated === key) return
    const table = `${this.prefix}_isolation`
    const script = [
      `table inet ${table} {}`,
      `delete table inet ${table}`,
      `table inet ${table} {`,
      '  chain forward {',
      '    type filter hook forward priority -10; policy accept;',
      ...bridges.map((b) => `    iifname "${b}" oifname != "${b}" oifname "${this.prefix}b*" drop`),
      '  }',
      '}',
      '',
    ].join('\n')
    const args = this.ns === undefined ? ['-f', '-'] : ['netns', 'exec', this.ns, 'nft', '-f', '-']
    await this.run(this.ns === undefined ? 'nft' : 'ip', args, { ...options, input: script }).catch((err) => {
      throw this.failure(['nft', '-f', '-', `(table ${table})`], err)
    })
    this.isolated = key
  }

  private async sysctl(key: string, value: string, options?: CallOptions): Promise<void> {
    const path = `/proc/sys/${key}`
    if (this.ns === undefined) {
      await writeFile(path, value).catch((err) => {
        throw this.failure(['sysctl', key], err)
      })
      return
    }
    await this.run('ip', ['netns', 'exec', this.ns, 'sh', '-c', `echo ${value} > ${path}`], options).catch(
      (err) => {
        throw this.failure(['netns', 'exec', this.ns!, 'sysctl', key], err)
      },
    )
  }

  private async syncPeers(net: CheckedNetwork, all: ReturnType<typeof checkPeers>, options?: CallOptions) {
    const vx = this.vxlanName(net.vni)
    const peers = all.filter((p) => p.vtep !== this.vtep)
    for (const p of peers)
      if (p.family !== net.family)
        throw new RangeError(`peer ${p.address} is not an IPv${net.family} address`)
    const fdb = await this.fdb(vx, options)
    const neigh = await this.neighbours(vx, options)
    const wantNeigh = new Map(peers.map((p) => [p.address, p.mac]))
    const wantFdb = new Map(peers.map((p) => [p.mac, p.vtep]))
    // One `ip -batch` and one `bridge -batch` whatever the number of peers (a spawn each would take
    // seconds for a thousand). Deletions first, then additions.
    const ipCmds: string[][] = []
    const bridgeCmds: string[][] = []
    for (const n of neigh)
      if (wantNeigh.get(n.address) !== n.mac) ipCmds.push(['neigh', 'del', n.address, 'dev', vx])
    for (const [mac, dst] of fdb)
      if (wantFdb.get(mac) !== dst) bridgeCmds.push(['fdb', 'del', mac, 'dev', vx, 'dst', dst, 'self'])
    const haveNeigh = new Map(neigh.map((n) => [n.address, n.mac]))
    for (const p of peers) {
      if (fdb.get(p.mac) !== p.vtep)
        bridgeCmds.push(['fdb', 'replace', p.mac, 'dev', vx, 'dst', p.vtep, 'self', 'permanent'])
      if (haveNeigh.get(p.address) !== p.mac)
        ipCmds.push(['neigh', 'replace', p.address, 'lladdr', p.mac, 'dev', vx, 'nud', 'permanent'])
    }
    await this.batch('bridge', bridgeCmds, options)
    await this.batch('ip', ipCmds, options)
  }

  // Runs commands through `<tool> -batch -` (stops at the first failure, which is reported).
  private async batch(tool: 'ip' | 'bridge', cmds: string[][], options?: CallOptions): Promise<void> {
    if (cmds.length === 0) return
    abortable(options)
    const args = [...(this.ns === undefined ? [] : ['-n', this.ns]), '-batch', '-']
    const input = `${cmds.map((c) => c.join(' ')).join('\n')}\n`
    await this.run(tool, args, { ...options, input }).catch((err) => {
      throw this.failure([tool, ...args, `(${cmds.length} commands)`], err)
    })
  }

  private async ensureSandbox(s: ReturnType<typeof checkSandbox>, options?: CallOptions): Promise<Sandbox> {
    const nets = s.endpoints.map((e) => {
      const net = this.known(e.network)
      if (e.family !== net.family)
        throw new RangeError(`${e.address} is not an IPv${net.family} address of ${net.id}`)
      const c = parseCidr(net.subnet, 'subnet')
      const a = parseIp(e.address, 'address').value
      if (a <= c.base || a >= c.base + (1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix)))
        throw new OverlayError('OUT_OF_RANGE', `${e.address} is not in ${net.subnet} of network ${net.id}`)
      return net
    })
    const ns = this.nsName(s.id)
    const sandbox: Sandbox = {
      id: s.id,
      namespace: ns,
      interfaces: s.endpoints.map((e, i) => ({
        name: `eth${i}`,
        network: e.network,
        address: e.address,
        mac: e.mac,
      })),
    }
    const links = await this.links(options)
    const namespaces = await this.namespaces(options)
    if (namespaces.includes(s.id)) {
      if (await this.sandboxMatches(s, nets, links, options)) return sandbox
      await this.dropSandbox(s.id, links, [s.id], options)
    } else {
      // A stray veth of an earlier attempt would block the names.
      for (let i = 0; i < s.endpoints.length; i++)
        if (links.has(this.vethName(s.id, i)))
          await this.ip(['link', 'del', 'dev', this.vethName(s.id, i)], options)
    }
    const make = s.pid === undefined ? ['netns', 'add', ns] : ['netns', 'attach', ns, String(s.pid)]
    await this.run('ip', make, options).catch((err) => {
      throw this.failure(make, err)
    })
    try {
      await this.inNs(ns, ['link', 'set', 'dev', 'lo', 'up'], options)
      const routed = new Set<number>()
      for (const [i, e] of s.endpoints.entries()) {
        const net = nets[i]!
        const host = this.vethName(s.id, i)
        const inside = `eth${i}`
        await this.ip(
          [
            'link',
            'add',
            'name',
            host,
            'mtu',
            String(net.mtu),
            'type',
            'veth',
            'peer',
            'name',
            inside,
            'netns',
            ns,
          ],
          options,
        )
        await this.ip(['link', 'set', 'dev', host, 'master', this.bridgeName(net.vni), 'up'], options)
        // An address freed on another node and given to an endpoint here left the bridge's learnt entry
        // for its MAC (the MAC follows the address) on the VXLAN port: until it ages out (5 min), frames
        // for the new local endpoint would go into the tunnel. Forget it (usually there is none).
        await this.bridge(['fdb', 'del', e.mac, 'dev', this.vxlanName(net.vni), 'master'], options).catch(
          () => {},
        )
        await this.inNs(ns, ['link', 'set', 'dev', inside, 'address', e.mac, 'mtu', String(net.mtu)], options)
        await this.inNs(
          ns,
          [
            'addr',
            'add',
            `${e.address}/${net.prefix}`,
            'dev',
            inside,
            ...(net.family === 6 ? ['nodad'] : []),
          ],
          options,
        )
        await this.inNs(ns, ['link', 'set', 'dev', inside, 'up'], options)
        if (!routed.has(net.family)) {
          routed.add(net.family)
          await this.inNs(
            ns,
            [`-${net.family}`, 'route', 'add', 'default', 'via', net.gateway, 'dev', inside],
            options,
          )
        }
      }
    } catch (err) {
      // Leave nothing half-made behind.
      await this.dropSandbox(s.id, await this.links(options), [s.id], options).catch(() => {})
      throw err
    }
    return sandbox
  }

  private async sandboxMatches(
    s: ReturnType<typeof checkSandbox>,
    nets: CheckedNetwork[],
    links: Map<string, LinkInfo>,
    options?: CallOptions,
  ): Promise<boolean> {
    const out = await this.run('ip', ['-n', this.nsName(s.id), '-j', 'addr', 'show'], options).catch(
      () => '[]',
    )
    const inside =
      parseJson<
        Array<{
          ifname: string
          address?: string
          addr_info?: Array<{ local: string; prefixlen: number; family: string }>
        }>
      >(out)
    const names = new Set(inside.map((l) => l.ifname))
    if (names.size !== s.endpoints.length + 1) return false
    return s.endpoints.every((e, i) => {
      const net = nets[i]!
      const l = inside.find((x) => x.ifname === `eth${i}`)
      const host = links.get(this.vethName(s.id, i))
      return (
        l !== undefined &&
        l.address === e.mac &&
        host?.master === this.bridgeName(net.vni) &&
        (l.addr_info ?? []).some((a) => a.local === e.address.toLowerCase() && a.prefixlen === net.prefix)
      )
    })
  }

  private async dropSandbox(
    id: string,
    links: Map<string, LinkInfo>,
    namespaces: string[],
    options?: CallOptions,
  ) {
    const stem = `${this.prefix}v${shortHash(id)}`
    for (const name of links.keys())
      if (name.startsWith(stem)) await this.ip(['link', 'del', 'dev', name], options).catch(ignoreMissing)
    if (namespaces.includes(id))
      await this.run('ip', ['netns', 'del', this.nsName(id)], options).catch((err) =>
        ignoreMissing(this.failure(['netns', 'del'], err)),
      )
  }

  private known(id: string): CheckedNetwork {
    const net = this.networks.get(id)
    if (net === undefined) throw new OverlayError('NOT_FOUND', `network ${id} is not created on this node`)
    return net
  }

  private bridgeName(vni: number): string {
    return `${this.prefix}b${vni.toString(36)}`
  }

  private vxlanName(vni: number): string {
    return `${this.prefix}x${vni.toString(36)}`
  }

  private vethName(id: string, i: number): string {
    return `${this.prefix}v${shortHash(id)}${i.toString(36)}`
  }

  private nsName(id: string): string {
    return `${this.prefix}-${id}`
  }

  private owns(name: string): boolean {
    return (
      name.length > this.prefix.length &&
      name.startsWith(this.prefix) &&
      'bxv'.includes(name[this.prefix.length]!)
    )
  }

  private async links(options?: CallOptions): Promise<Map<string, LinkInfo>> {
    const list = parseJson<LinkInfo[]>(await this.ip(['-j', '-d', 'link', 'show'], options))
    return new Map(list.map((l) => [l.ifname, l]))
  }

  private async namespaces(options?: CallOptions): Promise<string[]> {
    const out = await this.run('ip', ['-j', 'netns', 'list'], options).catch((err) => {
      throw this.failure(['netns', 'list'], err)
    })
    const list = out.trim() === '' ? [] : parseJson<Array<{ name: string }>>(out)
    const p = `${this.prefix}-`
    return list.filter((n) => n.name.startsWith(p)).map((n) => n.name.slice(p.length))
  }

  private async addresses(dev: string, family: 4 | 6, options?: CallOptions): Promise<string[]> {
    const out = parseJson<Array<{ addr_info?: Array<{ local: string; prefixlen: number; scope?: string }> }>>(
      await this.ip([`-${family}`, '-j', 'addr', 'show', 'dev', dev], options),
    )
    return (out[0]?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`)
  }

  private async fdb(dev: string, options?: CallOptions): Promise<Map<string, string>> {
    const list = parseJson<Array<{ mac: string; dst?: string; state?: string }>>(
      await this.bridge(['-j', 'fdb', 'show', 'dev', dev], options),
    )
    return new Map(
      list.filter((e) => e.dst !== undefined && e.mac !== '00:00:00:00:00:00').map((e) => [e.mac, e.dst!]),
    )
  }

  private async neighbours(
    dev: string,
    options?: CallOptions,
  ): Promise<Array<{ address: string; mac: string }>> {
    const list = parseJson<Array<{ dst: string; lladdr?: string; state?: string[] }>>(
      await this.ip(['-j', 'neigh', 'show', 'dev', dev, 'nud', 'permanent'], options),
    )
    return list.filter((n) => n.lladdr !== undefined).map((n) => ({ address: n.dst, mac: n.lladdr! }))
  }

  private ip(args: string[], options?: CallOptions): Promise<string> {
    abortable(options)
    const full = this.ns === undefined ? args : ['-n', this.ns, ...args]
    return this.run('ip', full, options).catch((err) => {
      throw this.failure(full, err)
    })
  }

  private bridge(args: string[], options?: CallOptions): Promise<string> {
    abortable(options)
    const full = this.ns === undefined ? args : ['-n', this.ns, ...args]
    return this.run('bridge', full, options).catch((err) => {
      throw this.failure(full, err)
    })
  }

  private inNs(ns: string, args: string[], options?: CallOptions): Promise<string> {
    abortable(options)
    return this.run('ip', ['-n', ns, ...args], options).catch((err) => {
      throw this.failure(['-n', ns, ...args], err)
    })
  }

  private failure(args: string[], err: unknown): OverlayError {
    if (isOverlay(err)) return err
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    const detail = String(e.stderr ?? '').trim() || e.message
    const cmd = args.join(' ')
    if (e.code === 'ENOENT')
      return new OverlayError('UNSUPPORTED', 'the Linux overlay driver needs iproute2 (`ip` not found)', {
        cause: err,
      })
    if (/Operation not permitted|Permission denied/i.test(detail))
      return new OverlayError(
        'PERMISSION_DENIED',
        `\`${cmd}\` was refused: the Linux overlay driver needs root (${detail})`,
        { cause: err },
      )
    return new OverlayError('COMMAND_FAILED', `\`${cmd}\` failed: ${detail.slice(0, 500)}`, { cause: err })
  }

  // Runs operations one at a time (the kernel state is shared), after the one-time privilege check.
  private serial<T>(options: CallOptions | undefined, fn: () => Promise<T>): Promise<T> {
    abortable(options)
    this.ready ??= checkLinuxDriver({ exec: this.run })
    const ready = this.ready
    const next = this.queue.then(
      () => ready.then(fn),
      () => ready.then(fn),
    )
    this.queue = next.catch(() => {})
    return next
  }
}

function isOverlay(err: unknown): err is OverlayError {
  return err instanceof OverlayError
}

function ignoreMissing(err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err)
  if (/Cannot find device|No such file|does not exist|Cannot open network namespace/i.test(msg)) return
  throw err
}

function parseJson<T>(text: string): T {
  if (text.length > MAX_OUTPUT) throw new OverlayError('COMMAND_FAILED', 'iproute2 output too large')
  try {
    return (text.trim() === '' ? [] : JSON.parse(text)) as T
  } catch (err) {
    throw new OverlayError('COMMAND_FAILED', 'iproute2 printed something that is not JSON', { cause: err })
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The Linux data plane: per network a bridge and a VXLAN device (learning off, ARP/ND answered from static
 * neighbour entries), static forwarding entries for remote endpoints, and per task a network namespace
 * joined by veth pairs — all through iproute2, all named with the driver's prefix. Needs root: the first
 * call rejects with `OverlayError` `PERMISSION_DENIED` (or `UNSUPPORTED`) if it cannot run, never falls back.
 */
export function linuxDriver(options: LinuxDriverOptions): NetworkDriver {
  return new LinuxDriver(options)
}
