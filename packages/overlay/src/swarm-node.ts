import type { EmbeddedResolver } from './dns-resolver.js'
import type { CallOptions, NetworkDriver, OverlayNetwork, Sandbox } from './driver.js'
import { OverlayError } from './errors.js'
import { type NetworkDb, networkDb, type PeerDelta } from './network-db.js'
import {
  type DirectoryService,
  type DirectoryTask,
  type ServiceDirectory,
  serviceDirectory,
} from './service-directory.js'
import type { ServiceLoadBalancer } from './service-lb.js'

/** The swarm as one node's networking needs it: what the managers send (the whole view, every time). */
export interface SwarmView {
  /** Every node and its underlay (VTEP) address. */
  nodes: Array<{ id: string; vtep: string }>
  /** Every overlay network (no `nodeAddress`: tasks are what this layer places). */
  networks: OverlayNetwork[]
  /** Every service, with its VIPs per network. */
  services: DirectoryService[]
  /** Every task with an address on some network, and the node it runs on. */
  tasks: Array<DirectoryTask & { node: string }>
}

/** Options of attaching a task: a signal, and the pid of a container whose network namespace the task gets. */
export interface AttachTaskOptions extends CallOptions {
  /** Join this process's network namespace instead of making a new one. */
  pid?: number
}

/** How {@link swarmNode} is built: this node's ID, its driver and the directory its resolver answers from. */
export interface SwarmNodeOptions {
  /** This node's ID. */
  node: string
  driver: NetworkDriver
  /** The directory `update` keeps current (give the same one to the resolver). Default: a new one. */
  directory?: ServiceDirectory
  /** Answers 127.0.0.11 in each attached task (optional; built on `directory`). */
  resolver?: EmbeddedResolver
  /** Programs the VIPs of each attached task's networks into its sandbox (optional). */
  loadBalancer?: ServiceLoadBalancer
}

/**
 * One node's swarm networking, driven the way a worker gets its orders: `update(view)` whenever the
 * managers send a new view (the network DB turns it into forwarding changes; networks with a local task are
 * created, others removed; discovery and every attached sandbox's VIP table follow), `attachTask(id)` when a
 * task's container starts, `detachTask(id)` when it is gone.
 */
export interface SwarmNode {
  readonly directory: ServiceDirectory
  update(view: SwarmView, options?: CallOptions): Promise<void>
  /**
   * Gives a task of this node its sandbox on its networks; with `pid`, the sandbox is that process's own
   * network namespace (a container started with no network), as a CNI plugin does.
   */
  attachTask(id: string, options?: AttachTaskOptions): Promise<Sandbox>
  detachTask(id: string, options?: CallOptions): Promise<void>
  /** Detaches every task and removes every network this node made. */
  close(options?: CallOptions): Promise<void>
}

interface Attached {
  sandbox: Sandbox
  networks: string[]
  vips: string
}

class Node implements SwarmNode {
  readonly directory: ServiceDirectory
  private readonly db: NetworkDb
  private view: SwarmView = { nodes: [], networks: [], services: [], tasks: [] }
  private readonly vteps = new Map<string, string>()
  /** `${task}\0${network}` -> `${address}\0${node}` */
  private readonly endpoints = new Map<string, string>()
  private readonly networks = new Map<string, string>()
  private readonly attached = new Map<string, Attached>()
  private queue: Promise<unknown> = Promise.resolve()

  constructor(private readonly o: SwarmNodeOptions) {
    if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object')
    if (typeof o.node !== 'string' || o.node.length === 0)
      throw new TypeError('options.node must be a non-empty string')
    if (typeof o.driver?.updatePeers !== 'function')
      throw new TypeError('options.driver must be a NetworkDriver')
    this.db = networkDb(o.node)
    this.directory = o.directory ?? serviceDirectory()
  }

  update(view: SwarmView, options?: CallOptions): Promise<void> {
    checkView(view)
    return this.serial(async () => {
      const deltas: PeerDelta[] = []
      // Nodes first (a new node's endpoints become visible with it), then endpoints.
      const nodes = new Map(view.nodes.map((n) => [n.id, n.vtep]))
      for (const [id] of this.vteps) if (!nodes.has(id)) deltas.push(...this.db.nodeDown(id))
      for (const [id, vtep] of nodes)
        if (this.vteps.get(id) !== vtep) deltas.push(...this.db.nodeUp(id, vtep))
      this.vteps.clear()
      for (const [id, vtep] of nodes) this.vteps.set(id, vtep)
      const want = new Map<string, { task: string; network: string; address: string; node: string }>()
      for (const t of view.tasks)
        for (const [network, address] of Object.entries(t.addresses))
          want.set(`${t.id}\0${network}`, { task: t.id, network, address, node: t.node })
      for (const key of this.endpoints.keys())
        if (!want.has(key)) {
          const [task, network] = key.split('\0') as [string, string]
          deltas.push(...this.db.endpointDown(task, network))
          this.endpoints.delete(key)
        }
      for (const [key, e] of want) {
        const value = `${e.address}\0${e.node}`
        if (this.endpoints.get(key) === value) continue
        deltas.push(
          ...this.db.endpointUp({ id: e.task, network: e.network, address: e.address, node: e.node }),
        )
        this.endpoints.set(key, value)
      }
      // Deltas touch only networks already here; a network new to this node gets its whole set below.
      for (const d of deltas) await this.o.driver.updatePeers(d.network, d, options)
      const local = new Set<string>()
      for (const t of view.tasks)
        if (t.node === this.o.node) for (const n of Object.keys(t.addresses)) local.add(n)
      for (const net of view.networks) {
        if (!local.has(net.id)) continue
        const spec = JSON.stringify(net)
        if (this.networks.get(net.id) === spec) continue
        await this.o.driver.createNetwork(net, options)
        await this.o.driver.setPeers(net.id, this.db.attach(net.id), options)
        this.networks.set(net.id, spec)
      }
      for (const id of [...this.networks.keys()])
        if (!local.has(id) && ![...this.attached.values()].some((a) => a.networks.includes(id))) {
          this.db.detach(id)
          await this.o.driver.removeNetwork(id, options)
          this.networks.delete(id)
        }
      this.view = view
      this.directory.set({ services: view.services, tasks: view.tasks })
      for (const [id, a] of this.attached) await this.program(id, a, options)
    })
  }

  attachTask(id: string, options?: AttachTaskOptions): Promise<Sandbox> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string')
    const pid = options?.pid
    if (pid !== undefined && (!Number.isSafeInteger(pid) || pid <= 0))
      throw new TypeError('options.pid must be a positive integer')
    return this.serial(async () => {
      const t = this.view.tasks.find((x) => x.id === id && x.node === this.o.node)
      if (t === undefined)
        throw new OverlayError('NOT_FOUND', `task ${id} is not on this node in the current view`)
      const networks = Object.keys(t.addresses)
      const sandbox = await this.o.driver.createSandbox(
        {
          id,
          endpoints: networks.map((n) => ({ network: n, address: t.addresses[n]! })),
          ...(pid === undefined ? {} : { pid }),
        },
        options,
      )
      const a: Attached = { sandbox, networks, vips: '' }
      this.attached.set(id, a)
      await this.o.resolver?.attach({ id, namespace: sandbox.namespace, networks }, options)
      await this.program(id, a, options)
      return sandbox
    })
  }

  detachTask(id: string, options?: CallOptions): Promise<void> {
    return this.serial(async () => {
      this.attached.delete(id)
      await this.o.resolver?.detach(id)
      await this.o.driver.removeSandbox(id, options)
    })
  }

  close(options?: CallOptions): Promise<void> {
    return this.serial(async () => {
      for (const id of [...this.attached.keys()]) {
        this.attached.delete(id)
        await this.o.resolver?.detach(id)
        await this.o.driver.removeSandbox(id, options)
      }
      for (const id of [...this.networks.keys()]) {
        this.db.detach(id)
        await this.o.driver.removeNetwork(id, options)
        this.networks.delete(id)
      }
    })
  }

  // The sandbox's VIP table, rewritten only when its VIPs or their backends changed.
  private async program(id: string, a: Attached, options?: CallOptions): Promise<void> {
    const lb = this.o.loadBalancer
    if (lb === undefined) return
    const vips = a.networks
      .flatMap((n) => this.directory.vipsOn(n))
      .map((v) => ({ vip: v.vip, backends: v.backends }))
    const key = JSON.stringify(vips)
    if (key === a.vips) return
    await lb.apply(a.sandbox.namespace, vips, options)
    if (this.attached.get(id) === a) a.vips = key
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => {})
    return next
  }
}

function checkView(v: unknown): asserts v is SwarmView {
  if (typeof v !== 'object' || v === null) throw new TypeError('view must be an object')
  const view = v as SwarmView
  for (const k of ['nodes', 'networks', 'services', 'tasks'] as const)
    if (!Array.isArray(view[k])) throw new TypeError(`view.${k} must be an array`)
  for (const [i, t] of view.tasks.entries())
    if (typeof t?.node !== 'string' || typeof t.addresses !== 'object' || t.addresses === null)
      throw new TypeError(`view.tasks[${i}] needs a node and addresses`)
}

/** One node's swarm networking; see {@link SwarmNode}. */
export function swarmNode(options: SwarmNodeOptions): SwarmNode {
  return new Node(options)
}
