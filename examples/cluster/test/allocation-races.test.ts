// Allocations made on two managers at once. A service's VIPs and published ingress ports, and a network's
// subnet and VXLAN ID, are allocated in the API transaction of whichever manager serves the request, from
// that manager's replica; task addresses by the leader's allocator. Each transaction is valid on the state it
// read, so without a check at apply two of them that crossed in the log could hand one address, port, subnet
// or VNI to two holders. The store refuses, as it applies, a command that takes what another holder has (as
// it refuses a duplicate name), and the losing transaction runs again on the newer state.
import { ClusterStore, generateId, type PortConfig, type Proposer, type ServiceSpec } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { allocateEndpoint, createNetwork } from '../src/allocator.js'
import { TaskAddressLoop } from '../src/task-address-loop.js'
import { sharedAddresses, taskOf } from './store-fixtures.js'

/**
 * Two replicas of one log. `first` runs before replica 0's next proposal is appended: another manager's
 * transaction that reached the log while replica 0's was on its way.
 */
function twoManagers() {
  let index = 0
  const stores: ClusterStore[] = []
  const race: { first?: () => Promise<unknown> } = {}
  const append = (cmd: Uint8Array) => {
    index++
    for (const s of stores) s.apply(cmd, index)
    return { index }
  }
  const proposer =
    (i: number): Proposer =>
    async (cmd) => {
      await Promise.resolve()
      const first = i === 0 ? race.first : undefined
      if (first) {
        race.first = undefined
        await first()
      }
      return append(cmd)
    }
  stores.push(new ClusterStore({ proposer: proposer(0) }), new ClusterStore({ proposer: proposer(1) }))
  return { a: stores[0]!, b: stores[1]!, race }
}

function spec(name: string, network: string | undefined): ServiceSpec {
  return {
    name,
    labels: {},
    taskTemplate: { containerSpec: { image: 'busybox' }, networks: network ? [{ target: network }] : [] },
    mode: { replicated: { replicas: 1 } },
    endpointSpec: { mode: 'vip' },
  }
}

const createService = (
  store: ClusterStore,
  name: string,
  network: string | undefined,
  ports: PortConfig[] = [],
) =>
  store.update((tx) => {
    const id = generateId()
    const s = { ...spec(name, network), endpointSpec: { mode: 'vip' as const, ports } }
    return tx.create('services', { id, spec: s, endpoint: allocateEndpoint(tx, id, s) })
  })

const ingressPort = (publishedPort: number): PortConfig => ({
  protocol: 'tcp',
  targetPort: 80,
  publishedPort,
  publishMode: 'ingress',
})

const until = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

describe('allocations made on two managers at once', () => {
  it('gives two services created at once on two managers different VIPs', async () => {
    const { a, b, race } = twoManagers()
    const net = await a.update((tx) =>
      createNetwork(tx, { name: 'net0', labels: {}, driverConfig: { name: 'overlay' } }),
    )
    race.first = () => createService(b, 'from-b', net)
    await createService(a, 'from-a', net)
    for (const store of [a, b]) {
      expect(store.view((tx) => tx.find('services').length)).toBe(2)
      expect([...store.view(sharedAddresses).keys()]).toEqual([])
    }
  })

  it("gives a follower's new VIP and the leader's task addresses different addresses", async () => {
    const { a, b, race } = twoManagers()
    const net = await b.update((tx) =>
      createNetwork(tx, { name: 'net0', labels: {}, driverConfig: { name: 'overlay' } }),
    )
    const web = await createService(b, 'web', net)
    const loop = new TaskAddressLoop({ store: a, retryMs: 2 })
    loop.start()
    try {
      await until('the allocator to start', () => loop.settled())
      // The allocator's transaction for these tasks meets a VIP another manager allocated meanwhile.
      race.first = () => createService(b, 'api', net)
      await b.update((tx) => {
        for (let i = 1; i <= 4; i++) tx.create('tasks', taskOf(web, i, 'running'))
      })
      await until(
        'the tasks addressed',
        () =>
          loop.settled() &&
          a.view((tx) => tx.find('tasks').every((t) => t.networks[0]!.addresses.length === 1)),
      )
      expect(race.first).toBeUndefined()
      for (const store of [a, b]) {
        expect(store.view((tx) => tx.find('services').length)).toBe(2)
        expect([...store.view(sharedAddresses).keys()]).toEqual([])
      }
    } finally {
      await loop.stop()
    }
  })

  it('gives two networks created at once on two managers different subnets and VXLAN IDs', async () => {
    const { a, b, race } = twoManagers()
    race.first = () =>
      b.update((tx) => createNetwork(tx, { name: 'from-b', labels: {}, driverConfig: { name: 'overlay' } }))
    await a.update((tx) =>
      createNetwork(tx, { name: 'from-a', labels: {}, driverConfig: { name: 'overlay' } }),
    )
    for (const store of [a, b]) {
      const nets = store.view((tx) => tx.find('networks'))
      expect(nets.length).toBe(2)
      expect(new Set(nets.map((n) => n.vni)).size).toBe(2)
      expect(new Set(nets.map((n) => n.ipam?.configs[0]?.subnet)).size).toBe(2)
    }
  })

  it('gives two services created at once on two managers different dynamic ports, and one a fixed port', async () => {
    // No network, so no VIP: only the ports can collide.
    const { a, b, race } = twoManagers()
    const net = undefined
    race.first = () => createService(b, 'dyn-b', net, [ingressPort(0)])
    await createService(a, 'dyn-a', net, [ingressPort(0)])
    const published = (store: ClusterStore) =>
      store.view((tx) =>
        tx.find('services').flatMap((s) => s.endpoint?.ports.map((p) => p.publishedPort) ?? []),
      )
    for (const store of [a, b]) expect(new Set(published(store)).size).toBe(2)
    // Both ask for port 8089: one gets it, the other is told it is taken.
    race.first = () => createService(b, 'fixed-b', net, [ingressPort(8089)])
    await expect(createService(a, 'fixed-a', net, [ingressPort(8089)])).rejects.toThrow(
      /8089\/tcp is already in use by service/,
    )
    for (const store of [a, b]) expect(published(store).filter((p) => p === 8089).length).toBe(1)
  })
})
