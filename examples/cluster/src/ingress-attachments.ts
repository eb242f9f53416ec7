// The ingress network's attachments (swarm's allocator does the same for its ingress routing mesh): every
// live task of a service that publishes a port is attached to the `ingress` overlay network with an
// address, and, once any task is, every node gets an address there for its ingress sandbox
// (`node.attachments`, Docker's ingress load-balancer endpoint). A published port on any node is then
// carried in the kernel from that node's ingress sandbox to a task on any node over VXLAN. Host-mode ports
// reach their task there too (its first address, where its default route points: swarm uses its
// docker_gwbridge for that, which this cluster does not have).

import { rebuildIpam } from '@swarmkit/overlay'
import type { ClusterStore, Network, Node, ReadTx, Task, Tx } from '@swarmkit/store'
import { heldAddresses, holdsAddresses } from './task-addresses.js'

/** The swarm's ingress network, when it has what the data plane needs (a VNI and a subnet with a gateway). */
export function ingressNetwork(tx: ReadTx): Network | undefined {
  const n = tx.find('networks').find((x) => x.spec.ingress === true && !x.pendingDelete)
  const c = n?.ipam?.configs[0]
  return n && n.vni !== undefined && c?.subnet && c.gateway ? n : undefined
}

/** Whether a task's service publishes a port (either mode). */
export function publishesPorts(t: Pick<Task, 'endpoint'>): boolean {
  return (t.endpoint?.ports ?? []).some((p) => p.publishedPort > 0)
}

const attachedTo = (list: Task['networks'] | undefined, net: string) =>
  (list ?? []).find((a) => a.networkId === net && a.addresses.length > 0)

function tasksNeeding(tx: ReadTx, net: string): Task[] {
  return tx.find(
    'tasks',
    undefined,
    (t) => holdsAddresses(t) && publishesPorts(t) && !attachedTo(t.networks, net),
  )
}

function nodesNeeding(tx: ReadTx, net: string): Node[] {
  return tx.find('nodes').filter((n) => !!n.status.addr && !attachedTo(n.attachments, net))
}

/** Whether some live task is on the ingress network (the nodes' sandboxes are only needed then). */
function ingressInUse(tx: ReadTx, net: string): boolean {
  return tx.find('tasks', undefined, (t) => holdsAddresses(t) && !!attachedTo(t.networks, net)).length > 0
}

/** Attaches what needs an ingress address; returns how many objects changed. */
export async function allocateIngressAddresses(
  store: Pick<ClusterStore, 'view' | 'update'>,
): Promise<number> {
  const pending = store.view((tx) => {
    const n = ingressNetwork(tx)
    if (!n) return false
    const tasks = tasksNeeding(tx, n.id).length
    return tasks > 0 || ((ingressInUse(tx, n.id) || tasks > 0) && nodesNeeding(tx, n.id).length > 0)
  })
  if (!pending) return 0
  let changed = 0
  await store.update((tx) => {
    changed = attachIngress(tx)
  })
  return changed
}

/** In one transaction: the tasks' ingress attachments, then the nodes' (one IPAM over everything held). */
export function attachIngress(tx: Tx): number {
  const net = ingressNetwork(tx)
  if (!net) return 0
  const subnet = net.ipam!.configs[0]!.subnet
  const bits = subnet.split('/')[1]
  const ipam = rebuildIpam({
    subnets: [{ network: net.id, subnet, gateway: net.ipam!.configs[0]!.gateway ?? '' }],
    addresses: heldAddresses(tx, new Set([net.id])),
  })
  const allocate = () => ({ networkId: net.id, addresses: [`${ipam.allocateAddress(net.id)}/${bits}`] })
  let changed = 0
  for (const t of tasksNeeding(tx, net.id)) {
    const others = t.networks.filter((a) => a.networkId !== net.id)
    tx.update('tasks', { ...t, networks: [...others, allocate()] })
    changed++
  }
  if (changed > 0 || ingressInUse(tx, net.id))
    for (const n of nodesNeeding(tx, net.id)) {
      const others = (n.attachments ?? []).filter((a) => a.networkId !== net.id)
      tx.update('nodes', { ...n, attachments: [...others, allocate()] })
      changed++
    }
  return changed
}

/** A task's attachments but the ingress one. */
export function withoutIngress(tx: ReadTx, list: Task['networks']): Task['networks'] {
  if (!list.some((a) => a.addresses.length > 0)) return list
  const ingress = ingressNetwork(tx)?.id
  return ingress === undefined ? list : list.filter((a) => a.networkId !== ingress)
}
