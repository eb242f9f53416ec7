// The ingress network in the nodes' network views. Every node's ingress sandbox is an endpoint on the
// `ingress` overlay network, listed in the view as a task of no service named `ingress-sbox:<node ID>` (never
// healthy, so it backs no VIP and answers no name): the other nodes then hold forwarding entries towards it
// (the tasks' replies go back to the sandbox that translated the request), and a node finds its own
// ingress network and address in its view. The worker's kernel ingress (kernel-ingress.ts) reads it back.

import type { OverlayNetwork, SwarmView } from '@swarmkit/overlay'
import type { ReadTx, Task } from '@swarmkit/store'
import { ingressNetwork } from './ingress-attachments.js'

type ViewTask = SwarmView['tasks'][number]

const SANDBOX_PREFIX = 'ingress-sbox:'

/** The view ID of a node's ingress sandbox. */
export function ingressSandboxId(nodeId: string): string {
  return `${SANDBOX_PREFIX}${nodeId}`
}

/** Whether a view task is a node's ingress sandbox. */
export function isIngressSandbox(id: string): boolean {
  return id.startsWith(SANDBOX_PREFIX)
}

/**
 * The nodes' ingress sandboxes as view tasks, by network (only while some task is on the ingress network:
 * the nodes need the network only then).
 */
export function ingressSandboxes(
  tx: ReadTx,
  networks: ReadonlyMap<string, OverlayNetwork>,
  tasksOn: ReadonlyMap<string, Task[]>,
): Map<string, ViewTask[]> {
  const out = new Map<string, ViewTask[]>()
  const net = ingressNetwork(tx)
  if (!net || !networks.has(net.id) || !tasksOn.get(net.id)?.length) return out
  const list: ViewTask[] = []
  for (const n of tx.find('nodes')) {
    const a = n.attachments?.find((x) => x.networkId === net.id && x.addresses.length > 0)
    if (!a || !n.status.addr) continue
    list.push({
      id: ingressSandboxId(n.id),
      name: '',
      node: n.id,
      addresses: { [net.id]: a.addresses[0]!.split('/')[0]! },
      healthy: false,
    })
  }
  out.set(net.id, list)
  return out
}

/** What a node's view says of its own ingress sandbox: the ingress network and its address there. */
export function ownIngress(
  view: SwarmView,
  nodeId: string,
): { network: OverlayNetwork; address: string } | undefined {
  const me = view.tasks.find((t) => t.id === ingressSandboxId(nodeId) && t.node === nodeId)
  if (!me) return undefined
  for (const [id, address] of Object.entries(me.addresses)) {
    const network = view.networks.find((n) => n.id === id)
    if (network) return { network, address }
  }
  return undefined
}

/** Whether a task publishes a port (it then gets an ingress address, see ingress-attachments.ts). */
export function publishesThroughIngress(task: {
  readonly ports?: ReadonlyArray<{ readonly publishedPort: number }>
}): boolean {
  return (task.ports ?? []).some((p) => p.publishedPort > 0)
}

/**
 * Whether a view task of this node has every address its container needs before it is attached: its
 * ingress address too when it publishes a port (allocated just after the others).
 */
export function hasIngressAddress(
  view: SwarmView,
  nodeId: string,
  addresses: Record<string, string>,
): boolean {
  const own = ownIngress(view, nodeId)
  return own !== undefined && addresses[own.network.id] !== undefined
}
