import { type Family, macFor, parseCidr, parseIp } from './internal/ip.js'

/** An overlay network as a node's data plane sees it (fed from the network object). */
export interface OverlayNetwork {
  /** The network's ID (at most 128 characters). */
  id: string
  /** Its VXLAN network identifier. */
  vni: number
  /** Its subnet (CIDR), IPv4 or IPv6. */
  subnet: string
  /** Its gateway address; every node's bridge holds it, as swarm's overlay does. */
  gateway: string
  /**
   * This node's own address on the network (allocated by IPAM, like swarm's per-node load-balancer
   * address). With it the node itself — e.g. the routing mesh — reaches tasks on other nodes.
   */
  nodeAddress?: string
  /** MTU of the overlay interfaces. Default 1450 (1500 minus the VXLAN headers). */
  mtu?: number
}

/** A remote endpoint of a network: a task or node address living on another node. */
export interface Peer {
  /** Its overlay address. */
  address: string
  /** The underlay (VTEP) address of the node it lives on. */
  vtep: string
  /** Its MAC; default derived from the address, as every swarmkit driver does. */
  mac?: string
}

/** Incremental changes to a network's remote endpoints (see {@link NetworkDriver.updatePeers}). */
export interface PeerUpdate {
  /** Endpoints to add or move (by address). */
  add?: Peer[]
  /** Addresses of endpoints to remove (unknown ones are ignored). */
  remove?: string[]
}

/** One interface of a sandbox. */
export interface SandboxEndpoint {
  network: string
  address: string
  /** Default derived from the address. */
  mac?: string
}

/** A task's sandbox: a network namespace joined to each network's bridge by a veth pair. */
export interface SandboxSpec {
  /** The sandbox ID (usually the task ID): 1-64 characters of [A-Za-z0-9_.-]. */
  id: string
  /** Interfaces in order: the first one's gateway is the default route. */
  endpoints: SandboxEndpoint[]
  /**
   * Join the network namespace of this process (e.g. a container started with no network, as a CNI
   * plugin does) instead of making a new one. The Linux driver names it with `ip netns attach`; removing
   * the sandbox drops the name and the veth pairs, never the process's namespace.
   */
  pid?: number
}

/** A made sandbox: its network namespace and one interface per attached network, with the address and MAC it got. */
export interface Sandbox {
  id: string
  /** The network namespace name (`ip netns exec <namespace> …` runs a process in it). */
  namespace: string
  interfaces: Array<{ name: string; network: string; address: string; mac: string }>
}

/** What a driver holds, as read back (from the kernel for the Linux driver). */
export interface DataPlaneState {
  networks: Array<{ id: string; vni: number }>
  /** Remote endpoints per network, sorted by network then address. */
  peers: Array<{ network: string; address: string; mac: string; vtep: string }>
  /** Sandbox IDs, sorted. */
  sandboxes: string[]
  /** Every device and namespace name the driver owns (its prefix), sorted: empty after `destroy()`. */
  resources: string[]
}

/** The full desired state of a node, for {@link NetworkDriver.reconcile}. */
export interface DesiredDataPlane {
  networks: OverlayNetwork[]
  /** Remote endpoints per network ID. */
  peers?: Record<string, Peer[]>
  sandboxes: SandboxSpec[]
}

/** Options every driver call takes: a signal to give up waiting for iproute2. */
export interface CallOptions {
  signal?: AbortSignal
}

/**
 * A node's overlay data plane. Every method is idempotent: calling it again with the same input changes
 * nothing, and `reconcile` brings any leftover state (after a crash) to exactly what is desired.
 */
export interface NetworkDriver {
  readonly kind: 'linux' | 'memory'
  /** Creates (or brings up to date) the network's bridge and VXLAN device on this node. */
  createNetwork(network: OverlayNetwork, options?: CallOptions): Promise<void>
  /** Removes the network's devices (no-op if absent). */
  removeNetwork(id: string, options?: CallOptions): Promise<void>
  /** Sets the remote endpoints of a network: exactly these get forwarding and neighbour entries. */
  setPeers(network: string, peers: Peer[], options?: CallOptions): Promise<void>
  /**
   * Adds and removes some remote endpoints of a network, leaving every other entry as it is (no flush):
   * what the network DB sends as tasks come and go.
   */
  updatePeers(network: string, update: PeerUpdate, options?: CallOptions): Promise<void>
  /** Creates (or re-creates, if it differs) a sandbox joined to its networks. */
  createSandbox(spec: SandboxSpec, options?: CallOptions): Promise<Sandbox>
  /** Removes a sandbox and its veth pairs (no-op if absent). */
  removeSandbox(id: string, options?: CallOptions): Promise<void>
  /** Makes the node hold exactly `desired`: creates what is missing, removes everything else it owns. */
  reconcile(desired: DesiredDataPlane, options?: CallOptions): Promise<void>
  /** Reads back what the driver holds. */
  inspect(options?: CallOptions): Promise<DataPlaneState>
  /** Removes everything the driver owns (by prefix), including leftovers of an earlier crashed run. */
  destroy(options?: CallOptions): Promise<void>
}

// ---- shared validation (both drivers check input identically) ----

export interface CheckedNetwork {
  id: string
  vni: number
  family: Family
  prefix: number
  subnet: string
  gateway: string
  nodeAddress: string | undefined
  mac: string
  mtu: number
}

export function checkNetwork(n: unknown): CheckedNetwork {
  if (typeof n !== 'object' || n === null) throw new TypeError('network must be an object')
  const net = n as OverlayNetwork
  checkId(net.id, 'network.id', 128)
  if (!Number.isInteger(net.vni) || net.vni < 1 || net.vni > 2 ** 24 - 1)
    throw new RangeError('network.vni must be an integer in 1..16777215')
  const cidr = parseCidr(net.subnet, 'network.subnet')
  const inSubnet = (addr: unknown, name: string): bigint => {
    const a = parseIp(addr, name)
    const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix)
    if (a.family !== cidr.family || a.value <= cidr.base || a.value >= cidr.base + size)
      throw new RangeError(`${name} must be a host address of ${net.subnet}`)
    return a.value
  }
  const gw = inSubnet(net.gateway, 'network.gateway')
  const node = net.nodeAddress === undefined ? undefined : inSubnet(net.nodeAddress, 'network.nodeAddress')
  if (node !== undefined && node === gw)
    throw new RangeError('network.nodeAddress must differ from the gateway')
  const mtu = net.mtu ?? 1450
  if (!Number.isInteger(mtu) || mtu < (cidr.family === 4 ? 576 : 1280) || mtu > 9000)
    throw new RangeError('network.mtu must be an integer in 576..9000 (1280.. for IPv6)')
  return {
    id: net.id,
    vni: net.vni,
    family: cidr.family,
    prefix: cidr.prefix,
    subnet: net.subnet,
    gateway: net.gateway,
    nodeAddress: net.nodeAddress,
    mac: macFor(cidr.family, node ?? gw),
    mtu,
  }
}

export function checkId(id: unknown, name: string, max: number): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > max || !/^[A-Za-z0-9_.-]+$/.test(id))
    throw new TypeError(`${name} must be 1-${max} characters of [A-Za-z0-9_.-]`)
  return id
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

export function checkMac(mac: unknown, name: string): string {
  if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase()))
    throw new TypeError(`${name} must be a MAC address`)
  const m = mac.toLowerCase()
  if ((Number.parseInt(m.slice(0, 2), 16) & 1) === 1) throw new RangeError(`${name} must be a unicast MAC`)
  return m
}

export interface CheckedPeer {
  address: string
  family: Family
  mac: string
  vtep: string
}

export function checkPeers(peers: unknown): CheckedPeer[] {
  if (!Array.isArray(peers)) throw new TypeError('peers must be an array')
  if (peers.length > 1_000_000) throw new RangeError('peers has too many entries')
  const seen = new Set<string>()
  return peers.map((p: Peer, i) => {
    if (typeof p !== 'object' || p === null) throw new TypeError(`peers[${i}] must be an object`)
    const a = parseIp(p.address, `peers[${i}].address`)
    parseIp(p.vtep, `peers[${i}].vtep`)
    const address = p.address.toLowerCase()
    if (seen.has(address)) throw new RangeError(`peers[${i}].address ${p.address} is listed twice`)
    seen.add(address)
    return {
      address,
      family: a.family,
      mac: p.mac === undefined ? macFor(a.family, a.value) : checkMac(p.mac, `peers[${i}].mac`),
      vtep: p.vtep,
    }
  })
}

export interface CheckedEndpoint {
  network: string
  address: string
  family: Family
  mac: string
}

export function checkSandbox(s: unknown): { id: string; endpoints: CheckedEndpoint[]; pid?: number } {
  if (typeof s !== 'object' || s === null) throw new TypeError('spec must be an object')
  const spec = s as SandboxSpec
  checkId(spec.id, 'spec.id', 64)
  if (spec.pid !== undefined && (!Number.isSafeInteger(spec.pid) || spec.pid < 1))
    throw new TypeError('spec.pid must be a process ID')
  if (!Array.isArray(spec.endpoints) || spec.endpoints.length > 32)
    throw new TypeError('spec.endpoints must be an array of at most 32 endpoints')
  const seen = new Set<string>()
  const endpoints = spec.endpoints.map((e, i) => {
    if (typeof e !== 'object' || e === null) throw new TypeError(`spec.endpoints[${i}] must be an object`)
    checkId(e.network, `spec.endpoints[${i}].network`, 128)
    if (seen.has(e.network)) throw new RangeError(`spec.endpoints[${i}].network ${e.network} is joined twice`)
    seen.add(e.network)
    const a = parseIp(e.address, `spec.endpoints[${i}].address`)
    return {
      network: e.network,
      address: e.address,
      family: a.family,
      mac: e.mac === undefined ? macFor(a.family, a.value) : checkMac(e.mac, `spec.endpoints[${i}].mac`),
    }
  })
  return { id: spec.id, endpoints, ...(spec.pid !== undefined ? { pid: spec.pid } : {}) }
}

export function checkDesired(d: unknown): DesiredDataPlane {
  if (typeof d !== 'object' || d === null) throw new TypeError('desired must be an object')
  const desired = d as DesiredDataPlane
  if (!Array.isArray(desired.networks)) throw new TypeError('desired.networks must be an array')
  if (!Array.isArray(desired.sandboxes)) throw new TypeError('desired.sandboxes must be an array')
  if (desired.peers !== undefined && (typeof desired.peers !== 'object' || desired.peers === null))
    throw new TypeError('desired.peers must be an object')
  return desired
}

export function abortable(options: CallOptions | undefined): void {
  options?.signal?.throwIfAborted()
}
