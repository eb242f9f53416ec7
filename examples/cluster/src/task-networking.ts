// Networking of a node's containers, as a CNI plugin gives it: a container starts with no network; once it
// runs, the overlay package's Linux driver joins its network namespace to a bridge of this node (the
// container's own address on it, its default route through the bridge) and the node forwards the task's
// endpoint — an ephemeral port on the node's address, which the routing mesh and host-mode ports reach —
// to the container's address and target port.
//
// The bridge is node-local, like swarm's docker_gwbridge: a link-local /24 (169.254.N.0/24, N from the
// node's ID) with no VXLAN peers, so no packet leaves the machine. Attachments with an address the managers
// allocated (on an overlay network) are where cross-node VXLAN, VIPs and DNS plug in: the driver already
// creates those networks' bridges and peers; this module then adds their endpoints to the same sandbox.

import { createHash } from 'node:crypto'
import { checkLinuxDriver, linuxDriver, type NetworkDriver } from '@swarmkit/overlay'
import type { Assignment } from './dispatcher.js'
import type { TaskNetworking } from './docker-executor.js'
import { forwardTaskPorts, type TaskEndpoint } from './endpoint-forwarder.js'

export interface LocalTaskNetworkingOptions {
  readonly log?: (line: string) => void
}

interface Attached {
  address: string
  forwarder?: { endpoint: TaskEndpoint | undefined; close(): void }
  endpoint?: TaskEndpoint
}

export interface LocalTaskNetworking extends TaskNetworking {
  /** The bridge's subnet (once configured). */
  readonly subnet: string | undefined
  /** Sandboxes (task IDs) attached now. */
  attached(): string[]
  /** Removes every sandbox and the bridge (containers keep running, without network). */
  close(): Promise<void>
}

/** Whether this machine can give containers a network (Linux, iproute2, root). */
export async function taskNetworkingSupported(): Promise<boolean> {
  try {
    await checkLinuxDriver()
    return true
  } catch {
    return false
  }
}

/** The node-local bridge of a node: subnet, device prefix and VNI, all derived from its ID. */
function bridgeOf(nodeId: string) {
  const hash = createHash('sha256').update(nodeId).digest()
  // 169.254.N.0/24 with N in 1..250, never 169 (the cloud metadata address lives in 169.254.169.0/24).
  let n = 1 + (hash.readUInt16BE(0) % 250)
  if (n === 169) n = 170
  return {
    base: `169.254.${n}`,
    subnet: `169.254.${n}.0/24`,
    // One prefix per node: a lowercase letter and four base-36 digits.
    prefix: `t${hash.readUInt32BE(2).toString(36).padStart(4, '0').slice(-4)}`,
    vni: 0x100000 + (hash.readUInt32BE(6) % 0xeffff),
  }
}

export function localTaskNetworking(options: LocalTaskNetworkingOptions = {}): LocalTaskNetworking {
  const network = 'local'
  const log = options.log ?? (() => {})
  const tasks = new Map<string, Attached>()
  let node: { id: string; addr: string } | undefined
  let bridge: ReturnType<typeof bridgeOf> | undefined
  let driver: NetworkDriver | undefined
  let ready: Promise<void> | undefined
  let queue: Promise<unknown> = Promise.resolve()

  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn)
    queue = next.catch(() => {})
    return next
  }

  const ensureNetwork = () => {
    if (!driver || !bridge) throw new Error('task networking is not configured with a node')
    const b = bridge
    ready ??= driver
      .createNetwork({ id: network, vni: b.vni, subnet: b.subnet, gateway: `${b.base}.1`, mtu: 1500 })
      .catch((err) => {
        ready = undefined
        throw err
      })
    return ready
  }

  const teardown = async () => {
    for (const t of tasks.values()) unforward(t)
    tasks.clear()
    ready = undefined
    await driver?.destroy()
  }

  const freeAddress = (): string => {
    const used = new Set([...tasks.values()].map((t) => t.address))
    for (let i = 2; i < 255; i++) if (!used.has(`${bridge!.base}.${i}`)) return `${bridge!.base}.${i}`
    throw new Error(`no free address left on ${bridge!.subnet}`)
  }

  const unforward = (t: Attached) => {
    t.forwarder?.close()
    t.forwarder = undefined
    t.endpoint = undefined
  }

  return {
    get subnet() {
      return bridge?.subnet
    },
    attached: () => [...tasks.keys()],
    configure(next) {
      return serialized(async () => {
        if (node?.id === next.id && node.addr === next.addr) return
        await teardown()
        node = { id: next.id, addr: next.addr }
        bridge = bridgeOf(next.id)
        driver = linuxDriver({ vtep: '127.0.0.1', prefix: bridge.prefix })
        // Leftovers of an earlier run of this node (a crash) go first.
        await driver.destroy().catch((err) => log(`task networking: cleaning up: ${(err as Error).message}`))
      })
    },
    attach(task: Assignment, pid: number) {
      return serialized(async () => {
        const known = tasks.get(task.taskId)
        if (known?.endpoint) return known.endpoint
        await ensureNetwork()
        const t: Attached = known ?? { address: freeAddress() }
        tasks.set(task.taskId, t)
        try {
          await driver!.createSandbox({ id: task.taskId, endpoints: [{ network, address: t.address }], pid })
        } catch (err) {
          tasks.delete(task.taskId)
          throw err
        }
        t.forwarder = await forwardTaskPorts(node!.addr, t.address, task.ports)
        t.endpoint = t.forwarder.endpoint
        if (!t.endpoint) return undefined
        log(
          `task ${task.taskId}: ${t.address} on ${bridge!.subnet}, reached at ${t.endpoint.ports.map((p) => `${t.endpoint!.address}:${p.port} (${p.protocol}/${p.targetPort})`).join(', ')}`,
        )
        return t.endpoint
      })
    },
    detach(taskId: string) {
      return serialized(async () => {
        const t = tasks.get(taskId)
        if (t) unforward(t)
        tasks.delete(taskId)
        await driver?.removeSandbox(taskId)
      })
    },
    close() {
      return serialized(teardown)
    },
  }
}
