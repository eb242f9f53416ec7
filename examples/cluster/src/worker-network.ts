// A worker's overlay networking (what swarm's libnetwork does on each node): it holds the network view the
// managers send (network-view.ts) and keeps the node's data plane in step through the overlay package's
// swarmNode: a bridge and VXLAN device per overlay network one of its tasks uses, static forwarding entries
// for the other nodes' tasks (changed entry by entry, never flushed), and, inside each task's container,
// its address on each network, the services' VIPs (nftables) and the embedded DNS at 127.0.0.11.
//
// A task's container starts with no network (the Docker executor creates it so); once it runs, its own
// network namespace becomes the task's sandbox (veth pairs moved in from the node's bridges). Tasks on no
// overlay network get the node-local bridge of task-networking.ts, as before; so does a task whose overlay
// attachment cannot be made here (e.g. several nodes sharing one network namespace), and the node says so.

import { createHash } from 'node:crypto'
import {
  type EmbeddedResolver,
  embeddedResolver,
  linuxDriver,
  type NetworkDriver,
  type SwarmNode,
  type SwarmView,
  serviceDirectory,
  serviceLoadBalancer,
  swarmNode,
  systemResolvers,
} from '@swarmkit/overlay'
import type { Assignment } from './dispatcher.js'
import type { TaskNetworking } from './docker-executor.js'
import { type EncryptedOverlays, encryptedOverlays } from './encrypted-overlays.js'
import { forwardTaskPorts, type TaskEndpoint } from './endpoint-forwarder.js'
import { hasIngressAddress, publishesThroughIngress } from './ingress-view.js'
import { type KernelIngress, kernelIngress } from './kernel-ingress.js'
import { applyViewUpdate, EMPTY_VIEW, type NetworkViewUpdate, type NodeView } from './network-view.js'
import { type LocalTaskNetworking, localTaskNetworking } from './task-networking.js'

export interface WorkerNetworkingOptions {
  /** Where non-swarm DNS queries of tasks go. Default: the node's /etc/resolv.conf. */
  readonly upstream?: Array<{ address: string; port?: number }>
  /** How long a started task waits for its addresses to reach this node. Default 30 s. */
  readonly addressWaitMs?: number
  /** Networking of tasks on no overlay network. Default: localTaskNetworking(). */
  readonly local?: LocalTaskNetworking
  /** IPsec of encrypted networks. Default: encryptedOverlays() in this process's namespace. */
  readonly encryption?: EncryptedOverlays
  readonly log?: (line: string) => void
}

/** A task on an encrypted network this node cannot seal: rejected, never attached in clear. */
export class UnsealedNetworkError extends Error {
  override readonly name = 'UnsealedNetworkError'
}

export interface WorkerNetworking extends TaskNetworking {
  /** The view this node holds now (what the managers sent). */
  view(): SwarmView
  /** Tasks attached to overlay networks now. */
  overlayTasks(): string[]
}

/** The driver's device prefix for a node: `o` and four base-36 characters of its ID's hash. */
export function overlayPrefix(nodeId: string): string {
  const h = createHash('sha256').update(`overlay:${nodeId}`).digest()
  return `o${h.readUInt32BE(0).toString(36).padStart(4, '0').slice(-4)}`
}

/** The overlay networks a task is attached to, by its spec (the addresses come with the view). */
function overlayNetworks(task: Assignment): string[] {
  return [
    ...new Set([
      ...task.networks.map((n) => n.networkId),
      ...(task.spec.networks ?? []).map((n) => n.target),
    ]),
  ]
}

/** A task on overlay networks: its first address (host-mode ports) and its forwarders (userspace mesh). */
interface Attachment {
  forwarder?: { endpoint: TaskEndpoint | undefined; close(): void }
  address?: string
}

export function workerNetworking(options: WorkerNetworkingOptions = {}): WorkerNetworking {
  const log = options.log ?? (() => {})
  const local = options.local ?? localTaskNetworking({ log })
  const waitMs = options.addressWaitMs ?? 30_000
  const sealing = options.encryption ?? encryptedOverlays({ log })
  let node: { id: string; addr: string } | undefined
  let driver: NetworkDriver | undefined
  let swarm: SwarmNode | undefined
  let resolver: EmbeddedResolver | undefined
  let view: NodeView = EMPTY_VIEW
  let applied: Promise<void> = Promise.resolve()
  const waiters = new Set<() => void>()
  const overlay = new Map<string, Attachment>()
  const ingress: KernelIngress = kernelIngress({
    context: () => (driver && node ? { driver, node: node.id, prefix: overlayPrefix(node.id) } : undefined),
    addressOf: (id) => overlay.get(id)?.address,
    log,
  })

  const apply = () => {
    const s = swarm
    const v = view
    const n = node
    if (!s || !n) return
    applied = applied
      .then(async () => {
        await sealing.sync(v, n)
        await s.update(ingress.viewFor(sealing.sealedView(v)))
        ingress.follow(v)
      })
      .catch((err) => log(`overlay networks: applying the network view failed: ${(err as Error).message}`))
  }

  const wake = () => {
    for (const w of [...waiters]) w()
  }

  /** The task's entry in the view once it has its addresses on this node (waits for the managers). */
  const addressed = async (taskId: string, ingressToo: boolean) => {
    const deadline = Date.now() + waitMs
    for (;;) {
      const t = view.tasks.find((x) => x.id === taskId && x.node === node?.id)
      if (
        t &&
        Object.keys(t.addresses).length > 0 &&
        (!ingressToo || hasIngressAddress(view, node!.id, t.addresses))
      )
        return t
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no overlay address reached this node within ${waitMs} ms`)
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          waiters.delete(done)
          resolve()
        }
        const timer = setTimeout(done, Math.min(left, 1000))
        waiters.add(done)
      })
    }
  }

  const closeOverlay = async () => {
    await ingress.reset()
    for (const a of overlay.values()) a.forwarder?.close()
    overlay.clear()
    await applied
    await swarm?.close().catch((err) => log(`overlay networks: closing: ${(err as Error).message}`))
    await sealing.clear()
    await resolver?.close()
    await driver?.destroy().catch((err) => log(`overlay networks: cleaning up: ${(err as Error).message}`))
    swarm = undefined
    resolver = undefined
    driver = undefined
  }

  return {
    ingress,
    view: () => view,
    overlayTasks: () => [...overlay.keys()],

    networkView(update: NetworkViewUpdate) {
      view = applyViewUpdate(view, update)
      apply()
      wake()
    },

    async configure(next) {
      await local.configure?.(next)
      if (node?.id === next.id && node.addr === next.addr && swarm) return
      await closeOverlay()
      node = { id: next.id, addr: next.addr }
      await ingress.probe(next.addr)
      // Routed: host-mode published ports reach tasks through this namespace (isolation stays).
      driver = linuxDriver({ vtep: next.addr, prefix: overlayPrefix(next.id), routed: true })
      // Leftovers of an earlier run of this node (a crash) go first.
      await driver.destroy().catch((err) => log(`overlay networks: cleaning up: ${(err as Error).message}`))
      const directory = serviceDirectory()
      resolver = embeddedResolver({ directory, upstream: options.upstream ?? systemResolvers() })
      swarm = swarmNode({
        node: next.id,
        driver,
        directory,
        resolver,
        loadBalancer: serviceLoadBalancer(),
      })
      apply()
    },

    async prepare(task) {
      const nets = overlayNetworks(task)
      if (nets.length === 0 || !swarm) return
      // Without its addresses attach() falls back to the node-local network: only a refusal rejects.
      if (
        !(await addressed(task.taskId, false).then(
          () => true,
          () => false,
        ))
      )
        return
      await applied
      const refused = sealing.refusal(nets, view)
      if (refused) throw new UnsealedNetworkError(refused)
    },

    async attach(task, pid, callOptions) {
      const nets = overlayNetworks(task)
      const ingressToo = publishesThroughIngress(task) && ingress.usable
      if ((nets.length === 0 && !ingressToo) || !swarm) return local.attach(task, pid, callOptions)
      const known = overlay.get(task.taskId)
      if (known) return known.forwarder?.endpoint
      try {
        const t = await addressed(task.taskId, ingressToo)
        await applied
        const refused = sealing.refusal(nets, view)
        if (refused) throw new UnsealedNetworkError(refused)
        const sandbox = await swarm.attachTask(task.taskId, { pid })
        const first = sandbox.interfaces[0]
        const a: Attachment = first ? { address: first.address } : {}
        overlay.set(task.taskId, a)
        log(
          `task ${task.taskId}: ${sandbox.interfaces.map((i) => `${i.address} on ${i.network}`).join(', ')} (node ${t.node})`,
        )
        if (!first || !node) return undefined
        const forwarded = await forwardTaskPorts(node.addr, first.address, task.ports)
        a.forwarder = forwarded
        return forwarded.endpoint
      } catch (err) {
        if (err instanceof UnsealedNetworkError) throw err
        // The kernel path cannot run here: the task still gets the node-local network, and the node says so.
        log(
          `task ${task.taskId}: overlay networks not attached (${(err as Error).message}); using the node-local network`,
        )
        overlay.delete(task.taskId)
        await swarm?.detachTask(task.taskId).catch(() => {})
        return local.attach(task, pid, callOptions)
      }
    },

    async detach(taskId, callOptions) {
      const a = overlay.get(taskId)
      overlay.delete(taskId)
      a?.forwarder?.close()
      await swarm
        ?.detachTask(taskId)
        .catch((err) => log(`task ${taskId}: overlay sandbox: ${(err as Error).message}`))
      await local.detach(taskId, callOptions)
    },

    async close() {
      await ingress.close()
      await closeOverlay()
      await local.close()
    },
  }
}
