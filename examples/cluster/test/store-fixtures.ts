// Store objects and views shared by the allocation and scale tests.
import {
  generateId,
  type NewObject,
  type ReadTx,
  type Service,
  type Task,
  type TaskState,
} from '@swarmkit/store'
import { addressKey } from '../src/address-book.js'
import { holdsAddresses } from '../src/task-addresses.js'

/** Overlay network `net1` (VNI 4097, 10.9.1.0/24): the network `placedTask` puts its addresses on. */
export const NET1 = {
  id: 'net1',
  spec: { name: 'front', labels: {}, driverConfig: { name: 'overlay' } },
  vni: 4097,
  ipam: { driver: { name: 'default' }, configs: [{ subnet: '10.9.1.0/24', gateway: '10.9.1.1' }] },
} as const

/** A task of `s` in `slot`, attached (without addresses yet) to each network the service names. */
export function taskOf(s: Pick<Service, 'id' | 'spec'>, slot: number, state: TaskState): NewObject<Task> {
  return {
    id: generateId(),
    serviceId: s.id,
    slot,
    nodeId: '',
    spec: s.spec.taskTemplate,
    serviceAnnotations: { name: s.spec.name, labels: {} },
    status: { timestamp: 0, state, message: '' },
    desiredState: 'running',
    networks: (s.spec.taskTemplate.networks ?? []).map((n) => ({ networkId: n.target, addresses: [] })),
  }
}

/** A running task on `nodeId`; with `networkId`, of service `svc-net` holding 10.9.1.<slot + 1> there. */
export function placedTask(id: string, nodeId: string, slot: number, networkId?: string): Omit<Task, 'meta'> {
  return {
    id,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId: networkId ? 'svc-net' : 'svc',
    slot,
    nodeId,
    serviceAnnotations: { name: networkId ? 'web' : 'batch', labels: {} },
    status: { timestamp: 0, state: 'running', message: 'started' },
    desiredState: 'running',
    networks: networkId ? [{ networkId, addresses: [`10.9.1.${slot + 1}/24`] }] : [],
  }
}

/** `tx` (a view or a transaction), counting the tasks its `find` hands to a filter or returns. */
export function countingTasks<T extends ReadTx>(tx: T): { tx: T; tasksSeen: () => number } {
  let seen = 0
  const find: ReadTx['find'] = (table, by, filter) => {
    if (table !== 'tasks') return tx.find(table, by, filter)
    const counted = (o: never) => {
      seen++
      return filter ? filter(o) : true
    }
    return tx.find(table, by, counted as never)
  }
  return {
    tx: new Proxy(tx, {
      get: (t, k) => {
        if (k === 'find') return find
        const v = Reflect.get(t, k)
        return typeof v === 'function' ? v.bind(t) : v
      },
    }),
    tasksSeen: () => seen,
  }
}

/** Addresses held by more than one live holder (services' VIPs, live tasks, nodes), each with its holders. */
export function sharedAddresses(tx: ReadTx): Map<string, string[]> {
  const by = new Map<string, string[]>()
  const add = (holder: string, network: string, address: string) => {
    const k = addressKey(network, address)
    const list = by.get(k) ?? []
    if (!list.includes(holder)) list.push(holder)
    by.set(k, list)
  }
  for (const s of tx.find('services'))
    for (const v of s.endpoint?.virtualIPs ?? []) add(`s:${s.id}`, v.networkId, v.addr)
  for (const t of tx.find('tasks', undefined, holdsAddresses))
    for (const a of t.networks) for (const x of a.addresses) add(`t:${t.id}`, a.networkId, x)
  for (const n of tx.find('nodes'))
    for (const a of n.attachments ?? []) for (const x of a.addresses) add(`n:${n.id}`, a.networkId, x)
  return new Map([...by].filter(([, h]) => h.length > 1))
}
