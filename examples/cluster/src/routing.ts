// The routing mesh on every node. Where the kernel path runs (kernel-ingress.ts) published ports are
// nftables rules through the node's ingress sandbox; elsewhere @swarmkit/overlay's userspace proxy answers
// on each published port of every service and balances connections round-robin over the service's running
// tasks, wherever they run. What to publish comes from the store (on a manager) or from the dispatcher's
// `dispatcher.mesh` stream (on a worker): for the proxy, each task's endpoint is where its agent's responder
// listens, as the agent reported it; for the kernel, the tasks' addresses on the ingress network.

import { isOverlayError, type MeshEndpoint, type RoutingMesh, routingMesh } from '@swarmkit/overlay'
import type { ReadTx } from '@swarmkit/store'
import { ingressNetwork } from './ingress-attachments.js'
import type { KernelIngress, PublishedPort } from './kernel-ingress.js'
import { ENDPOINT_LABEL, ENDPOINTS_LABEL } from './labels.js'
import { parseEndpointPorts } from './task-status.js'

/** The published ports of every service with its running tasks (ports 0 are skipped). */
export function meshServices(tx: ReadTx): PublishedPort[] {
  const out: PublishedPort[] = []
  const ingress = ingressNetwork(tx)?.id
  for (const s of tx.find('services')) {
    const ports = (s.endpoint?.ports ?? []).filter(
      (p) => (p.protocol === 'tcp' || p.protocol === 'udp') && p.publishedPort > 0,
    )
    if (ports.length === 0) continue
    const running = tx
      .find('tasks', { serviceId: s.id }, (t) => t.desiredState === 'running' && t.status.state === 'running')
      .sort((a, b) => (a.id < b.id ? -1 : 1))
    // The proxy reaches a task through its node's forwarder for that target port (one per port; an older
    // node reports one only, to the first TCP target port).
    const firstTcp = s.endpoint?.ports.find((p) => p.protocol === 'tcp')?.targetPort
    const endpointsOf = (protocol: string, targetPort: number): MeshEndpoint[] =>
      running
        .flatMap((t) => {
          const at = t.labels?.[ENDPOINT_LABEL]
          const cut = at?.lastIndexOf(':') ?? -1
          if (!at || cut <= 0) return []
          const perPort = parseEndpointPorts(t.labels?.[ENDPOINTS_LABEL])
          const port =
            perPort.size > 0
              ? perPort.get(`${protocol}/${targetPort}`)
              : protocol === 'tcp' && targetPort === firstTcp
                ? Number(at.slice(cut + 1))
                : undefined
          return port === undefined ? [] : [{ address: at.slice(0, cut), port, node: t.nodeId }]
        })
        .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port))
    const tasks = running.map((t) => {
      const a = t.networks.find((x) => x.networkId === ingress && x.addresses.length > 0)
      return { id: t.id, node: t.nodeId, ...(a ? { ingress: a.addresses[0]!.split('/')[0]! } : {}) }
    })
    for (const p of ports)
      out.push({
        service: s.id,
        protocol: p.protocol as 'tcp' | 'udp',
        publishedPort: p.publishedPort,
        publishMode: p.publishMode === 'host' ? 'host' : 'ingress',
        endpoints: endpointsOf(p.protocol, p.targetPort),
        targetPort: p.targetPort,
        tasks,
      })
  }
  return out
}

export interface MeshFollowerOptions {
  /** The address published ports bind on (the node's listen address). */
  readonly host: string
  readonly nodeId: string
  /** The services to publish, as a stream of complete lists. */
  readonly source: (signal: AbortSignal) => AsyncIterable<PublishedPort[]>
  /** The kernel path (this node's ingress sandbox), used instead of the proxy where it can run. */
  readonly kernel?: KernelIngress
  readonly log?: (line: string) => void
}

/** Keeps a node's routing mesh in step with a stream of published services. */
export class MeshFollower {
  readonly mesh: RoutingMesh
  readonly #options: MeshFollowerOptions
  readonly #stop = new AbortController()
  readonly #log: (line: string) => void
  #loop: Promise<void> = Promise.resolve()
  /** The list being followed, and the queue that applies lists one at a time. */
  #last: readonly PublishedPort[] = []
  #applying: Promise<void> = Promise.resolve()
  #retry: ReturnType<typeof setTimeout> | undefined
  /** Ports whose failure was logged (once, until they bind). */
  readonly #failing = new Set<string>()
  /** Why the kernel path is not used (logged once per reason). */
  #fallback: string | undefined

  constructor(options: MeshFollowerOptions) {
    this.#options = options
    this.#log = options.log ?? (() => {})
    this.mesh = routingMesh({
      host: options.host,
      node: options.nodeId,
      connectTimeoutMs: 2000,
      ejectMs: 2000,
    })
    this.mesh.on('port:bound', (e) => this.#log(`mesh: ${options.host}:${e.port}/${e.protocol} bound`))
    this.mesh.on('port:unbound', (e) => this.#log(`mesh: ${options.host}:${e.port}/${e.protocol} released`))
    options.kernel?.on('ingress:changed', () => void this.#enqueue(this.#last).catch(() => {}))
  }

  /** Which path carries published ports now. */
  get mode(): 'kernel' | 'userspace' {
    return (this.#options.kernel?.listening().length ?? 0) > 0 ? 'kernel' : 'userspace'
  }

  start(): void {
    this.#loop = this.#follow()
  }

  async close(): Promise<void> {
    this.#stop.abort()
    clearTimeout(this.#retry)
    await this.#loop.catch(() => {})
    await this.#applying.catch(() => {})
    await this.mesh.close()
  }

  async #follow(): Promise<void> {
    const signal = this.#stop.signal
    while (!signal.aborted) {
      try {
        for await (const list of this.#options.source(signal)) await this.#enqueue(list)
      } catch (err) {
        if (signal.aborted) return
        this.#log(`mesh stream broke: ${(err as Error).message}; resubscribing`)
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  }

  /** Applies `list` after whatever is being applied; a port that could not be bound is tried again later. */
  #enqueue(list: readonly PublishedPort[]): Promise<void> {
    if (!Array.isArray(list)) throw new TypeError('expected a list of published services')
    this.#last = list
    clearTimeout(this.#retry)
    this.#applying = this.#applying
      .catch(() => {})
      .then(async () => {
        if (this.#last !== list || this.#stop.signal.aborted) return
        const failed = await this.#apply(list)
        if (failed && !this.#stop.signal.aborted) {
          this.#retry = setTimeout(() => void this.#enqueue(this.#last).catch(() => {}), 2000)
          this.#retry.unref?.()
        }
      })
    return this.#applying
  }

  /** Publishes `list` (in the kernel where it can) and unpublishes the rest; whether some port failed. */
  async #apply(list: readonly PublishedPort[]): Promise<boolean> {
    const kernel = this.#options.kernel
    const state = kernel ? await kernel.state(this.#options.host) : { unavailable: 'no task networking here' }
    if (state === 'ready' || state === 'waiting') {
      // The kernel carries the ports (or will, once this node's ingress address arrives): no proxy listener.
      for (const l of this.mesh.listening()) await this.mesh.unpublish(l.protocol, l.port)
      this.#fallback = undefined
      return state === 'ready' ? kernel!.apply(this.#options.host, list) : false
    }
    if (list.length > 0 && this.#fallback !== state.unavailable) {
      this.#fallback = state.unavailable
      this.#log(
        `mesh: published ports go through the userspace proxy: the kernel path cannot run (${state.unavailable})`,
      )
    }
    if (kernel && kernel.listening().length > 0) await kernel.apply(this.#options.host, [])
    let failed = false
    const want = new Map(list.map((s) => [`${s.protocol}/${s.publishedPort}`, s]))
    for (const l of this.mesh.listening()) {
      const s = want.get(`${l.protocol}/${l.port}`)
      if (!s || s.service !== l.service) await this.mesh.unpublish(l.protocol, l.port)
    }
    for (const s of want.values()) {
      if (this.#stop.signal.aborted) return failed
      const key = `${s.protocol}/${s.publishedPort}`
      try {
        await this.mesh.publish(s)
        this.#failing.delete(key)
      } catch (err) {
        // A port this node cannot bind (in use by another program): the others still work.
        if (!isOverlayError(err) && !(err instanceof TypeError) && !(err instanceof RangeError)) throw err
        if (!this.#failing.has(key))
          this.#log(`mesh: port ${key} not published: ${(err as Error).message}; trying again`)
        this.#failing.add(key)
        if (isOverlayError(err)) failed = true
      }
    }
    return failed
  }
}
