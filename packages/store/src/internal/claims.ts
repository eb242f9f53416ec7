// What the allocators hand out, kept unique by the store: a network address (a service's VIP, a live task's
// address, a node's attachment address, per network), a published ingress port (per protocol), and a
// network's subnet and VXLAN ID. They are allocated by whichever manager writes them (an API transaction
// allocates a service's VIPs and ports, or a network's subnet and VNI, from its own replica; the leader's
// allocator gives tasks their addresses), and each of those transactions is valid on the state it read: two
// that crossed in the log could give one thing to two holders. So a write that takes what another holder
// has is refused, when the transaction runs and again when the command applies, as a duplicate name is; the
// losing transaction then runs again on the state that includes the winner. Only what the object did not
// already hold is checked: duplicates written before this check existed never block a write.
import { StoreError } from '../errors.js'
import type { Network, Node, Service, Table, Task } from '../types.js'
import { taskStateRank } from '../types.js'
import type { IndexKeys } from './indexes.js'

const RANK_RUNNING = taskStateRank('running')

/** The index key of an address on a network: the network ID and the address without its prefix length. */
export function addressKey(networkId: string, address: string): string {
  const slash = address.indexOf('/')
  return `${networkId} ${slash < 0 ? address : address.slice(0, slash)}`
}

/** Whether a task holds its addresses: it has not finished (a finished task's addresses are free again). */
export function taskHoldsAddresses(t: Pick<Task, 'status'>): boolean {
  return taskStateRank(t.status.state) <= RANK_RUNNING
}

// Claim keys, by kind: `a` an address (`a <network> <address>`), `p` a published ingress port
// (`p 8080/tcp`), `s` a subnet, `v` a VXLAN ID.
export const addressClaim = (networkId: string, address: string): string =>
  `a ${addressKey(networkId, address)}`

type Claimable = 'services' | 'tasks' | 'nodes' | 'networks'

/** Which tables can hold a claim of each kind. */
const HOLDERS: Record<string, readonly Claimable[]> = {
  a: ['services', 'tasks', 'nodes'],
  p: ['services'],
  s: ['networks'],
  v: ['networks'],
}

function addresses(
  list: readonly { networkId: string; addresses?: readonly string[] }[] | undefined,
  out: string[],
) {
  if (list) for (const a of list) for (const x of a.addresses ?? []) out.push(addressClaim(a.networkId, x))
}

const done = (out: string[]): IndexKeys => (out.length === 0 ? undefined : out)

export const serviceClaims = (s: Service): IndexKeys => {
  const e = s.endpoint
  if (!e) return undefined
  const out: string[] = []
  for (const v of e.virtualIPs ?? []) out.push(addressClaim(v.networkId, v.addr))
  for (const p of e.ports ?? [])
    if ((p.publishMode ?? 'ingress') === 'ingress' && p.publishedPort > 0)
      out.push(`p ${p.publishedPort}/${p.protocol ?? 'tcp'}`)
  return done(out)
}

export const taskClaims = (t: Task): IndexKeys => {
  if (!t.networks || t.networks.length === 0 || !taskHoldsAddresses(t)) return undefined
  const out: string[] = []
  addresses(t.networks, out)
  return done(out)
}

export const nodeClaims = (n: Node): IndexKeys => {
  if (!n.attachments || n.attachments.length === 0) return undefined
  const out: string[] = []
  addresses(n.attachments, out)
  return done(out)
}

export const networkClaims = (n: Network): IndexKeys => {
  const out: string[] = []
  if (n.vni !== undefined) out.push(`v ${n.vni}`)
  for (const c of n.ipam?.configs ?? []) if (c.subnet) out.push(`s ${c.subnet}`)
  return done(out)
}

const CLAIMS_OF: Record<Claimable, (o: any) => IndexKeys> = {
  services: serviceClaims,
  tasks: taskClaims,
  nodes: nodeClaims,
  networks: networkClaims,
}

const NO_CLAIMS: readonly string[] = Object.freeze([])

function asList(k: IndexKeys): readonly string[] {
  return k === undefined ? NO_CLAIMS : typeof k === 'string' ? [k] : k
}

/** What the check reads: the objects of `table` holding claim `key`, as a transaction sees them. */
export interface ClaimHolders {
  claimHolders(table: Table, key: string): readonly { id: string }[]
}

const SINGULAR: Record<Claimable, string> = {
  services: 'service',
  tasks: 'task',
  nodes: 'node',
  networks: 'network',
}

function conflict(key: string, table: Claimable, holder: string): StoreError {
  const [kind, a, b] = key.split(' ') as [string, string, string | undefined]
  const what =
    kind === 'a'
      ? `address ${b} on network ${a}`
      : kind === 'p'
        ? `port ${a}`
        : kind === 's'
          ? `subnet ${a}`
          : `VXLAN ID ${a}`
  // A port in the words of swarm's port allocator (and of ours, in @swarmkit/overlay).
  if (kind === 'p')
    return new StoreError(
      'ALLOCATION_CONFLICT',
      `${what} is already in use by service ${holder} as an ingress port`,
    )
  return new StoreError('ALLOCATION_CONFLICT', `${what} is already in use (${SINGULAR[table]} ${holder})`)
}

/**
 * Throws `ALLOCATION_CONFLICT` when `object` (replacing `base`, or new) takes an address, published port,
 * subnet or VXLAN ID that it did not hold before and that another holder has, in the state `holders` reads.
 */
export function checkClaims(
  table: Table,
  object: Record<string, any>,
  base: Record<string, any> | null | undefined,
  holders: ClaimHolders,
): void {
  const claimsOf = CLAIMS_OF[table as Claimable]
  if (!claimsOf) return
  const now = asList(claimsOf(object))
  if (now.length === 0) return
  const before = base ? asList(claimsOf(base)) : NO_CLAIMS
  for (const key of now) {
    if (before.includes(key)) continue
    for (const t of HOLDERS[key[0]!] ?? []) {
      for (const other of holders.claimHolders(t, key)) {
        if (t === table && other.id === object.id) continue
        throw conflict(key, t, other.id)
      }
    }
  }
}
