// What the allocators hand out is unique: network addresses (a service's VIPs, a live task's addresses and a
// node's attachment addresses, per network), published ingress ports, subnets and VXLAN IDs. Checked as a
// transaction writes and again as its command applies, so two transactions that read the same state on two
// members and crossed in the log cannot both take one.
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import {
  ClusterStore,
  type NewObject,
  type Proposer,
  type Service,
  StoreError,
  type Task,
} from '../src/index.js'
import { network, node, service, task } from './fixtures.js'

const at = (t: NewObject<Task>, net: string, addr: string): NewObject<Task> => ({
  ...t,
  networks: [{ networkId: net, addresses: [addr] }],
})
const withVip = (s: NewObject<Service>, net: string, addr: string): NewObject<Service> => ({
  ...s,
  endpoint: { spec: { mode: 'vip' }, ports: [], virtualIPs: [{ networkId: net, addr }] },
})

async function refused(p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).code).toBe('ALLOCATION_CONFLICT')
  return err as StoreError
}

async function seeded(): Promise<ClusterStore> {
  const store = new ClusterStore()
  await store.update((tx) => {
    tx.create('networks', network('n1', 'front'))
    tx.create('networks', network('n2', 'back'))
    tx.create('tasks', at(task('t1', 's1', 1), 'n1', '10.1.0.2/24'))
  })
  return store
}

describe('held addresses', () => {
  it('refuses a second live holder of an address on one network, whatever its prefix length', async () => {
    const store = await seeded()
    const err = await refused(
      store.update((tx) => tx.create('tasks', at(task('t2', 's1', 2), 'n1', '10.1.0.2/16'))),
    )
    expect(err.message).toBe('address 10.1.0.2 on network n1 is already in use (task t1)')
    // The same address on another network is another address.
    await store.update((tx) => tx.create('tasks', at(task('t3', 's1', 3), 'n2', '10.1.0.2/24')))
    expect(store.view((tx) => tx.find('tasks').length)).toBe(2)
  })

  it('checks services, tasks and nodes against each other', async () => {
    const store = await seeded()
    await refused(
      store.update((tx) => tx.create('services', withVip(service('s9', 'web'), 'n1', '10.1.0.2/24'))),
    )
    await store.update((tx) => tx.create('services', withVip(service('s9', 'web'), 'n1', '10.1.0.3/24')))
    await refused(store.update((tx) => tx.create('tasks', at(task('t4', 's1', 4), 'n1', '10.1.0.3/24'))))
    await refused(
      store.update((tx) =>
        tx.create('nodes', { ...node('w1'), attachments: [{ networkId: 'n1', addresses: ['10.1.0.3/24'] }] }),
      ),
    )
    expect(store.view((tx) => tx.find('services').length)).toBe(1)
  })

  it("frees a finished task's address, also within the transaction that finishes it", async () => {
    const store = await seeded()
    await store.update((tx) => {
      const t1 = tx.get('tasks', 't1')!
      tx.update('tasks', { ...t1, status: { ...t1.status, state: 'shutdown' } })
      tx.create('tasks', at(task('t2', 's1', 2), 'n1', '10.1.0.2/24'))
    })
    expect(
      store.view((tx) =>
        tx.find('tasks', { heldAddress: { networkId: 'n1', address: '10.1.0.2' } }).map((t) => t.id),
      ),
    ).toEqual(['t2'])
  })

  it('lets an object keep, and be rewritten with, an address it already holds', async () => {
    const store = await seeded()
    await store.update((tx) => {
      const t1 = tx.get('tasks', 't1')!
      tx.update('tasks', { ...t1, status: { ...t1.status, state: 'running' } })
    })
    expect(store.view((tx) => tx.get('tasks', 't1')!.status.state)).toBe('running')
  })

  it('checks each address an object gains, also when it keeps others', async () => {
    const store = await seeded()
    await store.update((tx) => tx.create('services', withVip(service('s9', 'web'), 'n2', '10.1.0.2/24')))
    // The service attaches to n1 too: its new VIP there must not be t1's address.
    const err = await refused(
      store.update((tx) => {
        const s = tx.get('services', 's9')!
        const vips = [...s.endpoint!.virtualIPs, { networkId: 'n1', addr: '10.1.0.2/24' }]
        tx.update('services', { ...s, endpoint: { ...s.endpoint!, virtualIPs: vips } })
      }),
    )
    expect(err.message).toMatch(/10\.1\.0\.2 on network n1 .*task t1/)
  })

  it('refuses at apply the second of two commands that crossed in the log, and the loser runs again', async () => {
    let index = 0
    const members: ClusterStore[] = []
    const race: { first?: () => Promise<unknown> } = {}
    const proposer =
      (i: number): Proposer =>
      async (cmd) => {
        await Promise.resolve()
        const first = i === 0 ? race.first : undefined
        race.first = i === 0 ? undefined : race.first
        if (first) await first()
        index++
        for (const m of members) m.apply(cmd, index)
        return { index }
      }
    members.push(new ClusterStore({ proposer: proposer(0) }), new ClusterStore({ proposer: proposer(1) }))
    const [a, b] = members as [ClusterStore, ClusterStore]
    await a.update((tx) => tx.create('networks', network('n1', 'front')))
    // Each takes the lowest address free on the state it reads.
    const lowestFree = (tx: Parameters<Parameters<ClusterStore['update']>[0]>[0]) => {
      for (let i = 2; ; i++)
        if (tx.find('tasks', { heldAddress: { networkId: 'n1', address: `10.1.0.${i}` } }).length === 0)
          return `10.1.0.${i}/24`
    }
    let runs = 0
    race.first = () => b.update((tx) => tx.create('tasks', at(task('tb', 's1', 2), 'n1', lowestFree(tx))))
    await a.update((tx) => {
      runs++
      tx.create('tasks', at(task('ta', 's1', 1), 'n1', lowestFree(tx)))
    })
    expect(runs).toBe(2)
    for (const m of members)
      expect(
        m.view((tx) =>
          tx
            .find('tasks')
            .map((t) => `${t.id} ${t.networks[0]!.addresses[0]}`)
            .sort(),
        ),
      ).toEqual(['ta 10.1.0.3/24', 'tb 10.1.0.2/24'])
  })

  it('never blocks a write for duplicates written before the check existed', async () => {
    const old = new ClusterStore()
    await old.update((tx) => {
      tx.create('networks', network('n1', 'front'))
      tx.create('tasks', at(task('t1', 's1', 1), 'n1', '10.1.0.2/24'))
      tx.create('tasks', at(task('t2', 's1', 2), 'n1', '10.1.0.9/24'))
    })
    // The snapshot such a store would have written: t2 holding t1's address too.
    const packr = new Packr({
      useRecords: false,
      moreTypes: false,
      mapsAsObjects: true,
      int64AsType: 'number',
    })
    const snap = packr.unpack(old.snapshot()) as [string, number, number, Record<string, any>[][], unknown]
    for (const list of snap[3])
      for (const o of list) if (o.id === 't2') o.networks = [{ networkId: 'n1', addresses: ['10.1.0.2/24'] }]
    const store = new ClusterStore()
    store.restore(packr.pack(snap))
    expect(
      store.view((tx) => tx.find('tasks', { heldAddress: { networkId: 'n1', address: '10.1.0.2' } }).length),
    ).toBe(2)
    // Both holders can still be written; the address is still not handed to a third.
    for (const id of ['t1', 't2'])
      await store.update((tx) => {
        const t = tx.get('tasks', id)!
        tx.update('tasks', { ...t, status: { ...t.status, state: 'running' } })
      })
    await refused(store.update((tx) => tx.create('tasks', at(task('t3', 's1', 3), 'n1', '10.1.0.2/24'))))
  })

  it('refuses a published ingress port another service has, but not a host-mode one or another protocol', async () => {
    const store = new ClusterStore()
    const publishing = (
      id: string,
      name: string,
      port: number,
      protocol: 'tcp' | 'udp',
      mode: 'ingress' | 'host',
    ) => ({
      ...service(id, name),
      endpoint: {
        spec: { mode: 'vip' as const },
        ports: [{ protocol, targetPort: 80, publishedPort: port, publishMode: mode }],
        virtualIPs: [],
      },
    })
    await store.update((tx) => tx.create('services', publishing('s1', 'a', 8080, 'tcp', 'ingress')))
    const err = await refused(
      store.update((tx) => tx.create('services', publishing('s2', 'b', 8080, 'tcp', 'ingress'))),
    )
    expect(err.message).toBe('port 8080/tcp is already in use by service s1 as an ingress port')
    await store.update((tx) => tx.create('services', publishing('s3', 'c', 8080, 'udp', 'ingress')))
    await store.update((tx) => tx.create('services', publishing('s4', 'd', 8080, 'tcp', 'host')))
    // Its owner keeps it through an update; once it lets go, another may take it.
    await store.update((tx) => {
      const s1 = tx.get('services', 's1')!
      tx.update('services', { ...s1, spec: { ...s1.spec, labels: { a: 'b' } } })
    })
    await store.update((tx) => {
      tx.delete('services', 's1')
      tx.create('services', publishing('s5', 'e', 8080, 'tcp', 'ingress'))
    })
    expect(
      store.view((tx) =>
        tx
          .find('services')
          .map((s) => s.id)
          .sort(),
      ),
    ).toEqual(['s3', 's4', 's5'])
  })

  it("refuses a network another network's subnet or VXLAN ID", async () => {
    const store = new ClusterStore()
    const net = (id: string, name: string, vni: number, subnet: string) => ({
      ...network(id, name),
      vni,
      ipam: { driver: { name: 'default' }, configs: [{ subnet, gateway: subnet.replace(/0\/\d+$/, '1') }] },
    })
    await store.update((tx) => tx.create('networks', net('n1', 'a', 4097, '10.0.1.0/24')))
    expect(
      (await refused(store.update((tx) => tx.create('networks', net('n2', 'b', 4097, '10.0.2.0/24')))))
        .message,
    ).toBe('VXLAN ID 4097 is already in use (network n1)')
    expect(
      (await refused(store.update((tx) => tx.create('networks', net('n2', 'b', 4098, '10.0.1.0/24')))))
        .message,
    ).toBe('subnet 10.0.1.0/24 is already in use (network n1)')
    await store.update((tx) => tx.create('networks', net('n2', 'b', 4098, '10.0.2.0/24')))
  })

  it('types a malformed selector', () => {
    const store = new ClusterStore()
    expect(() => store.view((tx) => tx.find('tasks', { heldAddress: null } as never))).toThrow(TypeError)
    expect(() =>
      store.view((tx) => tx.find('tasks', { heldAddress: { networkId: 'n1', address: 5 } } as never)),
    ).toThrow(TypeError)
    expect(() =>
      store.view((tx) => tx.find('networks', { heldAddress: { networkId: 'n', address: 'a' } })),
    ).toThrow(TypeError)
  })
})
