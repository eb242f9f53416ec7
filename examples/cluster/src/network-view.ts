// The network view a worker needs (swarm's network DB, fed by the managers): for every overlay network one
// of the node's tasks uses, the network (VNI, subnet, gateway), the tasks on it anywhere in the swarm with
// their addresses and nodes, those nodes' underlay (VTEP) addresses, and the services with a VIP on it.
// Computed from the store; sent through the dispatcher's assignment stream as changes against what the
// node was sent before (the first message of a stream carries everything), over the node's mutual TLS
// session, so only nodes of the swarm ever see it and only for networks their tasks are on.

import type { DirectoryService, OverlayNetwork, SwarmView } from '@swarmkit/overlay'
import type { ReadTx, Task } from '@swarmkit/store'
import { taskStateRank } from '@swarmkit/store'
import { isAttachmentTask } from './attachments.js'
import { ingressNetwork } from './ingress-attachments.js'
import { ingressSandboxes } from './ingress-view.js'
import { isEncrypted, keyRingOf, type WireKey, wireKeys } from './network-keys.js'
import { holdsAddresses } from './task-addresses.js'

export type ViewNode = SwarmView['nodes'][number]
export type ViewTask = SwarmView['tasks'][number]

/** What a node needs for its encrypted networks: which of its networks are, and the swarm's keys. */
export interface ViewSecurity {
  readonly encrypted: string[]
  readonly keys: WireKey[]
}

/** A node's view: the swarm view, and the keys when (and only when) one of its networks is encrypted. */
export interface NodeView extends SwarmView {
  security?: ViewSecurity
}

/** Changes to a node's network view; rides in the assignment stream's messages (`view`). */
export interface NetworkViewUpdate {
  readonly kind: 'network-view'
  /** The view is exactly `upsert` (the first message of a stream); otherwise apply the changes. */
  readonly full: boolean
  /** Kept for the lists the stream carried before its messages (assignments-message.ts); always false. */
  readonly viewOnly: boolean
  readonly upsert: {
    readonly nodes: ViewNode[]
    readonly networks: OverlayNetwork[]
    readonly services: DirectoryService[]
    readonly tasks: ViewTask[]
  }
  readonly remove: {
    readonly nodes: string[]
    readonly networks: string[]
    readonly services: string[]
    readonly tasks: string[]
  }
  /** The node's encrypted networks and keys when they changed; null when it has none any more. */
  readonly security?: ViewSecurity | null
}

const KINDS = ['nodes', 'networks', 'services', 'tasks'] as const
const RANK_RUNNING = taskStateRank('running')
const EMPTY: SwarmView = { nodes: [], networks: [], services: [], tasks: [] }

/** Whether an item of an assignment list is a network view update. */
export function isNetworkViewUpdate(x: unknown): x is NetworkViewUpdate {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'network-view'
}

function stripPrefix(addr: string): string {
  return addr.split('/')[0]!
}

/** Everything the views of all nodes are cut from, built once per store version. */
export interface NetworkIndex {
  readonly networks: Map<string, OverlayNetwork>
  /** Network ID -> the live tasks with an address on it. */
  readonly tasksOn: Map<string, Task[]>
  /** Node ID -> the networks its live tasks have addresses on. */
  readonly netsOf: Map<string, Set<string>>
  readonly vteps: Map<string, string>
  readonly services: Map<
    string,
    { id: string; name: string; mode: 'vip' | 'dnsrr'; vips: Map<string, string> }
  >
  readonly aliases: Map<string, Map<string, string[]>>
  /** The encrypted networks, and the keys (read only when one exists). */
  readonly encrypted: Set<string>
  readonly keys: WireKey[]
  /** Network ID -> the nodes' ingress sandboxes on it (ingress-view.ts). */
  readonly sandboxes: Map<string, ViewTask[]>
}

export function networkIndex(tx: ReadTx): NetworkIndex {
  const networks = new Map<string, OverlayNetwork>()
  const encrypted = new Set<string>()
  for (const n of tx.find('networks')) {
    const c = n.ipam?.configs[0]
    if (n.vni === undefined || !c?.subnet || !c.gateway) continue
    networks.set(n.id, { id: n.id, vni: n.vni, subnet: c.subnet, gateway: c.gateway })
    if (isEncrypted(n)) encrypted.add(n.id)
  }
  const keys = encrypted.size > 0 ? wireKeys(keyRingOf(tx.find('clusters')[0])) : []
  const tasksOn = new Map<string, Task[]>()
  const netsOf = new Map<string, Set<string>>()
  // The tasks of each network through the store's per-network index, not a walk over every task: the index
  // is built again at each store version a stream asks at, and a swarm's tasks are mostly on no overlay.
  for (const net of networks.keys())
    for (const t of tx.find(
      'tasks',
      { referencedNetworkId: net }, // Only tasks placed on a node: a pending task has an address but no node to reach it at.
      (x) => x.nodeId !== '' && holdsAddresses(x),
    )) {
      const a = t.networks.find((x) => x.networkId === net)
      if (!a || a.addresses.length === 0) continue
      let list = tasksOn.get(net)
      if (!list) tasksOn.set(net, (list = []))
      list.push(t)
      let nets = netsOf.get(t.nodeId)
      if (!nets) netsOf.set(t.nodeId, (nets = new Set()))
      nets.add(net)
    }
  // Every node holds the ingress network while it is used, with every node's ingress sandbox on it.
  const sandboxes = ingressSandboxes(tx, networks, tasksOn)
  for (const [net, list] of sandboxes)
    for (const s of list) {
      let nets = netsOf.get(s.node)
      if (!nets) netsOf.set(s.node, (nets = new Set()))
      nets.add(net)
    }
  const ingress = ingressNetwork(tx)?.id
  const vteps = new Map<string, string>()
  const services: NetworkIndex['services'] = new Map()
  const aliases: NetworkIndex['aliases'] = new Map()
  if (tasksOn.size > 0) {
    for (const n of tx.find('nodes')) if (n.status.addr) vteps.set(n.id, n.status.addr)
    for (const s of tx.find('services')) {
      const vips = new Map<string, string>()
      for (const v of s.endpoint?.virtualIPs ?? [])
        if (networks.has(v.networkId) && v.networkId !== ingress) vips.set(v.networkId, stripPrefix(v.addr))
      const mode = s.spec.endpointSpec?.mode === 'dnsrr' ? 'dnsrr' : 'vip'
      services.set(s.id, { id: s.id, name: s.spec.name, mode, vips })
      const a = new Map<string, string[]>()
      for (const n of s.spec.taskTemplate.networks ?? []) if (n.aliases?.length) a.set(n.target, n.aliases)
      if (a.size > 0) aliases.set(s.id, a)
    }
  }
  return { networks, tasksOn, netsOf, vteps, services, aliases, encrypted, keys, sandboxes }
}

/** The view of `nodeId`: only the networks its live tasks have addresses on, and what is on them. */
export function nodeView(index: NetworkIndex, nodeId: string): NodeView {
  const local = index.netsOf.get(nodeId)
  if (!local || local.size === 0) return EMPTY
  const networks = [...local].sort().map((id) => index.networks.get(id)!)
  const tasks = new Map<string, ViewTask>()
  const nodes = new Set<string>()
  const serviceIds = new Set<string>()
  for (const net of local)
    for (const t of index.tasksOn.get(net) ?? []) {
      let v = tasks.get(t.id)
      if (!v) {
        const service = index.services.get(t.serviceId)
        v = {
          id: t.id,
          // A container attached to the network answers to its container name (see attachments.ts).
          name: isAttachmentTask(t)
            ? t.serviceAnnotations.name
            : `${t.serviceAnnotations.name}.${t.slot || t.nodeId}.${t.id}`,
          ...(service ? { service: t.serviceId } : {}),
          node: t.nodeId,
          addresses: {},
          healthy: t.status.state === 'running' && taskStateRank(t.desiredState) <= RANK_RUNNING,
        }
        tasks.set(t.id, v)
        if (service) serviceIds.add(t.serviceId)
        nodes.add(t.nodeId)
      }
      const a = t.networks.find((x) => x.networkId === net)!
      v.addresses[net] = stripPrefix(a.addresses[0]!)
      if (a.aliases?.length) v.aliases = { ...v.aliases, [net]: a.aliases }
    }
  for (const net of local)
    for (const s of index.sandboxes.get(net) ?? []) {
      tasks.set(s.id, s)
      nodes.add(s.node)
    }
  const services: DirectoryService[] = []
  for (const id of [...serviceIds].sort()) {
    const s = index.services.get(id)!
    const vips: Record<string, string> = {}
    for (const [net, vip] of s.vips) if (local.has(net)) vips[net] = vip
    const aliases: Record<string, string[]> = {}
    for (const [net, a] of index.aliases.get(id) ?? []) if (local.has(net)) aliases[net] = a
    services.push({
      id,
      name: s.name,
      endpointMode: s.mode,
      ...(s.mode === 'vip' && Object.keys(vips).length > 0 ? { vips } : {}),
      ...(Object.keys(aliases).length > 0 ? { aliases } : {}),
    })
  }
  const encrypted = [...local].filter((id) => index.encrypted.has(id)).sort()
  return {
    nodes: [...nodes]
      .sort()
      .flatMap((id) => (index.vteps.has(id) ? [{ id, vtep: index.vteps.get(id)! }] : [])),
    networks,
    services,
    tasks: [...tasks.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    // Keys only to a node with a task on an encrypted network.
    ...(encrypted.length > 0 ? { security: { encrypted, keys: index.keys } } : {}),
  }
}

/** What a view's items are keyed and compared by. */
type Keyed = Map<string, string>
export type SentView = Record<(typeof KINDS)[number], Keyed> & { security: string }

function securityKey(s: ViewSecurity | undefined): string {
  if (!s) return ''
  return JSON.stringify([s.encrypted, s.keys.map((k) => [k.tag, Buffer.from(k.key).toString('hex')])])
}

function keyed(view: NodeView): SentView {
  const out = { security: securityKey(view.security) } as SentView
  for (const k of KINDS)
    out[k] = new Map((view[k] as Array<{ id: string }>).map((x) => [x.id, JSON.stringify(x)]))
  return out
}

/**
 * The update that takes a node from `sent` (what it was sent before, or undefined at a stream's start) to
 * `view`, and the new `sent`; undefined update when nothing changed.
 */
export function diffView(
  sent: SentView | undefined,
  view: NodeView,
): { update: NetworkViewUpdate | undefined; sent: SentView } {
  const next = keyed(view)
  if (sent === undefined)
    return {
      update: {
        kind: 'network-view',
        full: true,
        viewOnly: false,
        upsert: { nodes: view.nodes, networks: view.networks, services: view.services, tasks: view.tasks },
        remove: { nodes: [], networks: [], services: [], tasks: [] },
        ...(view.security ? { security: view.security } : {}),
      },
      sent: next,
    }
  const upsert = { nodes: [], networks: [], services: [], tasks: [] } as unknown as {
    -readonly [K in keyof NetworkViewUpdate['upsert']]: NetworkViewUpdate['upsert'][K]
  }
  const remove = {
    nodes: [] as string[],
    networks: [] as string[],
    services: [] as string[],
    tasks: [] as string[],
  }
  let changed = false
  for (const k of KINDS) {
    const items = view[k] as Array<{ id: string }>
    for (const item of items)
      if (sent[k].get(item.id) !== next[k].get(item.id)) {
        ;(upsert[k] as Array<{ id: string }>).push(item)
        changed = true
      }
    for (const id of sent[k].keys())
      if (!next[k].has(id)) {
        remove[k].push(id)
        changed = true
      }
  }
  const security = next.security !== sent.security ? { security: view.security ?? null } : {}
  if (next.security !== sent.security) changed = true
  return {
    update: changed
      ? { kind: 'network-view', full: false, viewOnly: false, upsert, remove, ...security }
      : undefined,
    sent: next,
  }
}

/** The worker's side: applies an update to the view it holds (checked: it comes from the network). */
export function applyViewUpdate(view: NodeView, u: NetworkViewUpdate): NodeView {
  checkUpdate(u)
  const out = {} as NodeView
  for (const k of KINDS) {
    const items = new Map<string, unknown>(
      u.full ? [] : (view[k] as Array<{ id: string }>).map((x) => [x.id, x]),
    )
    for (const id of u.remove[k]) items.delete(id)
    for (const x of u.upsert[k] as Array<{ id: string }>) items.set(x.id, x)
    ;(out as unknown as Record<string, unknown[]>)[k] = [...items.values()]
  }
  const security = u.security === undefined ? (u.full ? undefined : view.security) : u.security
  if (security) out.security = checkSecurity(security)
  return out
}

/** The security part of an update, checked, with its keys as plain Uint8Arrays (msgpack gives Buffers). */
function checkSecurity(s: ViewSecurity): ViewSecurity {
  if (
    typeof s !== 'object' ||
    !Array.isArray(s.encrypted) ||
    s.encrypted.length > MAX_ITEMS ||
    !s.encrypted.every((id) => typeof id === 'string' && id.length <= 256) ||
    !Array.isArray(s.keys) ||
    s.keys.length > 3 ||
    !s.keys.every(
      (k) => Number.isInteger(k?.tag) && k.tag > 0 && k.key instanceof Uint8Array && k.key.length === 20,
    )
  )
    throw new TypeError('network view update: security must be { encrypted: ids, keys: [{ tag, key }] }')
  return {
    encrypted: [...s.encrypted],
    keys: s.keys.map((k) => ({ tag: k.tag, key: new Uint8Array(k.key) })),
  }
}

const MAX_ITEMS = 100_000

function checkUpdate(u: NetworkViewUpdate): void {
  if (typeof u !== 'object' || u === null || typeof u.upsert !== 'object' || typeof u.remove !== 'object')
    throw new TypeError('network view update: expected { upsert, remove }')
  for (const k of KINDS) {
    const up = u.upsert[k]
    const rm = u.remove[k]
    if (!Array.isArray(up) || !Array.isArray(rm) || up.length > MAX_ITEMS || rm.length > MAX_ITEMS)
      throw new TypeError(`network view update: ${k} must be lists`)
    if (
      !up.every(
        (x) => typeof (x as { id?: unknown })?.id === 'string' && (x as { id: string }).id.length <= 256,
      )
    )
      throw new TypeError(`network view update: every item of upsert.${k} needs an id`)
    if (!rm.every((x) => typeof x === 'string')) throw new TypeError(`network view update: remove.${k}: ids`)
  }
  for (const t of u.upsert.tasks)
    if (typeof t.node !== 'string' || typeof t.addresses !== 'object' || t.addresses === null)
      throw new TypeError('network view update: a task needs a node and addresses')
}

export { EMPTY as EMPTY_VIEW }
