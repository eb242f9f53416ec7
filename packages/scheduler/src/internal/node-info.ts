import type { GenericResource, Node, Task } from '@swarmkit/store'

/** The window and count after which a node goes last for a service: 5 failures in 5 minutes, as in swarm. */
export const FAILURE_WINDOW_MS = 5 * 60_000
export const MAX_FAILURES = 5

/** What an accounted task holds on its node. */
export interface TaskAccount {
  /** The task's ID, or '' for an account shared by the tasks of one batch on one node. */
  id: string
  node: NodeInfo
  serviceId: string
  cpu: number
  mem: number
  /** Discrete generic resources by kind. */
  discrete: Map<string, number> | undefined
  /** Named generic resources held (kind -> names). */
  named: Map<string, string[]> | undefined
  /** Host-mode published ports held, as `protocol/port`. */
  ports: string[] | undefined
}

/** The scheduler's view of one node: what it offers, what its tasks hold, how its tasks spread. */
export class NodeInfo {
  node: Node
  readonly index: number
  /** Ready and availability active. */
  available = false
  cpu = 0
  mem = 0
  /** Discrete generic resources still free, by kind. */
  discrete: Map<string, number> | undefined
  /** Named generic resources still free, by kind. */
  named: Map<string, Set<string>> | undefined
  /** Tasks counted on the node (assigned or later, not finished). */
  total = 0
  readonly byService = new Map<string, number>()
  readonly hostPorts = new Set<string>()
  /** Recent failures by `serviceId@specVersion`, oldest first. */
  failures: Map<string, number[]> | undefined
  /** What the accounted tasks hold, so that `reset` can recompute what is free. */
  heldCpu = 0
  heldMem = 0
  heldDiscrete: Map<string, number> | undefined
  heldNamed: Map<string, Set<string>> | undefined
  /** Set once the node left the placer; its task accounts are dropped lazily. */
  removed = false
  /** Scratch slot used by one placement pass (-1 outside of one). */
  scratch = -1

  constructor(node: Node, index: number) {
    this.node = node
    this.index = index
    this.reset(node)
  }

  /** Recomputes what is free from the node's description and the tasks accounted on it. */
  reset(node: Node): void {
    this.node = node
    this.available = node.status?.state === 'ready' && node.spec?.availability === 'active'
    const res = node.description?.resources
    this.cpu = res?.nanoCPUs ?? 0
    this.mem = res?.memoryBytes ?? 0
    this.discrete = undefined
    this.named = undefined
    for (const g of res?.genericResources ?? []) {
      if ('discreteResourceSpec' in g) {
        const { kind, value } = g.discreteResourceSpec
        this.discrete ??= new Map()
        this.discrete.set(kind, (this.discrete.get(kind) ?? 0) + value)
      } else if ('namedResourceSpec' in g) {
        const { kind, value } = g.namedResourceSpec
        this.named ??= new Map()
        let set = this.named.get(kind)
        if (!set) this.named.set(kind, (set = new Set()))
        set.add(value)
      }
    }
    this.cpu -= this.heldCpu
    this.mem -= this.heldMem
    if (this.heldDiscrete)
      for (const [k, v] of this.heldDiscrete) this.discrete?.set(k, (this.discrete.get(k) ?? 0) - v)
    if (this.heldNamed)
      for (const [k, names] of this.heldNamed) for (const n of names) this.named?.get(k)?.delete(n)
  }

  /** How many of `kind` are free (discrete count plus free names). */
  genericFree(kind: string): number {
    return (this.discrete?.get(kind) ?? 0) + (this.named?.get(kind)?.size ?? 0)
  }

  /** Accounts `n` tasks of one service that hold only CPU and memory (a batch placed at once). */
  addMany(serviceId: string, n: number, cpu: number, mem: number): void {
    this.total += n
    this.byService.set(serviceId, (this.byService.get(serviceId) ?? 0) + n)
    this.cpu -= n * cpu
    this.mem -= n * mem
    this.heldCpu += n * cpu
    this.heldMem += n * mem
  }

  add(a: TaskAccount): void {
    this.total++
    this.byService.set(a.serviceId, (this.byService.get(a.serviceId) ?? 0) + 1)
    this.cpu -= a.cpu
    this.mem -= a.mem
    this.heldCpu += a.cpu
    this.heldMem += a.mem
    if (a.discrete)
      for (const [k, v] of a.discrete) {
        this.discrete?.set(k, (this.discrete.get(k) ?? 0) - v)
        this.heldDiscrete ??= new Map()
        this.heldDiscrete.set(k, (this.heldDiscrete.get(k) ?? 0) + v)
      }
    if (a.named)
      for (const [k, names] of a.named) {
        this.heldNamed ??= new Map()
        let held = this.heldNamed.get(k)
        if (!held) this.heldNamed.set(k, (held = new Set()))
        for (const n of names) {
          this.named?.get(k)?.delete(n)
          held.add(n)
        }
      }
    if (a.ports) for (const p of a.ports) this.hostPorts.add(p)
  }

  remove(a: TaskAccount): void {
    this.total--
    const n = (this.byService.get(a.serviceId) ?? 1) - 1
    if (n === 0) this.byService.delete(a.serviceId)
    else this.byService.set(a.serviceId, n)
    this.cpu += a.cpu
    this.mem += a.mem
    this.heldCpu -= a.cpu
    this.heldMem -= a.mem
    if (a.discrete)
      for (const [k, v] of a.discrete) {
        this.discrete?.set(k, (this.discrete.get(k) ?? 0) + v)
        this.heldDiscrete?.set(k, (this.heldDiscrete.get(k) ?? 0) - v)
      }
    if (a.named)
      for (const [k, names] of a.named) {
        const free = this.named?.get(k)
        const held = this.heldNamed?.get(k)
        for (const n of names) {
          held?.delete(n)
          free?.add(n)
        }
      }
    if (a.ports) for (const p of a.ports) this.hostPorts.delete(p)
  }

  recordFailure(key: string, now: number): void {
    this.failures ??= new Map()
    let list = this.failures.get(key)
    if (!list) this.failures.set(key, (list = []))
    let drop = 0
    while (drop < list.length && now - (list[drop] ?? 0) > FAILURE_WINDOW_MS) drop++
    if (drop) list.splice(0, drop)
    list.push(now)
  }

  recentFailures(key: string, now: number): number {
    const list = this.failures?.get(key)
    if (!list) return 0
    let n = 0
    for (let i = list.length - 1; i >= 0; i--) {
      if (now - (list[i] ?? 0) > FAILURE_WINDOW_MS) break
      n++
    }
    return n
  }
}

/** `protocol/port` of each host-mode published port of the task. */
export function hostPorts(task: Task): string[] | undefined {
  let out: string[] | undefined
  for (const p of task.endpoint?.ports ?? []) {
    if (p.publishMode === 'host' && p.publishedPort !== 0)
      (out ??= []).push(`${p.protocol}/${p.publishedPort}`)
  }
  return out
}

/** The generic resources a task asks for, by kind (a named request counts as one of its kind). */
export function genericRequest(task: Task): Map<string, number> | undefined {
  let out: Map<string, number> | undefined
  for (const g of task.spec.resources?.reservations?.genericResources ?? []) {
    out ??= new Map()
    if ('discreteResourceSpec' in g) {
      const { kind, value } = g.discreteResourceSpec
      out.set(kind, (out.get(kind) ?? 0) + value)
    } else if ('namedResourceSpec' in g) {
      const { kind } = g.namedResourceSpec
      out.set(kind, (out.get(kind) ?? 0) + 1)
    }
  }
  return out
}

/** The generic resources a task holds once assigned: the names it was given, and discrete counts. */
export function accountGeneric(assigned: readonly GenericResource[] | undefined): {
  discrete: Map<string, number> | undefined
  named: Map<string, string[]> | undefined
} {
  let discrete: Map<string, number> | undefined
  let named: Map<string, string[]> | undefined
  for (const g of assigned ?? []) {
    if ('discreteResourceSpec' in g) {
      discrete ??= new Map()
      const { kind, value } = g.discreteResourceSpec
      discrete.set(kind, (discrete.get(kind) ?? 0) + value)
    } else if ('namedResourceSpec' in g) {
      named ??= new Map()
      const { kind, value } = g.namedResourceSpec
      let list = named.get(kind)
      if (!list) named.set(kind, (list = []))
      list.push(value)
    }
  }
  return { discrete, named }
}
