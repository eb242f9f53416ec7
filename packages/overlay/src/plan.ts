import type { DesiredDataPlane, OverlayNetwork, Peer, SandboxSpec } from './driver.js'

/** The cluster as the data plane needs to see it: read from the store's node, network and task objects. */
export interface ClusterView {
  /** Every node with its underlay (VTEP) address. */
  nodes: Array<{ id: string; vtep: string }>
  /** Every overlay network, with each node's own address on it (if it has one). */
  networks: Array<{
    id: string
    vni: number
    subnet: string
    gateway: string
    mtu?: number
    /** Node ID -> that node's address on the network (e.g. for the routing mesh on ingress). */
    nodeAddresses?: Record<string, string>
  }>
  /** Every running task with an address on some network. */
  tasks: Array<{ id: string; node: string; endpoints: Array<{ network: string; address: string }> }>
}

/**
 * What one node's driver should hold, for `driver.reconcile(...)`: the networks that have a task on the node
 * or an address of the node, their remote endpoints (tasks and node addresses elsewhere, with the VTEP of
 * the node they live on), and a sandbox per local task. Pure and deterministic (sorted output).
 */
export function nodeDataPlane(view: ClusterView, node: string): DesiredDataPlane {
  if (typeof view !== 'object' || view === null) throw new TypeError('view must be an object')
  if (!Array.isArray(view.nodes) || !Array.isArray(view.networks) || !Array.isArray(view.tasks))
    throw new TypeError('view.nodes, view.networks and view.tasks must be arrays')
  if (typeof node !== 'string' || node.length === 0) throw new TypeError('node must be a non-empty string')
  const vtep = new Map(view.nodes.map((n) => [n.id, n.vtep]))
  const local = view.tasks.filter((t) => t.node === node).sort((a, b) => cmp(a.id, b.id))
  const wanted = new Set<string>()
  for (const t of local) for (const e of t.endpoints) wanted.add(e.network)
  for (const n of view.networks) if (n.nodeAddresses?.[node] !== undefined) wanted.add(n.id)
  const networks: OverlayNetwork[] = []
  const peers: Record<string, Peer[]> = {}
  for (const n of [...view.networks].sort((a, b) => cmp(a.id, b.id))) {
    if (!wanted.has(n.id)) continue
    const net: OverlayNetwork = { id: n.id, vni: n.vni, subnet: n.subnet, gateway: n.gateway }
    if (n.mtu !== undefined) net.mtu = n.mtu
    const own = n.nodeAddresses?.[node]
    if (own !== undefined) net.nodeAddress = own
    networks.push(net)
    const remote: Peer[] = []
    for (const t of view.tasks) {
      if (t.node === node) continue
      const where = vtep.get(t.node)
      if (where === undefined) continue // a task on an unknown node cannot be reached yet
      for (const e of t.endpoints) if (e.network === n.id) remote.push({ address: e.address, vtep: where })
    }
    for (const [other, address] of Object.entries(n.nodeAddresses ?? {})) {
      const where = vtep.get(other)
      if (other !== node && where !== undefined) remote.push({ address, vtep: where })
    }
    peers[n.id] = remote.sort((a, b) => cmp(a.address, b.address))
  }
  const sandboxes: SandboxSpec[] = local
    .filter((t) => t.endpoints.length > 0)
    .map((t) => ({
      id: t.id,
      endpoints: t.endpoints.map((e) => ({ network: e.network, address: e.address })),
    }))
  return { networks, peers, sandboxes }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
