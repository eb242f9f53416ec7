// The manager's side of the worker protocol (swarm's dispatcher): nodes register and heartbeat, receive
// the tasks assigned to them as a stream, and report task status. Runs against the manager's store, so a
// follower serves its workers from its replica and its writes go through raft to the leader.

import type { MeshService } from '@swarmkit/overlay'
import type {
  ClusterStore,
  GenericResource,
  Labels,
  NetworkAttachment,
  Node,
  Platform,
  PortConfig,
  ReadTx,
  Resources,
  Service,
  Task,
  TaskSpec,
  TaskState,
  TLSInfo,
  Tx,
} from '@swarmkit/store'
import { isStoreError, taskStateRank } from '@swarmkit/store'
import type { RpcSession } from '@swarmkit/transport'
import { AssignmentFanout } from './assignment-fanout.js'
import { assignmentStream } from './assignment-stream.js'
import type { AssignmentsMessage } from './assignments-message.js'
import { isAttachmentTask } from './attachments.js'
import { withoutIngress } from './ingress-attachments.js'
import { CONTROL_ADDR_LABEL } from './labels.js'
import { inDutyScope } from './leader-scope.js'
import { MeshFeed } from './mesh-feed.js'
import { type NetworkKeyManager, startNetworkKeyManager } from './network-keys.js'
import { type NetworkIndex, networkIndex, nodeView } from './network-view.js'
import type { ManagerObserver } from './observer.js'
import { meshServices } from './routing.js'
import { type StallClock, stallClock } from './stall-clock.js'
import { type StatusBatcher, statusBatcher } from './status-batcher.js'
import { heartbeatPeriodMs } from './swarm-settings.js'
import { startTaskAddressAllocator, type TaskAddressAllocator } from './task-addresses.js'
import { applyStatuses } from './task-status.js'
import { issuingCA } from './tls-info.js'

/** The data of a secret or config a task uses, sent only to the node that runs the task. */
export interface TaskFile {
  readonly id: string
  readonly name: string
  readonly data: Uint8Array
}

/**
 * What a worker is told about one of its tasks: the whole task, as swarm's dispatcher sends it, with the
 * secrets and configs it references (and only those; no other node receives them).
 */
export interface Assignment {
  readonly taskId: string
  readonly serviceId: string
  readonly serviceName: string
  readonly slot: number
  /** The node the task runs on (the receiving node). */
  readonly nodeId: string
  /** The image, as in `spec.containerSpec.image`. */
  readonly image: string
  readonly desiredState: Task['desiredState']
  readonly state: TaskState
  /** Host-mode published ports the task binds on its node. */
  readonly hostPorts: PortConfig[]
  /** All published ports of the task's service (the first target port is where the mesh reaches it). */
  readonly ports: PortConfig[]
  /** The full task spec: container spec, resources, restart policy, networks, log driver. */
  readonly spec: TaskSpec
  /** The service's labels at the task's creation. */
  readonly serviceLabels: Labels
  /** The networks the task attaches to, with its addresses on them. */
  readonly networks: NetworkAttachment[]
  /** Generic resources (e.g. GPUs) the scheduler gave the task on this node. */
  readonly genericResources: GenericResource[]
  /** The secrets named in `spec.containerSpec.secrets`, with their data. */
  readonly secrets: TaskFile[]
  /** The configs named in `spec.containerSpec.configs`, with their data. */
  readonly configs: TaskFile[]
}

/** A worker's report on one task. */
export interface TaskStatusUpdate {
  readonly taskId: string
  readonly state: TaskState
  readonly message: string
  readonly err?: string
  /** Host-mode ports the task published (reported when it runs). */
  readonly ports?: PortConfig[]
  /** Where the running task answers (an address of its node), for the routing mesh. */
  readonly endpoint?: { readonly address: string; readonly port: number }
  /** The task's container and how it exited (`docker inspect` of the task shows it). */
  readonly containerStatus?: { readonly containerId: string; readonly pid: number; readonly exitCode: number }
}

/** What a worker reports about itself when it registers. */
export interface NodeInfo {
  readonly hostname: string
  readonly platform: Platform
  readonly resources: Resources
  readonly engineVersion: string
  /** The plugins the node's executor offers. Default: the overlay network and json-file log drivers. */
  readonly plugins?: readonly { readonly type: string; readonly name: string }[]
  /** The root the node trusts and the CA key its certificate is from (see `tls-info.ts`). */
  readonly tls?: TLSInfo
}

export interface HeartbeatAnswer {
  readonly periodMs: number
  /** The node's desired role (its spec), when the manager knows the node. */
  readonly role?: 'manager' | 'worker'
  /** The ready managers: join address and dispatcher address, for a worker to fail over to. */
  readonly managers?: { readonly addr: string; readonly control: string }[]
  /**
   * What the cluster wants a node's TLS to be: the root to trust, and the CA certificate that issues
   * certificates now (the new root during a root rotation). A node that differs renews or changes its roots.
   */
  readonly tls?: { readonly trustRoot: string; readonly issuer: string }
}

/** The worker protocol, as the agent sees it (in-process on a manager, over mutual TLS on a worker). */
export interface DispatcherApi {
  register(nodeId: string, info: NodeInfo, addr: string): Promise<void>
  /** Keeps the node ready; answers the period and the role the node should have (`docker node promote`). */
  heartbeat(nodeId: string): Promise<HeartbeatAnswer>
  /**
   * The node's tasks: a complete set first, then only the changes, with the changes to the node's network
   * view (see assignments-message.ts). A new call starts again from a complete set.
   */
  assignments(nodeId: string, signal: AbortSignal): AsyncIterable<AssignmentsMessage>
  updateStatus(nodeId: string, updates: readonly TaskStatusUpdate[]): Promise<void>
  /** The published ports of every service and their endpoints, again whenever they change. */
  mesh(nodeId: string, signal: AbortSignal): AsyncIterable<MeshService[]>
}

const RANK_ASSIGNED = taskStateRank('assigned')
/** Most node objects one transaction changes: a node is up to a few KB, a raft entry at most 1.5 MiB. */
const MAX_NODES_PER_TX = 200
const MAX_UPDATES = 1000

export interface DispatcherOptions {
  readonly store: ClusterStore
  /** Heartbeat period handed to workers; a node is down after three missed periods. Default 5,000 ms. */
  readonly heartbeatPeriodMs?: number
  readonly log?: (line: string) => void
  /** Whether this manager leads: only the leader tracks heartbeats and marks nodes down. Default: always. */
  readonly isLeader?: () => boolean
  /** On a follower: hands a heartbeat on to the leader. */
  readonly forwardHeartbeat?: (nodeId: string) => Promise<void>
  /** Told of each heartbeat and status batch (metrics, debug logs). */
  readonly observer?: Pick<ManagerObserver, 'heartbeat' | 'statusUpdates'>
  /**
   * Whether a heartbeat may make `nodeId` ready again: false for a manager whose raft member the leader
   * does not hear (raft's view decides a manager's reachability). Default: always.
   */
  readonly canBeReady?: (nodeId: string) => boolean
  /**
   * Whether the leader's raft hears `nodeId` as a manager member right now. Such a node is not marked down
   * for missing heartbeats: its process runs, and its agent is between sessions (a promoted worker restarts
   * as a manager, which takes longer than the grace period under load), so moving its tasks would restart
   * work that never stopped. Default: never.
   */
  readonly raftHears?: (nodeId: string) => boolean
}

/** Serves the worker protocol from a manager's store; `close()` stops the down-node checker. */
export class Dispatcher implements DispatcherApi {
  readonly #store: ClusterStore
  readonly #periodMs: number
  /** When each tracked node was last heard, on `#clock`. */
  readonly #seen = new Map<string, number>()
  /**
   * On the leader: the manager whose relay (`heardElsewhere`) brought each node's last heartbeat, for the
   * nodes last heard through another manager; and when each such manager's last relay arrived, on `#clock`.
   * A node is judged by what its relayer has told, not by a silence that may be the relayer's own.
   */
  readonly #relayedBy = new Map<string, string>()
  readonly #relayArrived = new Map<string, number>()
  /**
   * On the leader: the nodes that were ready when tracking started and have not been heard since (heartbeat,
   * relay or registration): the dead leader's, until they fail over. A node that joins later is not in it.
   */
  readonly #notHeardYet = new Set<string>()
  /**
   * Silence is counted on a clock that stands still while this manager's loop is stalled: a new leader
   * rebuilding its duties, or any long synchronous stretch, must not mark down the nodes whose heartbeats
   * wait in its sockets meanwhile (leader-stall.test.ts).
   */
  readonly #clock: StallClock = stallClock()
  /** Sessions of the workers connected to this manager, to ask their agents for logs. */
  readonly sessions = new Map<string, RpcSession>()
  #timer: ReturnType<typeof setTimeout>
  #closed = false
  /** The leadership term tracking started under: marking nodes down is a leader duty of that term. */
  #term: number | undefined
  #addresses: TaskAddressAllocator | undefined
  #keys: NetworkKeyManager | undefined
  readonly #log: (line: string) => void
  readonly #isLeader: () => boolean
  readonly #forward: ((nodeId: string) => Promise<void>) | undefined
  readonly #observer: DispatcherOptions['observer']
  readonly #canBeReady: (nodeId: string) => boolean
  readonly #raftHears: (nodeId: string) => boolean
  readonly #fanout: AssignmentFanout
  readonly #meshFeed: MeshFeed
  readonly #statuses: StatusBatcher<TaskStatusUpdate>
  /**
   * Registrations and nodes ready again, each committed with the others that wait (as status reports):
   * a join storm, or a thousand nodes coming back after a stall, is a few raft entries instead of one per
   * node, whose queue behind slow commits made heartbeats time out and marked more nodes down.
   */
  readonly #registrations: StatusBatcher<{ info: NodeInfo; addr: string }>
  readonly #ready: StatusBatcher<true>

  constructor(options: DispatcherOptions) {
    this.#store = options.store
    this.#fanout = new AssignmentFanout(options.store)
    this.#meshFeed = new MeshFeed(options.store, () => this.#meshList().key)
    this.#statuses = statusBatcher({ commit: (batch) => this.#commitStatuses(batch), reportsFault })
    this.#registrations = statusBatcher({
      maxUpdates: MAX_NODES_PER_TX,
      reportsFault,
      commit: (batch) =>
        this.#store.update((tx) => {
          for (const { nodeId, updates } of batch)
            for (const r of updates) applyRegistration(tx, nodeId, r.info, r.addr)
        }),
    })
    this.#ready = statusBatcher({
      maxUpdates: MAX_NODES_PER_TX,
      reportsFault,
      commit: (batch) =>
        this.#store.update((tx) => {
          for (const { nodeId } of batch) {
            const n = tx.get('nodes', nodeId)
            if (n && n.status.state !== 'ready')
              tx.update('nodes', { ...n, status: { state: 'ready', addr: n.status.addr } })
          }
        }),
    })
    this.#canBeReady = options.canBeReady ?? (() => true)
    this.#raftHears = options.raftHears ?? (() => false)
    this.#isLeader = options.isLeader ?? (() => true)
    this.#forward = options.forwardHeartbeat
    this.#observer = options.observer
    this.#periodMs = options.heartbeatPeriodMs ?? 5000
    this.#log = options.log ?? (() => {})
    this.#timer = setTimeout(() => this.#tick(), this.#periodMs)
    this.#timer.unref()
  }

  /** The heartbeat period now: the cluster's (`docker swarm update --dispatcher-heartbeat`), else the default. */
  get periodMs(): number {
    return heartbeatPeriodMs(this.#store) ?? this.#periodMs
  }

  #tick(): void {
    void this.#checkDown().finally(() => {
      if (this.#closed) return
      this.#timer = setTimeout(() => this.#tick(), this.periodMs)
      this.#timer.unref()
    })
  }

  async register(nodeId: string, info: NodeInfo, addr: string): Promise<void> {
    checkInfo(info)
    if (!this.#store.view((tx) => tx.get('nodes', nodeId)))
      throw new Error(`node ${nodeId} not found: it was removed from the swarm`)
    await this.#registrations.submit(nodeId, [{ info, addr }])
    this.#seen.set(nodeId, this.#clock.now())
    this.#relayedBy.delete(nodeId)
    this.#notHeardYet.delete(nodeId)
    this.#log(`node ${nodeId} (${info.hostname}) registered`)
  }

  async heartbeat(nodeId: string): Promise<HeartbeatAnswer> {
    return this.heard(nodeId)
  }

  /**
   * A heartbeat of `nodeId`, answered at once unless the node must first be made ready again: the control
   * server's path, without a promise per heartbeat (a thousand a second at 5,000 nodes).
   */
  heard(nodeId: string): HeartbeatAnswer | Promise<HeartbeatAnswer> {
    this.#observer?.heartbeat?.(nodeId)
    if (!this.#isLeader()) {
      // Handed on in the background: the answer does not depend on it, and a slow leader must not make
      // this manager look unreachable to the worker.
      void this.#forward?.(nodeId).catch((err) =>
        this.#log(`heartbeat of ${nodeId} not forwarded: ${err.message}`),
      )
      return this.#answer(nodeId)
    }
    this.#seen.set(nodeId, this.#clock.now())
    this.#relayedBy.delete(nodeId)
    this.#notHeardYet.delete(nodeId)
    // A node marked down (no heartbeat, or a manager raft lost) is ready again with its next heartbeat; a
    // manager's reachability is raft's to say (see manager-health.ts).
    const down = this.#store.view((tx) => {
      const state = tx.get('nodes', nodeId)?.status.state
      return state !== undefined && state !== 'ready'
    })
    if (down && this.#canBeReady(nodeId))
      return this.#ready.submit(nodeId, [true]).then(() => this.#answer(nodeId))
    return this.#answer(nodeId)
  }

  /**
   * On the leader: heartbeats a follower heard and handed on together (heartbeat-relay.ts), tracked as if
   * heard here. Answers at once: nodes ready again are committed in the background. `relayer` (the manager
   * that called) is remembered for each node: while that manager's own relays are late (it is starved, or
   * between two calls that failed), its nodes' silence is its, not theirs (see `#waitsForRelayer`).
   */
  heardElsewhere(nodeIds: readonly string[], relayer?: string): void {
    if (!this.#isLeader()) throw new Error('not the leader')
    const now = this.#clock.now()
    for (const id of nodeIds) this.#seen.set(id, now)
    for (const id of nodeIds) this.#notHeardYet.delete(id)
    if (relayer !== undefined) {
      this.#relayArrived.set(relayer, now)
      for (const id of nodeIds) this.#relayedBy.set(id, relayer)
    } else for (const id of nodeIds) this.#relayedBy.delete(id)
    const down = this.#store.view((tx) =>
      nodeIds.filter((id) => {
        const state = tx.get('nodes', id)?.status.state
        return state !== undefined && state !== 'ready'
      }),
    )
    for (const id of down)
      if (this.#canBeReady(id))
        this.#ready.submit(id, [true]).catch((err) => this.#log(`node ${id} not ready again: ${err.message}`))
  }

  /**
   * What every heartbeat answer shares (the period, the managers, the TLS roots), at a store version: at
   * 5,000 nodes a manager answers hundreds of heartbeats a second, and the store changes far less often.
   */
  #shared:
    | {
        version: number
        answer: Omit<HeartbeatAnswer, 'role'>
        /** The whole answer by role (frozen: every node of that role gets this object). */
        byRole: Map<string | undefined, HeartbeatAnswer>
      }
    | undefined

  #answer(nodeId: string): HeartbeatAnswer {
    const version = this.#store.version
    if (this.#shared?.version !== version) {
      const periodMs = this.periodMs
      const answer = this.#store.view((tx) => {
        const managers = tx
          .find('nodes', { role: 'manager' }, (n) => n.status.state === 'ready' && !!n.managerStatus)
          .flatMap((n) => {
            const control = n.description?.engine.labels[CONTROL_ADDR_LABEL]
            return control ? [{ addr: n.managerStatus!.addr, control }] : []
          })
        const cluster = tx.find('clusters')[0]
        const tls = cluster ? { trustRoot: cluster.rootCA.caCert, issuer: issuingCA(cluster) } : undefined
        return { periodMs, managers, ...(tls ? { tls } : {}) }
      })
      this.#shared = { version, answer, byRole: new Map() }
    }
    const role = this.#store.view((tx) => tx.get('nodes', nodeId)?.spec.role)
    const byRole = this.#shared.byRole
    let whole = byRole.get(role)
    if (!whole) {
      whole = Object.freeze({ ...this.#shared.answer, ...(role ? { role } : {}) })
      byRole.set(role, whole)
    }
    return whole
  }

  /** A new leader gives every ready node a full grace period before it can be marked down. */
  startTracking(term?: number): void {
    this.#term = term
    // Task addresses on overlay networks are a leader duty too (see task-addresses.ts).
    this.#addresses?.stop()
    this.#addresses = startTaskAddressAllocator({
      store: this.#store,
      ...(term === undefined ? {} : { term }),
      log: this.#log,
    })
    // So are the encrypted overlays' keys (see network-keys.ts).
    this.#keys?.stop()
    this.#keys = startNetworkKeyManager({
      store: this.#store,
      ...(term === undefined ? {} : { term }),
      log: this.#log,
    })
    const now = this.#clock.now()
    this.#seen.clear()
    this.#relayedBy.clear()
    this.#relayArrived.clear()
    this.#notHeardYet.clear()
    for (const n of this.#store.view((tx) => tx.find('nodes')))
      if (n.status.state === 'ready') {
        this.#seen.set(n.id, now)
        this.#notHeardYet.add(n.id)
      }
  }

  /**
   * On the leader: whether `nodeId` was ready when this leadership began and has given no sign of life since
   * (no heartbeat, relay or registration, and no agent connected here). A dead manager's nodes stay so until
   * they fail over to another manager; the scheduler places on them last, as their assignments could not
   * leave meanwhile. False when not tracking, and for a node that joined since.
   */
  unheard(nodeId: string): boolean {
    return this.#notHeardYet.has(nodeId) && !this.sessions.has(nodeId)
  }

  stopTracking(): void {
    this.#notHeardYet.clear()
    this.#addresses?.stop()
    this.#addresses = undefined
    this.#keys?.stop()
    this.#keys = undefined
    this.#term = undefined
    this.#seen.clear()
  }

  /**
   * Logs the first task in state `assigned` this manager's streams send after `label` (a leader change), with
   * how long after it: a failover's timeline, from the election to the first new work a worker is given.
   */
  traceFirstAssignment(label: string): void {
    this.#traceFirst = { label, at: performance.now() }
  }

  #traceFirst: { label: string; at: number } | undefined

  #traced(nodeId: string, a: Assignment | undefined): Assignment | undefined {
    const trace = this.#traceFirst
    if (trace && a?.state === 'assigned') {
      this.#traceFirst = undefined
      this.#log(
        `first new assignment sent after ${trace.label}: ${Math.round(performance.now() - trace.at)} ms, to node ${nodeId} (${this.whereIs(nodeId)})`,
      )
    }
    return a
  }

  /**
   * Where this manager hears `nodeId` from: `session here` (its agent is connected here), `relayed by M`
   * (on the leader: its last heartbeat came through manager M in this leadership), else `not heard`.
   */
  whereIs(nodeId: string): string {
    if (this.sessions.has(nodeId)) return 'session here'
    const relayer = this.#relayedBy.get(nodeId)
    return relayer === undefined ? 'not heard' : `relayed by ${relayer}`
  }

  /**
   * The node's complete set of tasks, then only the tasks that changed or left it, each message with the
   * changes to the node's network view (assignment-stream.ts).
   */
  assignments(nodeId: string, signal: AbortSignal): AsyncIterable<AssignmentsMessage> {
    return assignmentStream(
      {
        fanout: this.#fanout,
        all: (id) => this.#list(id),
        one: (id, taskId) => this.#traced(id, this.#one(id, taskId)),
        view: (id) => nodeView(this.#networkIndex(), id),
      },
      nodeId,
      signal,
    )
  }

  /** The network index at a store version, shared by every node's stream. */
  #netAt: { version: number; index: NetworkIndex } | undefined

  #networkIndex(): NetworkIndex {
    const version = this.#store.version
    if (this.#netAt?.version !== version) this.#netAt = { version, index: this.#store.view(networkIndex) }
    return this.#netAt.index
  }

  /** The mesh list at a store version, shared by every node's stream. */
  #meshAt: { version: number; list: MeshService[]; key: string } | undefined

  #meshList(): { list: MeshService[]; key: string } {
    const version = this.#store.version
    if (this.#meshAt?.version !== version) {
      const list = this.#store.view(meshServices)
      this.#meshAt = { version, list, key: JSON.stringify(list) }
    }
    return this.#meshAt
  }

  async *mesh(_nodeId: string, signal: AbortSignal): AsyncIterable<MeshService[]> {
    // Woken once per burst of commits by the feed every stream shares (mesh-feed.ts), not per change.
    const changes = this.#meshFeed.subscribe(signal)
    let last = ''
    const changed = () => {
      const { list, key } = this.#meshList()
      if (key === last) return undefined
      last = key
      return list
    }
    try {
      yield changed() ?? []
      while (await changes.next()) {
        const list = changed()
        if (list) yield list
      }
    } finally {
      changes.close()
    }
  }

  async updateStatus(nodeId: string, updates: readonly TaskStatusUpdate[]): Promise<void> {
    if (!Array.isArray(updates) || updates.length > MAX_UPDATES)
      throw new TypeError('updates: expected a list')
    if (updates.length === 0) return
    // Checked here, not inside the batch's transaction: a malformed update fails only its own report, by name.
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i] as Partial<TaskStatusUpdate> | null
      if (typeof u !== 'object' || u === null || typeof u.taskId !== 'string' || typeof u.state !== 'string')
        throw new TypeError(`updates[${i}]: expected { taskId, state } with both strings`)
    }
    this.#observer?.statusUpdates?.(nodeId, updates.length)
    await this.#statuses.submit(nodeId, updates)
  }

  /** Status transactions committed so far (each carries the reports of every node that sent one meanwhile). */
  get statusCommits(): number {
    return this.#statuses.commits
  }

  async #commitStatuses(
    batch: readonly { nodeId: string; updates: readonly TaskStatusUpdate[] }[],
  ): Promise<void> {
    const now = Date.now()
    await this.#store.update((tx) => {
      for (const { nodeId, updates } of batch) applyStatuses(tx, nodeId, updates, now)
    })
  }

  close(): void {
    this.#addresses?.stop()
    this.#keys?.stop()
    this.#closed = true
    clearTimeout(this.#timer)
    this.#clock.close()
  }

  /**
   * Every task on the node from `assigned` on, also finished ones: the worker keeps what a finished task
   * left (its logs) until the task leaves the store (the reaper keeps a few per slot), as swarm does.
   */
  #list(nodeId: string): Assignment[] {
    return this.#store.view((tx) =>
      tx
        // A container's network attachment has nothing for the agent to run (see attachments.ts).
        .find(
          'tasks',
          { nodeId },
          (t) => taskStateRank(t.status.state) >= RANK_ASSIGNED && !isAttachmentTask(t),
        )
        .map((t) => this.#kept(tx, t)),
    )
  }

  /**
   * Whether late node `nodeId` (last heard at `at`) is not judged yet because the manager that relays its
   * heartbeats has not told this leader about the whole grace period. A relay carries every node its manager
   * heard since its last call, about once a second; so a relayer that called after `at + grace` without the
   * node has seen it silent for the whole grace, and the node is judged. Before that the node waits while the
   * relayer itself is fresh: its last relay arrived within one grace, or raft hears its manager now (its
   * loop runs, so its workers' heartbeats are answered and they stay with it), for at most two graces.
   *
   * Bounds, with P the heartbeat period and checks every P: a dead node behind a relayer that goes on relaying
   * is marked down by `at + 4P` plus one relay interval (1 s), as before plus that interval; behind a relayer
   * that is gone (no relay and raft does not hear it) by its last relay + 4P, and its last relay came at most
   * one relay interval after `at`; behind a relayer raft hears but whose relays do not arrive, by its last
   * relay + 7P. A live node of a dead relayer moves to another manager within P + 2 s (the agent's failover)
   * and is then heard through that one.
   */
  #waitsForRelayer(nodeId: string, at: number, now: number, graceMs: number): boolean {
    const relayer = this.#relayedBy.get(nodeId)
    if (relayer === undefined) return false
    const arrived = this.#relayArrived.get(relayer) ?? Number.NEGATIVE_INFINITY
    // The relayer spoke after the node's whole grace without it: the node's own silence.
    if (arrived - at > graceMs) return false
    const relayerSilentMs = now - arrived
    if (relayerSilentMs <= graceMs) return true
    return relayerSilentMs <= 2 * graceMs && this.#raftHears(relayer)
  }

  /** One task's assignment if the node is to hold it now (as in `#list`), else undefined. */
  #one(nodeId: string, taskId: string): Assignment | undefined {
    return this.#store.view((tx) => {
      const t = tx.get('tasks', taskId)
      if (t?.nodeId !== nodeId || taskStateRank(t.status.state) < RANK_ASSIGNED || isAttachmentTask(t))
        return undefined
      return this.#kept(tx, t)
    })
  }

  #kept(tx: ReadTx, t: Task): Assignment {
    const service = tx.get('services', t.serviceId)
    const hit = this.#assignments.get(t)
    if (hit && hit.service === service) return hit.assignment
    const assignment = assignmentOf(tx, t)
    this.#assignments.set(t, { service, assignment })
    return assignment
  }

  /**
   * Each task's assignment, kept while the task and its service are the same objects (store objects are
   * immutable: a change is a new object): a node's list comes again for every change on the node.
   */
  readonly #assignments = new WeakMap<Task, { service: Service | undefined; assignment: Assignment }>()

  async #checkDown(): Promise<void> {
    if (!this.#isLeader()) return
    // Every node the store says is ready is tracked, also one that registered (through another manager, or
    // just before this leader took over) but whose heartbeat never reached this leader: it gets a full grace
    // period from now, then is marked down like any other silent node.
    const now = this.#clock.now()
    for (const n of this.#store.view((tx) => tx.find('nodes', undefined, (x) => x.status.state === 'ready')))
      if (!this.#seen.has(n.id)) this.#seen.set(n.id, now)
    const graceMs = 3 * this.periodMs
    const deadline = now - graceMs
    const late = [...this.#seen]
      .filter(([id, at]) => at < deadline && !this.#waitsForRelayer(id, at, now, graceMs))
      .map(([id]) => id)
    // A manager raft hears is alive: a new grace period from now, counted once raft stops hearing it.
    for (const id of late) if (this.#raftHears(id)) this.#seen.set(id, now)
    const down = late.filter((id) => this.#seen.get(id) !== now)
    if (down.length === 0) return
    for (const id of down) {
      this.#seen.delete(id)
      this.#relayedBy.delete(id)
    }
    try {
      // In transactions that fit a raft entry: 5,000 nodes at once were refused as too large, every time.
      const markDown = async () => {
        for (let i = 0; i < down.length; i += MAX_NODES_PER_TX)
          await this.#store.update((tx) => {
            for (const id of down.slice(i, i + MAX_NODES_PER_TX)) {
              const n = tx.get('nodes', id)
              // Heard since the check (its heartbeat was read after the check): not down.
              if (n?.status.state !== 'ready' || this.#seen.has(id)) continue
              tx.update('nodes', {
                ...n,
                status: { ...n.status, state: 'down', message: 'heartbeat failure' },
              })
            }
          })
      }
      const term = this.#term
      await (term === undefined ? markDown() : inDutyScope(term, markDown))
      this.#log(`nodes down (no heartbeat): ${down.join(', ')}`)
    } catch (err) {
      // Still silent unless a heartbeat came meanwhile: try again on the next check.
      for (const id of down) if (!this.#seen.has(id)) this.#seen.set(id, Number.NEGATIVE_INFINITY)
      this.#log(`marking nodes down failed: ${(err as Error).message}`)
    }
  }
}

/** A node's registration: what it reports about itself, and ready at `addr`. */
function applyRegistration(tx: Tx, nodeId: string, info: NodeInfo, addr: string): void {
  const n = tx.get('nodes', nodeId)
  // (Checked before it was queued; one removed since is left alone, not made to fail the batch.)
  if (!n) return
  const next: Node = {
    ...n,
    description: {
      hostname: info.hostname,
      platform: info.platform,
      resources: info.resources,
      engine: {
        engineVersion: info.engineVersion,
        labels: n.description?.engine.labels ?? {},
        plugins: info.plugins?.map((p) => ({ type: p.type, name: p.name })) ?? [
          { type: 'Network', name: 'overlay' },
          { type: 'Log', name: 'json-file' },
        ],
      },
      ...(info.tls
        ? { tlsInfo: info.tls }
        : n.description?.tlsInfo
          ? { tlsInfo: n.description.tlsInfo }
          : {}),
    },
    status: { state: 'ready', addr },
  }
  // A node that registers again as it was (a worker turned to another manager when its own died) changes
  // nothing: no write, so the survivors' raft log does not carry a third of the nodes during an election.
  if (
    n.status.state === 'ready' &&
    n.status.addr === addr &&
    JSON.stringify(n.description) === JSON.stringify(next.description)
  )
    return
  tx.update('nodes', next)
}

/** The whole task for its node, with the data of the secrets and configs it uses. */
export function assignmentOf(tx: ReadTx, t: Task): Assignment {
  const ports =
    tx.get('services', t.serviceId)?.endpoint?.ports ??
    tx.get('services', t.serviceId)?.spec.endpointSpec?.ports ??
    []
  const c = t.spec.containerSpec
  const secrets: TaskFile[] = []
  for (const ref of c.secrets ?? []) {
    const s = tx.get('secrets', ref.secretId)
    if (s && !secrets.some((x) => x.id === s.id))
      secrets.push({ id: s.id, name: s.spec.name, data: s.spec.data })
  }
  const configs: TaskFile[] = []
  for (const ref of c.configs ?? []) {
    const s = tx.get('configs', ref.configId)
    if (s && !configs.some((x) => x.id === s.id))
      configs.push({ id: s.id, name: s.spec.name, data: s.spec.data })
  }
  return {
    taskId: t.id,
    serviceId: t.serviceId,
    serviceName: t.serviceAnnotations.name,
    slot: t.slot,
    nodeId: t.nodeId,
    image: c.image,
    desiredState: t.desiredState,
    state: t.status.state,
    hostPorts: ports.filter((p) => p.publishMode === 'host'),
    ports,
    spec: t.spec,
    serviceLabels: t.serviceAnnotations.labels ?? {},
    // Not the ingress attachment: whether the task joins it is its node's call (kernel-ingress.ts).
    networks: withoutIngress(tx, t.networks ?? []),
    genericResources: t.assignedGenericResources ?? [],
    secrets,
    configs,
  }
}

function checkInfo(info: NodeInfo): void {
  if (
    typeof info !== 'object' ||
    info === null ||
    typeof info.hostname !== 'string' ||
    info.hostname.length > 255 ||
    typeof info.engineVersion !== 'string' ||
    typeof info.platform?.os !== 'string' ||
    typeof info.platform?.architecture !== 'string' ||
    !Number.isSafeInteger(info.resources?.nanoCPUs) ||
    !Number.isSafeInteger(info.resources?.memoryBytes) ||
    (info.plugins !== undefined &&
      (!Array.isArray(info.plugins) ||
        info.plugins.length > 256 ||
        !info.plugins.every((p) => typeof p?.type === 'string' && typeof p?.name === 'string')))
  )
    throw new TypeError('info: expected { hostname, platform, resources, engineVersion }')
  const tls = info.tls
  if (
    tls !== undefined &&
    (typeof tls !== 'object' ||
      tls === null ||
      typeof tls.trustRoot !== 'string' ||
      tls.trustRoot.length > 64 * 1024 ||
      !(tls.certIssuerSubject instanceof Uint8Array) ||
      tls.certIssuerSubject.length > 4096 ||
      !(tls.certIssuerPublicKey instanceof Uint8Array) ||
      tls.certIssuerPublicKey.length > 4096)
  )
    throw new TypeError('info.tls: expected { trustRoot, certIssuerSubject, certIssuerPublicKey }')
}

/**
 * Whether a batched commit's failure may come from one node's report (then each is tried alone): not when
 * raft did not commit it for reasons of its own (no leader, the leadership changed under it and it was fenced
 * off, the leader dropped it) or its outcome is open. A command too large for raft is the batch's doing.
 */
function reportsFault(err: unknown): boolean {
  if (!isStoreError(err)) return true
  if (err.code === 'OUTCOME_UNKNOWN') return false
  if (err.code !== 'PROPOSAL_FAILED') return true
  return (err.cause as { code?: unknown } | undefined)?.code === 'TOO_LARGE'
}
