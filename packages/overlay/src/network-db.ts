import type { Peer, PeerUpdate } from './driver.js'
import { formatIp, parseIp } from './internal/ip.js'

/** An endpoint on an overlay network: a task's (or a node's load-balancer) address, where it lives. */
export interface NetworkEndpoint {
  /** Owner ID (task ID, or e.g. `node:<id>` for a node's own address). */
  id: string
  network: string
  address: string
  /** The node it lives on. */
  node: string
  mac?: string
}

/** Forwarding changes for one network this node is attached to: apply with `driver.updatePeers`. */
export interface PeerDelta extends Required<PeerUpdate> {
  network: string
}

/**
 * Swarm's network DB role on one node: it learns, from what the managers send, which endpoint lives on
 * which node and where each node is (its VTEP), and says exactly which forwarding entries to add or
 * remove on this node's attached networks as tasks come and go and nodes leave and join. Pure and
 * deterministic; it never touches the kernel (feed its deltas to `driver.updatePeers`).
 */
export interface NetworkDb {
  /** A node joined (or its underlay address changed): entries of its endpoints appear (or move). */
  nodeUp(node: string, vtep: string): PeerDelta[]
  /** A node left: entries of its endpoints go (the endpoints are forgotten; they come back with the node). */
  nodeDown(node: string): PeerDelta[]
  /** An endpoint appeared (or moved). */
  endpointUp(endpoint: NetworkEndpoint): PeerDelta[]
  /** An endpoint went away (every network of that owner, or only `network`). */
  endpointDown(id: string, network?: string): PeerDelta[]
  /** This node now has the network (a sandbox on it): returns every current remote peer, for `setPeers`. */
  attach(network: string): Peer[]
  /** This node no longer has the network: no more deltas for it. */
  detach(network: string): void
  /** The remote peers of an attached network now, sorted by address. */
  peers(network: string): Peer[]
}

type Ep = Required<Omit<NetworkEndpoint, 'mac'>> & { mac: string | undefined }

class Db implements NetworkDb {
  private readonly vteps = new Map<string, string>()
  /** `${id}\0${network}` -> endpoint */
  private readonly endpoints = new Map<string, Ep>()
  private readonly attached = new Set<string>()

  constructor(private readonly self: string) {}

  nodeUp(node: string, vtep: string): PeerDelta[] {
    checkString(node, 'node')
    parseIp(vtep, 'vtep')
    const before = this.vteps.get(node)
    if (before === vtep) return []
    this.vteps.set(node, vtep)
    const out = new Deltas()
    for (const e of this.endpoints.values())
      if (e.node === node && node !== this.self) out.add(e.network, this.peer(e, vtep))
    return out.list(this.attached)
  }

  nodeDown(node: string): PeerDelta[] {
    checkString(node, 'node')
    const out = new Deltas()
    const known = this.vteps.has(node)
    this.vteps.delete(node)
    for (const [k, e] of this.endpoints)
      if (e.node === node) {
        this.endpoints.delete(k)
        if (known && node !== this.self) out.remove(e.network, e.address)
      }
    return out.list(this.attached)
  }

  endpointUp(endpoint: NetworkEndpoint): PeerDelta[] {
    if (typeof endpoint !== 'object' || endpoint === null) throw new TypeError('endpoint must be an object')
    checkString(endpoint.id, 'endpoint.id')
    checkString(endpoint.network, 'endpoint.network')
    checkString(endpoint.node, 'endpoint.node')
    const a = parseIp(endpoint.address, 'endpoint.address')
    const e: Ep = { ...endpoint, address: formatIp(a.family, a.value), mac: endpoint.mac }
    const key = `${e.id}\0${e.network}`
    const before = this.endpoints.get(key)
    const out = new Deltas()
    if (before !== undefined) {
      if (before.address === e.address && before.node === e.node && before.mac === e.mac) return []
      if (before.address !== e.address && this.visible(before)) out.remove(before.network, before.address)
    }
    this.endpoints.set(key, e)
    if (this.visible(e)) out.add(e.network, this.peer(e, this.vteps.get(e.node)!))
    else if (before !== undefined && before.address === e.address && this.visible(before))
      out.remove(e.network, e.address)
    return out.list(this.attached)
  }

  endpointDown(id: string, network?: string): PeerDelta[] {
    checkString(id, 'id')
    const out = new Deltas()
    for (const [k, e] of this.endpoints)
      if (e.id === id && (network === undefined || e.network === network)) {
        this.endpoints.delete(k)
        if (this.visible(e)) out.remove(e.network, e.address)
      }
    return out.list(this.attached)
  }

  attach(network: string): Peer[] {
    checkString(network, 'network')
    this.attached.add(network)
    return this.peers(network)
  }

  detach(network: string): void {
    this.attached.delete(network)
  }

  peers(network: string): Peer[] {
    const out: Peer[] = []
    for (const e of this.endpoints.values())
      if (e.network === network && this.visible(e)) out.push(this.peer(e, this.vteps.get(e.node)!))
    return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))
  }

  // A remote endpoint on a node whose underlay address is known.
  private visible(e: Ep): boolean {
    return e.node !== this.self && this.vteps.has(e.node)
  }

  private peer(e: Ep, vtep: string): Peer {
    return e.mac === undefined ? { address: e.address, vtep } : { address: e.address, vtep, mac: e.mac }
  }
}

class Deltas {
  private readonly by = new Map<string, PeerDelta>()
  add(network: string, p: Peer): void {
    const d = this.of(network)
    d.remove = d.remove.filter((a) => a !== p.address)
    d.add.push(p)
  }
  remove(network: string, address: string): void {
    const d = this.of(network)
    d.add = d.add.filter((p) => p.address !== address)
    d.remove.push(address)
  }
  list(attached: Set<string>): PeerDelta[] {
    return [...this.by.values()]
      .filter((d) => attached.has(d.network) && (d.add.length > 0 || d.remove.length > 0))
      .sort((a, b) => (a.network < b.network ? -1 : 1))
  }
  private of(network: string): PeerDelta {
    let d = this.by.get(network)
    if (d === undefined) {
      d = { network, add: [], remove: [] }
      this.by.set(network, d)
    }
    return d
  }
}

function checkString(v: unknown, name: string): void {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`${name} must be a non-empty string`)
}

/** The network DB of node `self` (its own endpoints never become forwarding entries: they are local). */
export function networkDb(self: string): NetworkDb {
  checkString(self, 'self')
  return new Db(self)
}
