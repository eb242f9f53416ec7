import { describe, expect, it } from 'vitest'
import { type ClusterView, ipam, memoryDriver, nodeDataPlane, vniAllocator } from '../src/index.js'

function cluster(): ClusterView {
  const a = ipam()
  const v = vniAllocator()
  const nodes = [
    { id: 'n1', vtep: '198.18.0.1' },
    { id: 'n2', vtep: '198.18.0.2' },
    { id: 'n3', vtep: '198.18.0.3' },
  ]
  const net = (id: string, withNodes: boolean) => {
    const s = a.allocateSubnet(id)
    return {
      id,
      vni: v.allocate(id),
      ...s,
      ...(withNodes
        ? { nodeAddresses: Object.fromEntries(nodes.map((n) => [n.id, a.allocateAddress(id)])) }
        : {}),
    }
  }
  const networks = [net('ingress', true), net('app', false)]
  const task = (id: string, node: string, ...nets: string[]) => ({
    id,
    node,
    endpoints: nets.map((network) => ({ network, address: a.allocateAddress(network) })),
  })
  return {
    nodes,
    networks,
    tasks: [
      task('web1', 'n1', 'ingress', 'app'),
      task('web2', 'n2', 'ingress', 'app'),
      task('db1', 'n2', 'app'),
    ],
  }
}

describe('nodeDataPlane', () => {
  it("gives a node its networks, the other nodes' endpoints as peers, and its own tasks as sandboxes", () => {
    const view = cluster()
    const n3 = nodeDataPlane(view, 'n3')
    // n3 runs nothing but has an ingress address (for the mesh): ingress only, every remote endpoint.
    expect(n3.networks.map((n) => [n.id, n.nodeAddress])).toEqual([['ingress', '10.0.0.4']])
    expect(n3.sandboxes).toEqual([])
    expect(n3.peers!.ingress!.map((p) => `${p.address}@${p.vtep}`)).toEqual([
      '10.0.0.2@198.18.0.1',
      '10.0.0.3@198.18.0.2',
      '10.0.0.5@198.18.0.1',
      '10.0.0.6@198.18.0.2',
    ])
    const n2 = nodeDataPlane(view, 'n2')
    expect(n2.networks.map((n) => n.id)).toEqual(['app', 'ingress'])
    expect(n2.sandboxes.map((s) => s.id)).toEqual(['db1', 'web2'])
    expect(n2.peers!.app!.map((p) => p.address)).toEqual(['10.0.1.2'])
  })

  it('feeds drivers so that tasks reach each other on shared networks only', async () => {
    const view = cluster()
    const drivers = new Map(view.nodes.map((n) => [n.id, memoryDriver({ vtep: n.vtep })]))
    for (const [id, d] of drivers) await d.reconcile(nodeDataPlane(view, id))
    const addr = (task: string, network: string) =>
      view.tasks.find((t) => t.id === task)!.endpoints.find((e) => e.network === network)!.address
    expect(drivers.get('n1')!.reaches('web1', addr('db1', 'app'))).toBe(true)
    expect(drivers.get('n2')!.reaches('db1', addr('web1', 'app'))).toBe(true)
    expect(drivers.get('n2')!.reaches('db1', addr('web1', 'ingress'))).toBe(false)
    expect((await drivers.get('n3')!.inspect()).networks.map((n) => n.id)).toEqual(['ingress'])
  })
})
