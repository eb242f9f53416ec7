// What the leader's task-address allocator knows of the store, kept from its events (issue #18): the
// addresses held on every network (an AddressBook), and the tasks and nodes that need an address now. A
// pass then costs what the events touched, not a walk over every task. The sets are exact for the store
// state the index has seen: an event recomputes whether its object needs anything. A change of the networks
// themselves (a network created or removed, its subnet or ingress role changed) asks for a rebuild instead:
// rare, and it changes what every task needs.

import type { SubnetRecord } from '@swarmkit/overlay'
import type { Network, Node, Service, StoreEvent, Task } from '@swarmkit/store'
import { AddressBook, type HeldAddress } from './address-book.js'
import { holdsAddresses } from './holds-addresses.js'

/** The tables the allocator follows. */
export const ADDRESS_TABLES = ['tasks', 'services', 'nodes', 'networks'] as const
export type AddressTable = (typeof ADDRESS_TABLES)[number]

/** The ingress network, when it has what the data plane needs (see ingress-attachments.ts). */
export interface IngressNet {
  id: string
  /** The subnet's prefix length, as the addresses carry it. */
  bits: string
}

/** Whether a task's service publishes a port (either mode). */
export function publishes(t: Pick<Task, 'endpoint'>): boolean {
  const ports = t.endpoint?.ports
  if (ports === undefined) return false
  for (const p of ports) if (p.publishedPort > 0) return true
  return false
}

export const attachedTo = (list: Task['networks'] | undefined, net: string): boolean => {
  for (const a of list ?? []) if (a.networkId === net && a.addresses.length > 0) return true
  return false
}

/** Whether a task event can matter to the allocator: it has attachments, or it publishes through ingress. */
export function concernsAllocator(e: StoreEvent<AddressTable>): boolean {
  if (e.table !== 'tasks') return true
  const t = e.object
  if (t.networks.length > 0 || publishes(t)) return true
  return e.action === 'update' && (e.oldObject.networks.length > 0 || publishes(e.oldObject))
}

/** What in a network decides the allocator's work: its subnets, and whether it is addressed or the ingress. */
function networkShape(n: Network): string {
  const cfg = n.ipam?.configs ?? []
  return JSON.stringify([
    cfg.map((c) => [c.subnet, c.gateway ?? '']),
    n.spec.ingress === true,
    n.pendingDelete === true,
    n.vni,
  ])
}

export class TaskAddressIndex {
  readonly book: AddressBook
  /** Networks whose tasks get addresses (overlay with a subnet, not ingress) -> the prefix length. */
  readonly nets = new Map<string, string>()
  readonly ingress: IngressNet | undefined
  /** Live tasks with an attachment that needs an address (an addressed network, or ingress). */
  readonly tasks = new Set<string>()
  /** Nodes without an ingress address (given one once any task is on ingress). */
  readonly nodes = new Set<string>()
  /** Live tasks with an ingress address: while there is one, every node needs its ingress sandbox. */
  readonly onIngress = new Set<string>()
  /**
   * Tasks and nodes of `tasks` / `nodes` no address was left for: they wait until an address is released
   * (`book.released` moves). Kept subsets: an event that settles one removes it.
   */
  readonly blockedTasks = new Set<string>()
  readonly blockedNodes = new Set<string>()
  /** The networks as this index was built for them (a change of shape asks for a rebuild). */
  readonly #shapes = new Map<string, string>()

  constructor(networks: readonly Network[], log?: (line: string) => void) {
    const subnets: SubnetRecord[] = []
    let ingress: IngressNet | undefined
    for (const n of networks) {
      this.#shapes.set(n.id, networkShape(n))
      const configs = n.ipam?.configs ?? []
      for (const c of configs) subnets.push({ network: n.id, subnet: c.subnet, gateway: c.gateway ?? '' })
      const first = configs[0]
      if (!first?.subnet || n.pendingDelete) continue
      if (!n.spec.ingress) this.nets.set(n.id, first.subnet.split('/')[1]!)
      else if (!ingress && n.vni !== undefined && first.gateway)
        ingress = { id: n.id, bits: first.subnet.split('/')[1]! }
    }
    this.ingress = ingress
    this.book = new AddressBook(subnets, (s, err) =>
      log?.(`subnet ${s.subnet} of network ${s.network} left out: ${err.message}`),
    )
  }

  /** Whether a live task has an attachment still without its address. */
  needs(t: Task): boolean {
    if (!holdsAddresses(t)) return false
    for (const a of t.networks) if (a.addresses.length === 0 && this.nets.has(a.networkId)) return true
    return this.ingress !== undefined && publishes(t) && !attachedTo(t.networks, this.ingress.id)
  }

  nodeNeeds(n: Node): boolean {
    return this.ingress !== undefined && !!n.status.addr && !attachedTo(n.attachments, this.ingress.id)
  }

  /** Task `id` is now `t` (undefined: removed). */
  putTask(id: string, t: Task | undefined): void {
    const live = t !== undefined && holdsAddresses(t)
    this.book.hold('task', id, live ? attachmentAddresses(t.networks) : NOTHING)
    if (t !== undefined && this.needs(t)) this.tasks.add(id)
    else {
      this.tasks.delete(id)
      this.blockedTasks.delete(id)
    }
    if (live && this.ingress && attachedTo(t.networks, this.ingress.id)) this.onIngress.add(id)
    else this.onIngress.delete(id)
  }

  putService(id: string, s: Service | undefined): void {
    const vips = s?.endpoint?.virtualIPs ?? []
    this.book.hold(
      'service',
      id,
      vips.map((v) => ({ network: v.networkId, address: v.addr })),
    )
  }

  putNode(id: string, n: Node | undefined): void {
    this.book.hold('node', id, n ? attachmentAddresses(n.attachments ?? []) : NOTHING)
    if (n !== undefined && this.nodeNeeds(n)) this.nodes.add(id)
    else {
      this.nodes.delete(id)
      this.blockedNodes.delete(id)
    }
  }

  /** Applies one committed change; false when the index must be rebuilt (the networks changed shape). */
  event(e: StoreEvent<AddressTable>): boolean {
    const gone = e.action === 'delete'
    switch (e.table) {
      case 'tasks':
        if (
          e.action === 'update' &&
          e.oldObject.networks === e.object.networks &&
          holdsAddresses(e.oldObject) === holdsAddresses(e.object) &&
          e.oldObject.endpoint === e.object.endpoint
        )
          return true // progress of a task whose attachments did not change (most events)
        this.putTask(e.object.id, gone ? undefined : e.object)
        return true
      case 'services':
        this.putService(e.object.id, gone ? undefined : e.object)
        return true
      case 'nodes':
        this.putNode(e.object.id, gone ? undefined : e.object)
        return true
      case 'networks':
        return gone
          ? !this.#shapes.has(e.object.id)
          : this.#shapes.get(e.object.id) === networkShape(e.object)
      default:
        return true
    }
  }
}

const NOTHING: readonly HeldAddress[] = []

function attachmentAddresses(list: Task['networks']): HeldAddress[] {
  const out: HeldAddress[] = []
  for (const a of list) for (const address of a.addresses) out.push({ network: a.networkId, address })
  return out
}
