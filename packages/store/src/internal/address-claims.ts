// Network addresses as the store's to keep unique: a service's VIPs, a live task's addresses and a node's
// attachment addresses, per network. Addresses are allocated by whichever manager writes them (an API
// transaction allocates a service's VIPs from its own replica, the leader's allocator gives tasks theirs),
// and each of those transactions is valid on the state it read: two that crossed in the log could give one
// address to two holders. So a write that gives an object an address another live holder has is refused,
// when the transaction runs and again when the command applies, as a duplicate name is; the losing
// transaction then runs again on the state that includes the winner. Only addresses the object did not
// already hold are checked: duplicates written before this check existed never block a write.
import { StoreError } from '../errors.js'
import type { ReadTx } from '../store-types.js'
import type { Node, Service, Table, Task } from '../types.js'
import { taskStateRank } from '../types.js'
import type { IndexKeys } from './indexes.js'

const RANK_RUNNING = taskStateRank('running')

/** The tables whose objects hold addresses. */
export const ADDRESS_TABLES = ['services', 'tasks', 'nodes'] as const satisfies readonly Table[]

/** The index key of an address on a network: the network ID and the address without its prefix length. */
export function addressKey(networkId: string, address: string): string {
  const slash = address.indexOf('/')
  return `${networkId} ${slash < 0 ? address : address.slice(0, slash)}`
}

/** Whether a task holds its addresses: it has not finished (a finished task's addresses are free again). */
export function taskHoldsAddresses(t: Pick<Task, 'status'>): boolean {
  return taskStateRank(t.status.state) <= RANK_RUNNING
}

function keys(list: readonly { networkId: string; addresses?: readonly string[] }[] | undefined): IndexKeys {
  if (!list || list.length === 0) return undefined
  let out: string[] | undefined
  for (const a of list) for (const x of a.addresses ?? []) (out ??= []).push(addressKey(a.networkId, x))
  return out
}

export const serviceAddresses = (s: Service): IndexKeys => {
  const vips = s.endpoint?.virtualIPs
  if (!vips || vips.length === 0) return undefined
  return vips.map((v) => addressKey(v.networkId, v.addr))
}

export const taskAddresses = (t: Task): IndexKeys => (taskHoldsAddresses(t) ? keys(t.networks) : undefined)

export const nodeAddresses = (n: Node): IndexKeys => keys(n.attachments)

const KEYS_OF: Record<(typeof ADDRESS_TABLES)[number], (o: any) => IndexKeys> = {
  services: serviceAddresses,
  tasks: taskAddresses,
  nodes: nodeAddresses,
}

function asList(k: IndexKeys): readonly string[] {
  return k === undefined ? [] : typeof k === 'string' ? [k] : k
}

/**
 * Throws `ADDRESS_IN_USE` when `object` (replacing `base`, or new) holds an address on a network that it did
 * not hold before and that another live holder has, in the state `tx` reads.
 */
export function checkAddressClaims(
  table: Table,
  object: Record<string, any>,
  base: Record<string, any> | null | undefined,
  tx: Pick<ReadTx, 'find'>,
): void {
  const keysOf = KEYS_OF[table as keyof typeof KEYS_OF]
  if (!keysOf) return
  const now = asList(keysOf(object))
  if (now.length === 0) return
  const before = base ? asList(keysOf(base)) : []
  for (const key of now) {
    if (before.includes(key)) continue
    const [networkId, address] = key.split(' ') as [string, string]
    for (const t of ADDRESS_TABLES) {
      for (const other of tx.find(t, { heldAddress: { networkId, address } })) {
        if (t === table && other.id === object.id) continue
        throw new StoreError(
          'ADDRESS_IN_USE',
          `address ${address} on network ${networkId} is already in use (${t === 'services' ? 'service' : t === 'tasks' ? 'task' : 'node'} ${other.id})`,
        )
      }
    }
  }
}
