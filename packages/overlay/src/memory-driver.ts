import {
  abortable,
  type CallOptions,
  type CheckedEndpoint,
  type CheckedNetwork,
  type CheckedPeer,
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
import { formatIp, parseCidr, parseIp } from './internal/ip.js'

/** How a {@link memoryDriver} is built: the underlay address it plays. */
export interface MemoryDriverOptions {
  /** This node's underlay address; peers on it are local and skipped, as the Linux driver does. */
  vtep: string
}

/** The in-memory driver, with a reachability check the Linux driver answers with real packets. */
export interface MemoryNetworkDriver extends NetworkDriver {
  /**
   * Whether a sandbox on this node could reach `address`: the address is on a network the sandbox joined,
   * and it is a local sandbox, this node's own address, or a peer with forwarding entries.
   */
  reaches(sandbox: string, address: string): boolean
}

class MemoryDriver implements MemoryNetworkDriver {
  readonly kind = 'memory' as const
  private readonly vtep: string
  private readonly networks = new Map<string, CheckedNetwork>()
  private readonly peers = new Map<string, CheckedPeer[]>()
  private readonly sandboxes = new Map<string, { id: string; endpoints: CheckedEndpoint[] }>()

  constructor(options: MemoryDriverOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    parseIp(options.vtep, 'options.vtep')
    this.vtep = options.vtep
  }

  async createNetwork(network: OverlayNetwork, options?: CallOptions): Promise<void> {
    const net = checkNetwork(network)
    abortable(options)
    for (const other of this.networks.values())
      if (other.vni === net.vni && other.id !== net.id)
        throw new OverlayError(
          'IN_USE',
          `VNI ${net.vni} is already used by network ${other.id} on this node`,
          {
            holder: other.id,
          },
        )
    this.networks.set(net.id, net)
    if (!this.peers.has(net.id)) this.peers.set(net.id, [])
  }

  async removeNetwork(id: string, options?: CallOptions): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string')
    abortable(options)
    this.networks.delete(id)
    this.peers.delete(id)
  }

  async setPeers(network: string, peers: Peer[], options?: CallOptions): Promise<void> {
    const checked = checkPeers(peers)
    abortable(options)
    const net = this.known(network)
    const remote = checked.filter((p) => p.vtep !== this.vtep)
    for (const p of remote)
      if (p.family !== net.family)
        throw new RangeError(`peer ${p.address} is not an IPv${net.family} address`)
    this.peers.set(network, remote)
  }

  async updatePeers(network: string, update: PeerUpdate, options?: CallOptions): Promise<void> {
    if (typeof update !== 'object' || update === null) throw new TypeError('update must be an object')
    const add = checkPeers(update.add ?? [])
    const remove = new Set(
      (update.remove ?? []).map((a, i) => {
        const p = parseIp(a, `update.remove[${i}]`)
        return formatIp(p.family, p.value)
      }),
    )
    abortable(options)
    const net = this.known(network)
    for (const p of add)
      if (p.family !== net.family)
        throw new RangeError(`peer ${p.address} is not an IPv${net.family} address`)
    const moved = new Set(add.map((p) => p.address))
    const kept = (this.peers.get(network) ?? []).filter(
      (p) => !remove.has(p.address) && !moved.has(p.address),
    )
    this.peers.set(network, [...kept, ...add.filter((p) => p.vtep !== this.vtep)])
  }

  async createSandbox(spec: SandboxSpec, options?: CallOptions): Promise<Sandbox> {
    const s = checkSandbox(spec)
    abortable(options)
    for (const e of s.endpoints) {
      const net = this.known(e.network)
      if (e.family !== net.family)
        throw new RangeError(`${e.address} is not an IPv${net.family} address of ${net.id}`)
      const c = parseCidr(net.subnet, 'subnet')
      const a = parseIp(e.address, 'address').value
      if (a <= c.base || a >= c.base + (1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix)))
        throw new OverlayError('OUT_OF_RANGE', `${e.address} is not in ${net.subnet} of network ${net.id}`)
    }
    this.sandboxes.set(s.id, s)
    return {
      id: s.id,
      namespace: `memory-${s.id}`,
      interfaces: s.endpoints.map((e, i) => ({
        name: `eth${i}`,
        network: e.network,
        address: e.address,
        mac: e.mac,
      })),
    }
  }

  async removeSandbox(id: string, options?: CallOptions): Promise<void> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string')
    abortable(options)
    this.sandboxes.delete(id)
  }

  async reconcile(desired: DesiredDataPlane, options?: CallOptions): Promise<void> {
    const d = checkDesired(desired)
    const nets = d.networks.map(checkNetwork)
    d.sandboxes.forEach(checkSandbox)
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
    const peers = nets.map((n) => checkPeers(d.peers?.[n.id] ?? []))
    abortable(options)
    // Build the new state aside and swap it in only if all of it is valid (all or nothing).
    const next = new MemoryDriver({ vtep: this.vtep })
    for (const [i, n] of nets.entries()) {
      await next.createNetwork(d.networks[i]!)
      next.peers.set(
        n.id,
        peers[i]!.filter((p) => p.vtep !== this.vtep),
      )
    }
    for (const s of d.sandboxes) await next.createSandbox(s)
    for (const key of ['networks', 'peers', 'sandboxes'] as const) {
      const mine = this[key] as Map<string, unknown>
      mine.clear()
      for (const [k, v] of next[key] as Map<string, unknown>) mine.set(k, v)
    }
  }

  async inspect(options?: CallOptions): Promise<DataPlaneState> {
    abortable(options)
    const networks = [...this.networks.values()]
      .map((n) => ({ id: n.id, vni: n.vni }))
      .sort((a, b) => a.vni - b.vni)
    const peers = [...this.peers]
      .flatMap(([network, ps]) => ps.map((p) => ({ network, address: p.address, mac: p.mac, vtep: p.vtep })))
      .sort((a, b) => (a.network === b.network ? cmp(a.address, b.address) : cmp(a.network, b.network)))
    const sandboxes = [...this.sandboxes.keys()].sort()
    const resources = [
      ...networks.flatMap((n) => [`bridge-${n.vni}`, `vxlan-${n.vni}`]),
      ...[...this.sandboxes.values()].flatMap((s) => [
        `netns-${s.id}`,
        ...s.endpoints.map((_, i) => `veth-${s.id}-${i}`),
      ]),
    ].sort()
    return { networks, peers, sandboxes, resources }
  }

  async destroy(options?: CallOptions): Promise<void> {
    await this.reconcile({ networks: [], sandboxes: [] }, options)
  }

  reaches(sandbox: string, address: string): boolean {
    const s = this.sandboxes.get(sandbox)
    if (s === undefined) throw new OverlayError('NOT_FOUND', `sandbox ${sandbox} does not exist`)
    const target = parseIp(address, 'address')
    const text = address.toLowerCase()
    for (const e of s.endpoints) {
      const net = this.networks.get(e.network)
      if (net === undefined || net.family !== target.family) continue
      const c = parseCidr(net.subnet, 'subnet')
      const size = 1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix)
      if (target.value <= c.base || target.value >= c.base + size) continue
      if (net.nodeAddress?.toLowerCase() === text || net.gateway.toLowerCase() === text) return true
      if ((this.peers.get(net.id) ?? []).some((p) => p.address === text)) return true
      for (const other of this.sandboxes.values())
        if (other.endpoints.some((o) => o.network === net.id && o.address.toLowerCase() === text)) return true
    }
    return false
  }

  private known(id: string): CheckedNetwork {
    const net = this.networks.get(id)
    if (net === undefined) throw new OverlayError('NOT_FOUND', `network ${id} is not created on this node`)
    return net
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** An in-memory driver with the Linux driver's interface and checks, for tests that cannot use the kernel. */
export function memoryDriver(options: MemoryDriverOptions): MemoryNetworkDriver {
  return new MemoryDriver(options)
}
