// The leader's task network allocator (swarm's allocator, for task attachments): every task attached to an
// overlay network gets an address on it from the network's subnet, written into `task.networks` so that
// every manager, the worker running the task and the other workers' network views see the same address.
// Addresses are held by the services' VIPs and by the tasks that have not finished; a finished task's
// address is free again (its container is gone, and no network view lists it any more).

import { rebuildIpam } from '@swarmkit/overlay'
import type { ClusterStore, Node, ReadTx, Task } from '@swarmkit/store'
import { holdsAddresses } from './holds-addresses.js'
import { allocateIngressAddresses, publishesPorts } from './ingress-attachments.js'
import { inDutyScope } from './leader-scope.js'
import { followStore } from './store-follow.js'
import { TaskAddressLoop, type TaskAddressLoopOptions } from './task-address-loop.js'

export { holdsAddresses }

/** The network IDs whose tasks get addresses: overlay networks with a subnet, except ingress. */
function addressedNetworks(tx: ReadTx): Map<string, string> {
  const out = new Map<string, string>()
  for (const n of tx.find('networks')) {
    const subnet = n.ipam?.configs[0]?.subnet
    if (subnet && !n.spec.ingress && !n.pendingDelete) out.set(n.id, subnet)
  }
  return out
}

function needsAddress(t: Task, nets: ReadonlyMap<string, string>): boolean {
  return holdsAddresses(t) && t.networks.some((a) => a.addresses.length === 0 && nets.has(a.networkId))
}

/**
 * Gives every unaddressed attachment of a live task its address, from an IPAM rebuilt from every held
 * address; returns how many tasks changed. The whole-store pass the incremental allocator
 * (task-address-loop.ts) is checked and measured against.
 */
export async function allocateTaskAddresses(store: Pick<ClusterStore, 'view' | 'update'>): Promise<number> {
  const pending = store.view((tx) => {
    const nets = addressedNetworks(tx)
    return tx.find('tasks', undefined, (t) => needsAddress(t, nets)).length
  })
  if (pending === 0) return 0
  let changed = 0
  await store.update((tx) => {
    const nets = addressedNetworks(tx)
    const networks = tx.find('networks')
    const ipam = rebuildIpam({
      subnets: networks.flatMap((n) =>
        (n.ipam?.configs ?? []).map((c) => ({ network: n.id, subnet: c.subnet, gateway: c.gateway ?? '' })),
      ),
      addresses: heldAddresses(tx),
    })
    for (const t of tx.find('tasks', undefined, (x) => needsAddress(x, nets))) {
      const attachments = t.networks.map((a) => {
        const subnet = nets.get(a.networkId)
        if (a.addresses.length > 0 || subnet === undefined) return a
        return { ...a, addresses: [`${ipam.allocateAddress(a.networkId)}/${subnet.split('/')[1]}`] }
      })
      tx.update('tasks', { ...t, networks: attachments })
      changed++
    }
  })
  return changed
}

/**
 * Every address held on the networks: the services' VIPs and the live tasks' addresses, each once (a
 * duplicate, e.g. from an older allocator, must not stop every later allocation). With `only`, the addresses
 * on those networks alone, read through the store's per-network index: an API transaction that allocates a
 * service's VIPs must not walk every task of the swarm (150,000 at scale) while it holds the write lock.
 */
export function heldAddresses(
  tx: ReadTx,
  only?: ReadonlySet<string>,
): Array<{ network: string; address: string }> {
  const seen = new Set<string>()
  const out: Array<{ network: string; address: string }> = []
  const add = (network: string, addr: string) => {
    if (only && !only.has(network)) return
    const address = addr.split('/')[0]!
    const key = `${network} ${address}`
    if (seen.has(key)) return
    seen.add(key)
    out.push({ network, address })
  }
  for (const s of tx.find('services')) for (const v of s.endpoint?.virtualIPs ?? []) add(v.networkId, v.addr)
  const tasks = only
    ? [...only].flatMap((network) => tx.find('tasks', { referencedNetworkId: network }, holdsAddresses))
    : tx.find('tasks', undefined, holdsAddresses)
  for (const t of tasks) for (const a of t.networks) for (const addr of a.addresses) add(a.networkId, addr)
  // The nodes' own attachments (their ingress sandboxes).
  for (const n of tx.find('nodes'))
    for (const a of n.attachments ?? []) for (const addr of a.addresses) add(a.networkId, addr)
  return out
}

export interface TaskAddressAllocator {
  stop(): void
}

export interface TaskAddressAllocatorOptions extends TaskAddressLoopOptions {
  /**
   * `incremental` (default): an index of the held addresses and of what needs one, kept from the store's
   * events; a pass costs what changed (task-address-loop.ts). `full`: every pass walks every task and
   * rebuilds the IPAM (as before session 8; the reference the incremental allocator is measured against).
   */
  passes?: 'incremental' | 'full'
}

/**
 * Runs the allocator as a leader duty of `term`: it gives addresses to what needs them now, then after every
 * change of tasks, services, nodes or networks. A failed commit is retried after a second.
 */
export function startTaskAddressAllocator(options: TaskAddressAllocatorOptions): TaskAddressAllocator {
  if (options.passes !== undefined && options.passes !== 'incremental' && options.passes !== 'full')
    throw new TypeError("options.passes: expected 'incremental' or 'full'")
  if (options.passes === 'full') return startFullPasses(options)
  const loop = new TaskAddressLoop(options)
  loop.start()
  return {
    stop() {
      void loop.stop()
    },
  }
}

/** The allocator as it was: a whole-store pass after every relevant change, paced. */
function startFullPasses(options: TaskAddressAllocatorOptions): TaskAddressAllocator {
  const { store, term } = options
  const log = options.log ?? (() => {})
  const stop = new AbortController()
  let retry: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  let again = false
  let rest: ReturnType<typeof setTimeout> | undefined
  // One pass at a time; changes during a pass make one more pass after it (a burst is coalesced). Each pass
  // reads every task, so the next one waits for a macrotask and rests as long as the last one took: passes
  // chained in microtasks held a new leader's loop for 12-20 s at 150,000 tasks while node events streamed in
  // (issue #18).
  const pass = (): void => {
    if (stop.signal.aborted) return
    if (running || rest !== undefined) {
      again = true
      return
    }
    again = false
    const started = performance.now()
    const run = () => allocateTaskAddresses(store).then(() => allocateIngressAddresses(store))
    running = (term === undefined ? run() : inDutyScope(term, run)).then(
      () => {},
      (err) => {
        if (stop.signal.aborted) return
        log(`task addresses not allocated: ${(err as Error).message}; retrying`)
        clearTimeout(retry)
        retry = setTimeout(pass, 1000)
        retry.unref?.()
      },
    )
    void running.finally(() => {
      running = undefined
      const took = performance.now() - started
      if (again) {
        rest = setTimeout(
          () => {
            rest = undefined
            pass()
          },
          Math.min(1000, Math.max(1, took)),
        )
        rest.unref?.()
      }
    })
  }
  // A dropped watch (the store fell far behind) is followed again from now, with a pass to catch up.
  void followStore(
    store,
    { table: ['tasks', 'networks', 'services', 'nodes'] },
    (e) => {
      const t = e.object as Task
      // A node without its ingress address yet; a task on a network or publishing through ingress.
      const news =
        e.table === 'nodes'
          ? !(e.object as Node).attachments?.length
          : e.table !== 'tasks' || t.networks.length > 0 || publishesPorts(t)
      if (news) pass()
    },
    stop.signal,
    (line) => {
      log(`task address allocator: ${line}`)
      pass()
    },
  )
  pass()
  return {
    stop() {
      stop.abort()
      clearTimeout(retry)
      clearTimeout(rest)
    },
  }
}
