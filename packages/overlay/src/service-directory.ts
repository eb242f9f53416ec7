import { formatIp, parseIp } from './internal/ip.js'

/** A service as discovery sees it. */
export interface DirectoryService {
  id: string
  /** The service name (`web`). */
  name: string
  /** `vip` (default): the name answers the VIP; `dnsrr`: it answers the healthy tasks' addresses. */
  endpointMode?: 'vip' | 'dnsrr'
  /** Network ID -> the service's virtual IP on it (vip mode). */
  vips?: Record<string, string>
  /** Network ID -> extra names of the service on that network (`--network name=x,alias=y`). */
  aliases?: Record<string, string[]>
}

/** A task (or an attachable network's container) as discovery sees it. */
export interface DirectoryTask {
  id: string
  /** Its name (`web.1.<task id>` for a service task, the container name otherwise). */
  name: string
  /** The service ID (absent for a container on an attachable network). */
  service?: string
  /** Network ID -> the task's address on it. */
  addresses: Record<string, string>
  /** Network ID -> the task's aliases on that network. */
  aliases?: Record<string, string[]>
  /** Running and (if it has a health check) healthy: only these back a VIP or answer dnsrr and tasks.NAME. */
  healthy?: boolean
}

/** Everything a {@link ServiceDirectory} answers from: the services with their VIPs, the tasks with their addresses. */
export interface DirectoryState {
  services: DirectoryService[]
  tasks: DirectoryTask[]
}

/** What a name resolves to for one querier: IPv4 and IPv6 addresses, sorted. */
export interface Resolution {
  v4: string[]
  v6: string[]
}

/** Service discovery's view of the swarm, answering names with the swarm's scope rules. */
export interface ServiceDirectory {
  /** Replaces the whole view. */
  set(state: DirectoryState): void
  /**
   * Resolves `name` (lowercase, no trailing dot) for a querier attached to `networks`: only records on a
   * network it shares count. Service names and aliases give the VIP (vip mode) or the healthy tasks'
   * addresses (dnsrr); `tasks.NAME` every healthy task of NAME; a task name or alias that task's addresses.
   * Undefined when no record of that name is visible (the caller forwards the query).
   */
  resolve(name: string, networks: readonly string[]): Resolution | undefined
  /** The healthy backends of a service on a network, sorted (what its VIP balances over). */
  backends(service: string, network: string): string[]
  /** Every vip-mode service's VIP on `network` with its backends there (for a sandbox's load balancer). */
  vipsOn(network: string): Array<{ service: string; vip: string; backends: string[] }>
}

type Rec = { network: string; address: string }

class Directory implements ServiceDirectory {
  // name -> records (network, address); built once per set(), so a lookup is one map read and a filter.
  private names = new Map<string, Rec[]>()
  private services: DirectoryService[] = []
  private tasks: DirectoryTask[] = []

  set(state: DirectoryState): void {
    if (typeof state !== 'object' || state === null) throw new TypeError('state must be an object')
    if (!Array.isArray(state.services) || !Array.isArray(state.tasks))
      throw new TypeError('state.services and state.tasks must be arrays')
    const names = new Map<string, Rec[]>()
    const add = (name: string, network: string, address: string) => {
      const key = name.toLowerCase()
      const canonical = canon(address)
      const list = names.get(key) ?? []
      if (!list.some((r) => r.network === network && r.address === canonical))
        list.push({ network, address: canonical })
      names.set(key, list)
    }
    const byId = new Map(state.services.map((s) => [s.id, s]))
    for (const s of state.services) {
      if (typeof s.name !== 'string' || typeof s.id !== 'string')
        throw new TypeError('every service needs a string id and name')
      if ((s.endpointMode ?? 'vip') === 'vip')
        for (const [net, vip] of Object.entries(s.vips ?? {})) {
          add(s.name, net, vip)
          for (const a of s.aliases?.[net] ?? []) add(a, net, vip)
        }
    }
    for (const t of state.tasks) {
      if (typeof t.name !== 'string' || typeof t.id !== 'string')
        throw new TypeError('every task needs a string id and name')
      for (const [net, address] of Object.entries(t.addresses ?? {})) {
        add(t.name, net, address)
        for (const a of t.aliases?.[net] ?? []) add(a, net, address)
        if (t.healthy === false || t.service === undefined) continue
        const s = byId.get(t.service)
        if (s === undefined) continue
        add(`tasks.${s.name}`, net, address)
        if (s.endpointMode === 'dnsrr') {
          add(s.name, net, address)
          for (const a of s.aliases?.[net] ?? []) {
            add(a, net, address)
          }
        }
      }
    }
    this.names = names
    this.services = state.services
    this.tasks = state.tasks
  }

  resolve(name: string, networks: readonly string[]): Resolution | undefined {
    const recs = this.names.get(name.toLowerCase())
    if (recs === undefined) return undefined
    const v4 = new Set<string>()
    const v6 = new Set<string>()
    for (const r of recs) if (networks.includes(r.network)) (r.address.includes(':') ? v6 : v4).add(r.address)
    if (v4.size === 0 && v6.size === 0) return undefined
    return { v4: [...v4].sort(), v6: [...v6].sort() }
  }

  backends(service: string, network: string): string[] {
    const out: string[] = []
    for (const t of this.tasks)
      if (t.service === service && t.healthy !== false && t.addresses[network] !== undefined)
        out.push(canon(t.addresses[network]!))
    return out.sort()
  }

  vipsOn(network: string): Array<{ service: string; vip: string; backends: string[] }> {
    const out: Array<{ service: string; vip: string; backends: string[] }> = []
    for (const s of this.services) {
      const vip = s.vips?.[network]
      if ((s.endpointMode ?? 'vip') !== 'vip' || vip === undefined) continue
      out.push({ service: s.id, vip: canon(vip), backends: this.backends(s.id, network) })
    }
    return out.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0))
  }
}

function canon(address: string): string {
  const p = parseIp(address, 'address')
  return formatIp(p.family, p.value)
}

/** An empty {@link ServiceDirectory}; feed it with `set()` from the store's services and tasks. */
export function serviceDirectory(state?: DirectoryState): ServiceDirectory {
  const d = new Directory()
  if (state !== undefined) d.set(state)
  return d
}
