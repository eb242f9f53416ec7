// The ingress routing mesh of a worker in the kernel (what Docker's ingress-sbox does): an ingress sandbox
// on the `ingress` overlay network with this node's address there (from its network view, see
// ingress-view.ts), and nftables rules from @swarmkit/overlay's ingressMesh(): a published port of this
// node is translated to the sandbox, which balances new connections (UDP: flows) round-robin over the
// service's tasks on every node, over VXLAN, with no byte copied in userspace. Host-mode ports go straight
// to the local task, the client's address kept. Where the kernel path cannot run (not root, no `nft`, a
// loopback node address, or the sandbox cannot be made) the node's userspace proxy carries published ports
// instead (routing.ts), and the node says why once.

import { execFile } from 'node:child_process'
import { isIP } from 'node:net'
import {
  type IngressMesh,
  type IngressMeshOptions,
  ingressMesh,
  type MeshEndpoint,
  type MeshService,
  type NetworkDriver,
  type SwarmView,
} from '@swarmkit/overlay'
import { EventEmitter } from 'eventemitter3'
import { isIngressSandbox, ownIngress } from './ingress-view.js'

/** A published port as the managers send it (routing.ts), with what the kernel mesh needs. */
export interface PublishedPort extends MeshService {
  /** The tasks' port. */
  readonly targetPort?: number
  /** The service's running tasks: ID, node, and address on the ingress network. */
  readonly tasks?: ReadonlyArray<{ readonly id: string; readonly node: string; readonly ingress?: string }>
}

/** The node a kernel ingress works for: its driver, ID, and device and table prefix (one per node). */
export interface IngressContext {
  readonly driver: NetworkDriver
  readonly node: string
  readonly prefix: string
}

export interface KernelIngressOptions {
  /** The node's networking once it is configured (undefined before). */
  readonly context: () => IngressContext | undefined
  /** A local task's address on this node (host-mode ports go there). */
  readonly addressOf: (taskId: string) => string | undefined
  readonly log?: (line: string) => void
}

export interface KernelIngressEvents {
  /** The kernel path became usable or unusable: published ports must be applied again. */
  'ingress:changed': () => void
}

export interface KernelIngress extends EventEmitter<KernelIngressEvents> {
  /**
   * Whether published ports answering on `host` can go through the kernel now: `ready`; `waiting` for this
   * node's ingress address (publish nothing yet); or a reason it cannot, for the proxy to take over.
   */
  state(host: string): Promise<'ready' | 'waiting' | { unavailable: string }>
  /**
   * Finds out whether the kernel path can run for a node at `addr` (root, \`nft\`, a routed address); until
   * then, and where it cannot, tasks stay off the ingress network (see {@link viewFor}).
   */
  probe(addr: string): Promise<void>
  /** Whether the last probe found the kernel path usable. */
  readonly usable: boolean
  /** The view for this node's data plane: without the ingress network where the kernel path cannot run. */
  viewFor(view: SwarmView): SwarmView
  /** Publishes exactly `list` on `host` in the kernel; resolves with whether some port failed. */
  apply(host: string, list: readonly PublishedPort[]): Promise<boolean>
  /** The ports published in the kernel now. */
  listening(): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }>
  /** The network view changed (after the node applied it). */
  follow(view: SwarmView): void
  /** Removes the sandbox and the rules (the node's networking is being remade). */
  reset(): Promise<void>
  /** Removes the sandbox and the rules for good. */
  close(): Promise<void>
}

const run = (file: string, args: string[]) =>
  new Promise<void>((resolve, reject) =>
    execFile(file, args, { timeout: 10_000 }, (err) => (err ? reject(err) : resolve())),
  )

/** Why the kernel path cannot run on this machine at all (undefined: it can). */
async function machineUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `it needs Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'it needs root'
  try {
    await run('nft', ['--version'])
  } catch {
    return 'nftables is not installed (`nft` did not run)'
  }
  return undefined
}

/** Why published ports on `host` cannot be translated in the kernel (loopback: not routed to a veth). */
function hostUnusable(host: string): string | undefined {
  if (isIP(host) === 0) return `the node address ${host} is not an IP address`
  if (host.startsWith('127.') || host === '::1')
    return `the node address ${host} is a loopback address (the kernel path needs a routed one)`
  return undefined
}

class Ingress extends EventEmitter<KernelIngressEvents> implements KernelIngress {
  readonly #o: KernelIngressOptions
  readonly #log: (line: string) => void
  #machine: Promise<string | undefined> | undefined
  /** Why the kernel path cannot run for this node (from the last probe); undefined once it can. */
  #unusable: string | undefined = 'not probed yet'
  /** This node's ingress network and address, from the last view (JSON, to compare). */
  #own: ReturnType<typeof ownIngress>
  #ownKey = ''
  #mesh: { mesh: IngressMesh; host: string; key: string } | undefined
  /** Why the sandbox could not be made (for this own-ingress key); cleared when the view changes it. */
  #failed: { key: string; why: string } | undefined
  /** `protocol/port` -> the service published there. */
  readonly #published = new Map<
    string,
    { service: string; protocol: 'tcp' | 'udp'; port: number; bound: boolean }
  >()
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor(o: KernelIngressOptions) {
    super()
    this.#o = o
    this.#log = o.log ?? (() => {})
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn)
    this.#queue = next.catch(() => {})
    return next
  }

  get usable(): boolean {
    return this.#unusable === undefined
  }

  async probe(addr: string): Promise<void> {
    this.#machine ??= machineUnavailable()
    this.#unusable = (await this.#machine) ?? hostUnusable(addr)
  }

  viewFor(view: SwarmView): SwarmView {
    if (this.usable) return view
    const ingress = new Set(
      view.tasks.filter((t) => isIngressSandbox(t.id)).flatMap((t) => Object.keys(t.addresses)),
    )
    if (ingress.size === 0) return view
    return {
      ...view,
      networks: view.networks.filter((n) => !ingress.has(n.id)),
      tasks: view.tasks
        .filter((t) => !isIngressSandbox(t.id))
        .map((t) =>
          Object.keys(t.addresses).some((n) => ingress.has(n))
            ? {
                ...t,
                addresses: Object.fromEntries(Object.entries(t.addresses).filter(([n]) => !ingress.has(n))),
              }
            : t,
        ),
    }
  }

  async state(host: string): Promise<'ready' | 'waiting' | { unavailable: string }> {
    if (this.#unusable !== undefined && this.#unusable !== 'not probed yet')
      return { unavailable: this.#unusable }
    this.#machine ??= machineUnavailable()
    const why = (await this.#machine) ?? hostUnusable(host)
    if (why) return { unavailable: why }
    if (this.#closed) return { unavailable: 'the node is closing' }
    if (this.#failed && this.#failed.key === this.#ownKey) return { unavailable: this.#failed.why }
    return this.#own && this.#o.context() ? 'ready' : 'waiting'
  }

  follow(view: SwarmView): void {
    const ctx = this.#o.context()
    const own = ctx ? ownIngress(view, ctx.node) : undefined
    const key = own ? JSON.stringify(own) : ''
    if (key === this.#ownKey) return
    this.#own = own
    this.#ownKey = key
    void this.#serial(async () => {
      // A different ingress (or none): the old sandbox goes; the next apply makes the new one.
      await this.#stop()
    }).finally(() => this.emit('ingress:changed'))
  }

  apply(host: string, list: readonly PublishedPort[]): Promise<boolean> {
    return this.#serial(async () => {
      const mesh = await this.#start(host)
      if (!mesh) return true
      let failed = false
      const want = new Map<string, MeshService>()
      for (const p of list) {
        const k = this.#kernelSpec(p)
        if (!k) continue
        want.set(`${k.spec.protocol}/${k.spec.publishedPort}`, k.spec)
        // A task without its address here yet (not attached): try again shortly.
        if (k.missing) failed = true
      }
      for (const [key, p] of [...this.#published]) {
        if (want.get(key)?.service === p.service) continue
        await mesh.unpublish(p.protocol, p.port)
        this.#published.delete(key)
      }
      for (const [key, spec] of want) {
        try {
          await mesh.publish(spec)
          // Said once per port (a host-mode port: once it has a task here).
          const bound = spec.publishMode !== 'host' || spec.endpoints.length > 0
          if (bound && !this.#published.get(key)?.bound)
            this.#log(`mesh: ${host}:${spec.publishedPort}/${spec.protocol} routed in the kernel`)
          this.#published.set(key, {
            service: spec.service,
            protocol: spec.protocol,
            port: spec.publishedPort,
            bound: bound || this.#published.get(key)?.bound === true,
          })
        } catch (err) {
          this.#log(`mesh: port ${key} not published in the kernel: ${(err as Error).message}`)
          failed = true
        }
      }
      return failed
    })
  }

  listening(): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }> {
    return [...this.#published.values()].map((p) => ({
      protocol: p.protocol,
      port: p.port,
      service: p.service,
    }))
  }

  reset(): Promise<void> {
    this.#own = undefined
    this.#ownKey = ''
    return this.#serial(() => this.#stop())
  }

  close(): Promise<void> {
    this.#closed = true
    return this.reset()
  }

  /** The port with its kernel endpoints: tasks' ingress addresses, or the local tasks' (host mode). */
  #kernelSpec(p: PublishedPort): { spec: MeshService; missing: boolean } | undefined {
    const target = p.targetPort
    if (target === undefined || !Array.isArray(p.tasks)) return undefined
    const endpoints: MeshEndpoint[] = []
    const me = this.#o.context()?.node
    let missing = false
    for (const t of p.tasks) {
      if (p.publishMode === 'host' && t.node !== me) continue
      const address = p.publishMode === 'host' ? this.#o.addressOf(t.id) : t.ingress
      if (address) endpoints.push({ address, port: target, node: t.node })
      else if (p.publishMode === 'host') missing = true
    }
    const spec: MeshService = {
      service: p.service,
      protocol: p.protocol,
      publishedPort: p.publishedPort,
      publishMode: p.publishMode ?? 'ingress',
      endpoints,
    }
    return { spec, missing }
  }

  /** The running mesh for `host` (made on first use, after leftovers of a crashed run are removed). */
  async #start(host: string): Promise<IngressMesh | undefined> {
    if (this.#mesh?.host === host && this.#mesh.key === this.#ownKey) return this.#mesh.mesh
    await this.#stop()
    const own = this.#own
    const ctx = this.#o.context()
    if (!own || !ctx || this.#closed) return undefined
    const options: IngressMeshOptions = {
      driver: ctx.driver,
      network: own.network,
      address: own.address,
      node: ctx.node,
      prefix: ctx.prefix,
      host,
    }
    try {
      await ingressMesh(options)
        .close()
        .catch(() => {})
      const mesh = ingressMesh(options)
      await mesh.start()
      this.#mesh = { mesh, host, key: this.#ownKey }
      this.#log(
        `mesh: published ports are routed in the kernel through the ingress sandbox (${own.address} on the ingress network)`,
      )
      return mesh
    } catch (err) {
      const why = `the ingress sandbox could not be made: ${(err as Error).message}`
      this.#failed = { key: this.#ownKey, why }
      queueMicrotask(() => this.emit('ingress:changed'))
      return undefined
    }
  }

  async #stop(): Promise<void> {
    const m = this.#mesh
    this.#mesh = undefined
    this.#published.clear()
    if (m)
      await m.mesh
        .close()
        .catch((err) => this.#log(`mesh: removing the ingress sandbox: ${(err as Error).message}`))
  }
}

/** A worker's kernel ingress; see {@link KernelIngress}. */
export function kernelIngress(options: KernelIngressOptions): KernelIngress {
  return new Ingress(options)
}

/** The kernel ingress of a node's executor (the Docker executor's task networking), if it has one. */
export function kernelIngressOf(executor: unknown): KernelIngress | undefined {
  return (executor as { networking?: { ingress?: KernelIngress } } | undefined)?.networking?.ingress
}
