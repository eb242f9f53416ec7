import type { GenericResource, Node, Platform, Task } from '@swarmkit/store'
import { ConstraintSet, ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX } from './constraints.js'
import { isSchedulerError } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import { KeyHeap } from './internal/heap.js'
import {
  accountGeneric,
  genericRequest,
  hostPorts,
  MAX_FAILURES,
  NodeInfo,
  type TaskAccount,
} from './internal/node-info.js'

/** The filters, in the order swarm runs them. */
export const FILTERS = ['ready', 'resources', 'constraints', 'platform', 'hostPort', 'maxReplicas'] as const
/** The name of one of swarm's placement filters, in the order they run ({@link FILTERS}). */
export type FilterName = (typeof FILTERS)[number]

const READY = 0
const RESOURCES = 1
const CONSTRAINTS = 2
const PLATFORM = 3
const HOST_PORT = 4
const MAX_REPLICAS = 5

/** Swarm's explanation of a filter failing on `n` nodes. */
export function explainFilter(filter: FilterName, n: number): string {
  if (!FILTERS.includes(filter)) throw typeError('filter', `be one of ${FILTERS.join(', ')}`)
  if (!Number.isSafeInteger(n) || n < 0) throw rangeError('n', 'be an integer >= 0')
  const nodes = n === 1 ? '1 node' : `${n} nodes`
  switch (filter) {
    case 'ready':
      return `${nodes} not available for new tasks`
    case 'resources':
      return `insufficient resources on ${nodes}`
    case 'constraints':
      return `scheduling constraints not satisfied on ${nodes}`
    case 'platform':
      return `unsupported platform on ${nodes}`
    case 'hostPort':
      return `host-mode port already in use on ${nodes}`
    case 'maxReplicas':
      return 'max replicas per node limit exceed'
  }
}

/**
 * Swarm's "no suitable node (…)" text from per-filter failure counts (indexed as {@link FILTERS}): the
 * filters that failed, most failures first.
 */
export function explainFailures(counts: readonly number[]): string {
  if (!Array.isArray(counts)) throw typeError('counts', 'be an array of numbers')
  const parts = FILTERS.map((f, i) => ({ f, n: counts[i] ?? 0, i }))
    .filter((p) => p.n > 0)
    .sort((a, b) => b.n - a.n || a.i - b.i)
    .map((p) => explainFilter(p.f, p.n))
  return parts.length ? `no suitable node (${parts.join('; ')})` : 'no suitable node'
}

/** A task placed on a node. */
export interface Assignment {
  task: Task
  nodeId: string
  /** Generic resources given to the task (named ones by value), when it asked for any. */
  genericResources?: GenericResource[]
}

/** A task no node can take now, with swarm's explanation. */
export interface Unplaced {
  task: Task
  reason: string
}

/** What one `place()` decided: the tasks assigned to nodes, and those left unplaced with the reason. */
export interface PlacementResult {
  assigned: Assignment[]
  unplaced: Unplaced[]
}

/**
 * The placement engine: the nodes and the tasks they hold, and the filter pipeline and spread ranking run
 * over them. Pure and synchronous; the {@link Scheduler} keeps it in step with the store.
 */
export interface Placer {
  /** Adds or refreshes a node (its status, availability, labels, resources). */
  setNode(node: Node): void
  removeNode(nodeId: string): void
  /** Accounts a task that holds its node (assigned or later, not finished); replaces an earlier account. */
  addTask(task: Task): void
  removeTask(taskId: string): void
  hasTask(taskId: string): boolean
  /** Records a failure of `task` on its node: 5 within 5 minutes put the node last for that service version. */
  recordFailure(task: Task, now: number): void
  /**
   * Places tasks: tasks of one service and spec version are placed as a batch; a task with `nodeId` set
   * (global services) is only checked against its own node. Placed tasks are accounted at once.
   */
  place(tasks: readonly Task[], now?: number): PlacementResult
  /** Tasks accounted on the node (for tests and metrics). */
  tasksOn(nodeId: string, serviceId?: string): number
  readonly nodeCount: number
}

/** What `createPlacer` takes. */
export interface PlacerOptions {
  /**
   * Nodes to place on only after every other eligible node: ranked after the others (before nodes put last
   * for their failures), still eligible when nothing else is. A new leader passes the nodes it has not heard
   * from since its election (a dead manager's nodes, whose assignments wait until they reconnect elsewhere).
   * Asked once per eligible node per batch of one service. Default: none.
   */
  placeLast?: (nodeId: string) => boolean
}

/** Creates an empty {@link Placer}. */
export function createPlacer(options: PlacerOptions = {}): Placer {
  if (options.placeLast !== undefined && typeof options.placeLast !== 'function')
    throw typeError('options.placeLast', 'be a function')
  return new PlacerImpl(options.placeLast)
}

/** The rank key of a node placed last (failures put a node last with a key of at least `MAX_FAILURES`). */
const LAST = 0.5

interface Request {
  serviceId: string
  failureKey: string
  cpu: number
  mem: number
  generic: Map<string, number> | undefined
  ports: string[] | undefined
  constraints: ConstraintSet | undefined
  badConstraints: boolean
  platforms: Platform[] | undefined
  maxReplicas: number
  preferences: string[]
}

function normArch(a: string): string {
  if (a === 'x86_64') return 'amd64'
  if (a === 'aarch64') return 'arm64'
  return a
}

export function platformOk(platforms: Platform[], node: Node): boolean {
  const p = node.description?.platform
  if (!p) return false
  const arch = normArch(p.architecture)
  for (const want of platforms) {
    if (
      (want.architecture === '' || normArch(want.architecture) === arch) &&
      (want.os === '' || want.os === p.os)
    )
      return true
  }
  return false
}

function preferenceValue(descriptor: string, node: Node): string {
  const lower = descriptor.toLowerCase()
  if (lower.startsWith(NODE_LABEL_PREFIX))
    return node.spec.labels?.[descriptor.slice(NODE_LABEL_PREFIX.length)] ?? ''
  if (lower.startsWith(ENGINE_LABEL_PREFIX))
    return node.description?.engine?.labels?.[descriptor.slice(ENGINE_LABEL_PREFIX.length)] ?? ''
  return ''
}

/** A branch of the placement-preference tree. */
interface Branch {
  /** Tasks of the service already in the branch. */
  tasks: number
  /** How many more tasks the branch can take (bounded by the batch size). */
  cap: number
  children: Map<string, Branch> | undefined
  /** Eligible nodes of a leaf. */
  nodes: NodeInfo[] | undefined
}

class PlacerImpl implements Placer {
  readonly #nodes: NodeInfo[] = []
  readonly #byId = new Map<string, NodeInfo>()
  readonly #tasks = new Map<string, TaskAccount>()
  readonly #constraintCache = new Map<string, ConstraintSet | null>()
  #nextIndex = 0
  readonly #placeLast: ((nodeId: string) => boolean) | undefined

  constructor(placeLast?: (nodeId: string) => boolean) {
    this.#placeLast = placeLast
  }

  get nodeCount(): number {
    return this.#byId.size
  }

  setNode(node: Node): void {
    if (typeof node !== 'object' || node === null || typeof node.id !== 'string')
      throw typeError('node', 'be a Node')
    const info = this.#byId.get(node.id)
    if (info) {
      info.reset(node)
      return
    }
    const created = new NodeInfo(node, this.#nextIndex++)
    this.#byId.set(node.id, created)
    this.#nodes.push(created)
  }

  removeNode(nodeId: string): void {
    const info = this.#byId.get(nodeId)
    if (!info) return
    this.#byId.delete(nodeId)
    const at = this.#nodes.indexOf(info)
    if (at >= 0) this.#nodes.splice(at, 1)
    info.removed = true
    for (const [id, a] of this.#tasks) if (a.node === info) this.#tasks.delete(id)
  }

  addTask(task: Task): void {
    if (typeof task !== 'object' || task === null || typeof task.id !== 'string')
      throw typeError('task', 'be a Task')
    const r = task.spec.resources?.reservations
    const had = this.#tasks.get(task.id)
    // The common echo of our own assignment: same node, same plain reservation; nothing to redo.
    if (
      had &&
      had.node.node.id === task.nodeId &&
      !had.node.removed &&
      had.cpu === (r?.nanoCPUs ?? 0) &&
      had.mem === (r?.memoryBytes ?? 0) &&
      !had.discrete &&
      !had.named &&
      !had.ports &&
      !task.assignedGenericResources?.length &&
      !task.endpoint?.ports?.length
    )
      return
    this.removeTask(task.id)
    const node = this.#byId.get(task.nodeId)
    if (!node) return
    const g = accountGeneric(task.assignedGenericResources)
    const a: TaskAccount = {
      id: task.id,
      node,
      serviceId: task.serviceId,
      cpu: r?.nanoCPUs ?? 0,
      mem: r?.memoryBytes ?? 0,
      discrete: g.discrete,
      named: g.named,
      ports: hostPorts(task),
    }
    node.add(a)
    this.#tasks.set(task.id, a)
  }

  removeTask(taskId: string): void {
    const a = this.#tasks.get(taskId)
    if (!a) return
    this.#tasks.delete(taskId)
    a.node.remove(a)
  }

  hasTask(taskId: string): boolean {
    return this.#tasks.has(taskId)
  }

  recordFailure(task: Task, now: number): void {
    if (typeof task !== 'object' || task === null || typeof task.nodeId !== 'string')
      throw typeError('task', 'be a Task')
    if (!Number.isFinite(now)) throw rangeError('now', 'be a finite number')
    const info = this.#byId.get(task.nodeId)
    if (info) info.recordFailure(failureKey(task), now)
  }

  tasksOn(nodeId: string, serviceId?: string): number {
    const info = this.#byId.get(nodeId)
    if (!info) return 0
    return serviceId === undefined ? info.total : (info.byService.get(serviceId) ?? 0)
  }

  place(tasks: readonly Task[], now = Date.now()): PlacementResult {
    if (!Array.isArray(tasks)) throw typeError('tasks', 'be an array of tasks')
    if (!Number.isFinite(now)) throw rangeError('now', 'be a finite number')
    const result: PlacementResult = { assigned: [], unplaced: [] }
    const groups = new Map<string, Task[]>()
    let lastService: string | undefined
    let lastVersion: number | undefined
    let last: Task[] | undefined
    for (const t of tasks) {
      if (t.nodeId) {
        this.#placePreassigned(t, now, result)
        continue
      }
      // Tasks usually arrive grouped already: skip building a key while the group stays the same.
      const version = t.specVersion?.index
      if (last && t.serviceId === lastService && version === lastVersion) {
        last.push(t)
        continue
      }
      const key = failureKey(t)
      let g = groups.get(key)
      if (!g) groups.set(key, (g = []))
      g.push(t)
      last = g
      lastService = t.serviceId
      lastVersion = version
    }
    for (const g of groups.values()) this.#placeGroup(g, now, result)
    return result
  }

  #constraints(list: string[] | undefined): ConstraintSet | null | undefined {
    if (!list || list.length === 0) return undefined
    const key = list.join('\n')
    let c = this.#constraintCache.get(key)
    if (c === undefined) {
      try {
        c = ConstraintSet.parse(list)
      } catch (err) {
        if (!isSchedulerError(err)) throw err
        c = null
      }
      if (this.#constraintCache.size > 1024) this.#constraintCache.clear()
      this.#constraintCache.set(key, c)
    }
    return c
  }

  #request(t: Task): Request {
    const r = t.spec.resources?.reservations
    const placement = t.spec.placement
    const c = this.#constraints(placement?.constraints)
    return {
      serviceId: t.serviceId,
      failureKey: failureKey(t),
      cpu: r?.nanoCPUs ?? 0,
      mem: r?.memoryBytes ?? 0,
      generic: genericRequest(t),
      ports: hostPorts(t),
      constraints: c ?? undefined,
      badConstraints: c === null,
      platforms: placement?.platforms?.length ? placement.platforms : undefined,
      maxReplicas: placement?.maxReplicas ?? 0,
      preferences: (placement?.preferences ?? []).map((p) => p.spread.spreadDescriptor),
    }
  }

  /**
   * Runs the filters on one node: the number of tasks of this request the node can take (>= 1), or
   * `-(filter + 1)` for the first filter that fails. `limit` receives the filter that bounds the count.
   */
  #evaluate(info: NodeInfo, q: Request, limit: { by: number }): number {
    if (!info.available) return -(READY + 1)
    let cap = Number.POSITIVE_INFINITY
    limit.by = -1
    if (q.cpu > 0) cap = Math.floor(info.cpu / q.cpu)
    if (q.mem > 0) cap = Math.min(cap, Math.floor(info.mem / q.mem))
    if (q.generic)
      for (const [k, v] of q.generic) if (v > 0) cap = Math.min(cap, Math.floor(info.genericFree(k) / v))
    if (cap < 1) return -(RESOURCES + 1)
    if (cap !== Number.POSITIVE_INFINITY) limit.by = RESOURCES
    if (q.badConstraints || (q.constraints && !q.constraints.matches(info.node))) return -(CONSTRAINTS + 1)
    if (q.platforms && !platformOk(q.platforms, info.node)) return -(PLATFORM + 1)
    if (q.ports) {
      for (const p of q.ports) if (info.hostPorts.has(p)) return -(HOST_PORT + 1)
      if (cap > 1) {
        cap = 1
        limit.by = HOST_PORT
      }
    }
    if (q.maxReplicas > 0) {
      const room = q.maxReplicas - (info.byService.get(q.serviceId) ?? 0)
      if (room < 1) return -(MAX_REPLICAS + 1)
      if (room < cap) {
        cap = room
        limit.by = MAX_REPLICAS
      }
    }
    return cap
  }

  #assign(info: NodeInfo, t: Task, q: Request, result: PlacementResult): void {
    let genericResources: GenericResource[] | undefined
    let discrete: Map<string, number> | undefined
    let named: Map<string, string[]> | undefined
    if (q.generic) {
      genericResources = []
      for (const [kind, need] of q.generic) {
        let left = need
        const free = info.named?.get(kind)
        if (free && free.size > 0) {
          const names: string[] = []
          for (const n of free) {
            if (left === 0) break
            names.push(n)
            genericResources.push({ namedResourceSpec: { kind, value: n } })
            left--
          }
          if (names.length) (named ??= new Map()).set(kind, names)
        }
        if (left > 0) {
          ;(discrete ??= new Map()).set(kind, left)
          genericResources.push({ discreteResourceSpec: { kind, value: left } })
        }
      }
    }
    const a: TaskAccount = {
      id: t.id,
      node: info,
      serviceId: q.serviceId,
      cpu: q.cpu,
      mem: q.mem,
      discrete,
      named,
      ports: q.ports,
    }
    info.add(a)
    this.#tasks.set(t.id, a)
    result.assigned.push(
      genericResources
        ? { task: t, nodeId: info.node.id, genericResources }
        : { task: t, nodeId: info.node.id },
    )
  }

  #placePreassigned(t: Task, now: number, result: PlacementResult): void {
    void now
    const info = this.#byId.get(t.nodeId)
    if (!info) {
      result.unplaced.push({ task: t, reason: explainFailures([1]) })
      return
    }
    const q = this.#request(t)
    const cap = this.#evaluate(info, q, { by: -1 })
    if (cap >= 1) {
      this.#assign(info, t, q, result)
      return
    }
    const counts = [0, 0, 0, 0, 0, 0]
    counts[-cap - 1] = 1
    result.unplaced.push({ task: t, reason: explainFailures(counts) })
  }

  #placeGroup(group: Task[], now: number, result: PlacementResult): void {
    const first = group[0]
    if (!first) return
    const q = this.#request(first)
    const k = group.length
    const counts = [0, 0, 0, 0, 0, 0]
    const limit = { by: -1 }
    const eligible: NodeInfo[] = []
    const caps: number[] = []
    const limits: number[] = []
    const prefs = q.preferences
    const root: Branch = { tasks: 0, cap: 0, children: undefined, nodes: prefs.length ? undefined : [] }
    for (const info of this.#nodes) {
      let leaf = root
      if (prefs.length) {
        const inService = info.byService.get(q.serviceId) ?? 0
        root.tasks += inService
        for (let level = 0; level < prefs.length; level++) {
          const value = preferenceValue(prefs[level] as string, info.node)
          leaf.children ??= new Map()
          let next = leaf.children.get(value)
          if (!next) {
            next = {
              tasks: 0,
              cap: 0,
              children: undefined,
              nodes: level === prefs.length - 1 ? [] : undefined,
            }
            leaf.children.set(value, next)
          }
          next.tasks += inService
          leaf = next
        }
      }
      const cap = this.#evaluate(info, q, limit)
      if (cap < 1) {
        counts[-cap - 1] = (counts[-cap - 1] ?? 0) + 1
        continue
      }
      const bounded = Math.min(cap, k)
      info.scratch = eligible.length
      eligible.push(info)
      caps.push(bounded)
      limits.push(limit.by)
      leaf.nodes?.push(info)
    }
    // Capacities bottom-up, so a batch never sends a branch more than it can take.
    const capOf = (b: Branch): number => {
      let c = 0
      if (b.nodes) for (const n of b.nodes) c += caps[n.scratch] as number
      if (b.children) for (const child of b.children.values()) c += capOf(child)
      b.cap = Math.min(c, k)
      return b.cap
    }
    const capacity = capOf(root)
    const placeable = Math.min(k, capacity)
    let next = 0
    const placeOnLeaf = (nodes: NodeInfo[], n: number): void => {
      if (n <= 0 || nodes.length === 0) return
      const heap = new KeyHeap(nodes.length)
      const slotOf = new Int32Array(nodes.length)
      for (let i = 0; i < nodes.length; i++) {
        const info = nodes[i] as NodeInfo
        const slot = info.scratch
        slotOf[i] = slot
        const failures = info.failures ? info.recentFailures(q.failureKey, now) : 0
        heap.k0[i] = failures >= MAX_FAILURES ? failures : this.#placeLast?.(info.node.id) ? LAST : 0
        heap.k1[i] = info.byService.get(q.serviceId) ?? 0
        heap.k2[i] = info.total
        heap.pushUnordered(i)
      }
      heap.heapify()
      // Tasks holding only CPU and memory are accounted on their nodes once per node at the end.
      const simple = q.generic === undefined && q.ports === undefined
      const before = simple ? Float64Array.from(heap.k1) : undefined
      const shared: (TaskAccount | undefined)[] = simple ? new Array(nodes.length) : []
      for (let placed = 0; placed < n && heap.size > 0; placed++) {
        const i = heap.top()
        const info = nodes[i] as NodeInfo
        const task = group[next++] as Task
        if (simple) {
          // Tasks of one batch on one node hold the same: they share one (immutable) account.
          let a = shared[i]
          if (!a) {
            a = {
              id: '',
              node: info,
              serviceId: q.serviceId,
              cpu: q.cpu,
              mem: q.mem,
              discrete: undefined,
              named: undefined,
              ports: undefined,
            }
            shared[i] = a
          }
          this.#tasks.set(task.id, a)
          result.assigned.push({ task, nodeId: info.node.id })
        } else this.#assign(info, task, q, result)
        const slot = slotOf[i] as number
        const left = (caps[slot] as number) - 1
        caps[slot] = left
        if (left <= 0) heap.pop()
        else {
          heap.k1[i] = (heap.k1[i] as number) + 1
          heap.k2[i] = (heap.k2[i] as number) + 1
          heap.fixTop()
        }
        if (simple && left <= 0) heap.k1[i] = (heap.k1[i] as number) + 1
      }
      if (before)
        for (let i = 0; i < nodes.length; i++) {
          const added = (heap.k1[i] as number) - (before[i] as number)
          if (added > 0) (nodes[i] as NodeInfo).addMany(q.serviceId, added, q.cpu, q.mem)
        }
    }
    const placeOnBranch = (b: Branch, n: number): void => {
      if (n <= 0) return
      if (b.nodes) {
        placeOnLeaf(b.nodes, n)
        return
      }
      if (!b.children) return
      // Even out the service's tasks across the branches: each task goes to the branch with the fewest,
      // among branches with room (ties in the order of the label values).
      const branches = [...b.children.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
      const heap = new KeyHeap(branches.length)
      const room = new Float64Array(branches.length)
      const share = new Float64Array(branches.length)
      for (let j = 0; j < branches.length; j++) {
        const br = (branches[j] as [string, Branch])[1]
        room[j] = br.cap
        heap.k1[j] = br.tasks
        if (br.cap > 0) heap.pushUnordered(j)
      }
      heap.heapify()
      for (let given = 0; given < n && heap.size > 0; given++) {
        const j = heap.top()
        share[j] = (share[j] as number) + 1
        room[j] = (room[j] as number) - 1
        if ((room[j] as number) <= 0) heap.pop()
        else {
          heap.k1[j] = (heap.k1[j] as number) + 1
          heap.fixTop()
        }
      }
      for (let j = 0; j < branches.length; j++)
        placeOnBranch((branches[j] as [string, Branch])[1], share[j] as number)
    }
    placeOnBranch(root, placeable)
    for (const info of eligible) info.scratch = -1
    if (next < k) {
      // Every eligible node is full now: count each under the filter that bounded it.
      for (const by of limits) if (by >= 0) counts[by] = (counts[by] ?? 0) + 1
      const reason = explainFailures(counts)
      for (let i = next; i < k; i++) result.unplaced.push({ task: group[i] as Task, reason })
    }
  }
}

/** Failures are counted per service and spec version, as in swarm. */
function failureKey(t: Task): string {
  return `${t.serviceId}\u0000${t.specVersion?.index ?? ''}`
}
