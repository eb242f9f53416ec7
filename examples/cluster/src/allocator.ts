// Allocation inside the store transaction that writes the object: a service's endpoint (published ingress
// ports from overlay's port allocator, dynamic ones from 30000-32767, and a virtual IP on each network the
// service attaches to, from overlay's IPAM), and a network's subnet and VXLAN ID. The allocators are rebuilt
// from the store each time, so every manager allocates alike and nothing is held outside the replicated state.

import { portAllocator, rebuildIpam, vniAllocator } from '@swarmkit/overlay'
import { type Endpoint, generateId, type PortConfig, type ServiceSpec, type Tx } from '@swarmkit/store'
import { heldAddresses } from './task-addresses.js'

export function allocateEndpoint(tx: Tx, serviceId: string, spec: ServiceSpec): Endpoint {
  const services = tx.find('services').filter((s) => s.id !== serviceId)
  const current = tx.get('services', serviceId)
  const endpointSpec = spec.endpointSpec ?? { mode: 'vip' as const }
  const wanted = endpointSpec.ports ?? []

  const ports = portAllocator()
  for (const s of [...services, ...(current ? [current] : [])]) {
    const held = (s.endpoint?.ports ?? []).filter((p) => p.publishMode === 'ingress')
    if (held.length > 0)
      ports.allocate(
        s.id,
        held.map((p) => ({
          protocol: p.protocol,
          targetPort: p.targetPort,
          publishedPort: p.publishedPort,
          publishMode: 'ingress',
        })),
      )
  }
  // A dynamic port keeps its number across updates (the allocator treats a re-allocation as an update).
  const ingress = wanted.filter((p) => p.publishMode === 'ingress')
  const allocated = ports.allocate(
    serviceId,
    ingress.map((p) => {
      const kept = current?.endpoint?.ports.find(
        (q) => q.publishMode === 'ingress' && q.protocol === p.protocol && q.targetPort === p.targetPort,
      )
      const publishedPort = p.publishedPort || kept?.publishedPort
      return {
        protocol: p.protocol,
        targetPort: p.targetPort,
        publishMode: 'ingress',
        ...(publishedPort ? { publishedPort } : {}),
      }
    }),
  )
  const endpointPorts: PortConfig[] = [
    ...ingress.map((p, i) => ({ ...p, publishedPort: allocated[i]?.publishedPort ?? p.publishedPort })),
    ...wanted.filter((p) => p.publishMode === 'host'),
  ]

  // Virtual IPs: on each attached network, and on ingress when a port is published there.
  const networks = tx.find('networks')
  const targets = new Set((spec.taskTemplate.networks ?? []).map((n) => n.target))
  const ingressNet = networks.find((n) => n.spec.ingress)
  if (ingressNet && ingress.length > 0) targets.add(ingressNet.id)
  const virtualIPs: Endpoint['virtualIPs'] = []
  if (endpointSpec.mode === 'vip' && targets.size > 0) {
    const addresses = rebuildIpam({
      subnets: networks.flatMap((n) =>
        (n.ipam?.configs ?? []).map((c) => ({ network: n.id, subnet: c.subnet, gateway: c.gateway ?? '' })),
      ),
      // Every address in use on the target networks but this service's own VIPs (kept below): other VIPs,
      // the tasks' and the nodes' addresses. Other networks' addresses don't constrain these.
      addresses: heldAddresses(tx, targets).filter(
        (a) =>
          !current?.endpoint?.virtualIPs.some(
            (v) => v.networkId === a.network && v.addr.split('/')[0] === a.address,
          ),
      ),
    })
    for (const id of targets) {
      const net = networks.find((n) => n.id === id)
      if (!net) continue
      const kept = current?.endpoint?.virtualIPs.find((v) => v.networkId === id)
      const prefix = net.ipam?.configs[0]?.subnet.split('/')[1] ?? '24'
      if (kept) {
        addresses.allocateAddress(id, { address: kept.addr.split('/')[0]! })
        virtualIPs.push(kept)
      } else virtualIPs.push({ networkId: id, addr: `${addresses.allocateAddress(id)}/${prefix}` })
    }
  }
  return { spec: endpointSpec, ports: endpointPorts, virtualIPs }
}

/**
 * Creates a network with its subnet and VXLAN ID allocated (overlay's IPAM and VNI allocators, rebuilt from
 * the networks in the store so that any manager allocates the same way).
 */
export function createNetwork(
  tx: Tx,
  spec: {
    name: string
    labels: Record<string, string>
    driverConfig: { name: string; options?: Record<string, string> }
    ingress?: boolean
    attachable?: boolean
    internal?: boolean
  },
): string {
  const nets = tx.find('networks')
  const addresses = rebuildIpam({
    subnets: nets.flatMap((n) =>
      (n.ipam?.configs ?? []).map((c) => ({ network: n.id, subnet: c.subnet, gateway: c.gateway ?? '' })),
    ),
    addresses: [],
  })
  const vnis = vniAllocator()
  for (const n of nets) if (n.vni !== undefined) vnis.reserve(n.id, n.vni)
  const id = generateId()
  const { subnet, gateway } = addresses.allocateSubnet(id)
  const vni = vnis.allocate(id)
  tx.create('networks', {
    id,
    spec: { ...spec },
    driverState: { name: spec.driverConfig.name, options: { ...(spec.driverConfig.options ?? {}) } },
    vni,
    ipam: { driver: { name: 'default' }, configs: [{ family: 'ipv4', subnet, gateway }] },
  })
  return id
}
