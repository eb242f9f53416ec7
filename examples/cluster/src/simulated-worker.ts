// A worker node without a daemon around it, for many workers in one process (benchmarks, scale tests): it
// joins with the worker token (its own key, certificate and source address), keeps its own mutual TLS
// session to the dispatcher of the manager that admitted it, and runs an agent on a simulated executor at
// the default heartbeat period. Like a daemon's worker it turns to another manager when a heartbeat fails,
// and like a daemon it follows the routing mesh (the dispatcher's mesh stream, applied by a MeshFollower on
// the node's address) unless told not to.
// It keeps nothing on disk: a stopped simulated worker is gone.

import type { MeshService } from '@swarmkit/overlay'
import * as pki from '@swarmkit/pki'
import { type RpcClient, rpcClient, type TlsTransport, tlsTransport } from '@swarmkit/transport'
import { Agent } from './agent.js'
import type { AssignmentsMessage } from './assignments-message.js'
import type { Assignment, DispatcherApi, HeartbeatAnswer, NodeInfo, TaskStatusUpdate } from './dispatcher.js'
import { joinCluster } from './join.js'
import { boundedHeartbeat } from './remote-dispatcher.js'
import { MeshFollower } from './routing.js'
import { type SimulatedExecutor, simulatedExecutor } from './simulated-executor.js'

export interface SimulatedWorkerOptions {
  /** A manager's join address (`host:port`). */
  readonly joinAddr: string
  /** The worker join token. */
  readonly token: string
  readonly hostname: string
  /** The node's own address: its source address for joining and what it advertises. */
  readonly addr: string
  /** Time per step of the simulated executor. Default 50 ms. */
  readonly stepMs?: number
  /** The agent's heartbeat timer grain (`AgentOptions.heartbeatGrainMs`). */
  readonly heartbeatGrainMs?: number
  /** Follow the routing mesh as a daemon does (`false`: no mesh stream). Default true. */
  readonly routingMesh?: boolean
  /** Called with every task state the agent reports (benchmarks follow convergence with it). */
  readonly onReport?: (update: TaskStatusUpdate) => void
  /** Called with the assignments (new or changed tasks) of every message the agent receives. */
  readonly onAssignments?: (list: readonly Assignment[]) => void
  readonly log?: (line: string) => void
}

export interface SimulatedWorker {
  readonly nodeId: string
  readonly agent: Agent
  readonly executor: SimulatedExecutor
  /** The dispatcher address this worker talks to now. */
  readonly controlAddr: string
  /** Status report calls made and assignment messages received so far (benchmarks count the messages). */
  readonly counts: { readonly statusCalls: number; readonly assignmentMessages: number }
  stop(): Promise<void>
}

/** The agent's view of a dispatcher over the worker's mutual TLS session (the session of the moment). */
export function sessionDispatcher(client: () => RpcClient): DispatcherApi {
  const heartbeat = boundedHeartbeat((timeoutMs) => client().call('dispatcher.heartbeat', {}, { timeoutMs }))
  return {
    register: (_id, info, addr) =>
      client().call('dispatcher.register', { info, addr }, { timeoutMs: 10_000 }),
    heartbeat: (_id) => heartbeat(),
    assignments: (_id, signal) =>
      client().stream('dispatcher.assignments', {}, { signal }) as AsyncIterable<AssignmentsMessage>,
    updateStatus: (_id, updates: readonly TaskStatusUpdate[]) =>
      client().call('dispatcher.status', updates, { timeoutMs: 30_000 }),
    mesh: (_id, signal) => client().stream('dispatcher.mesh', {}, { signal }) as AsyncIterable<MeshService[]>,
  }
}

/** Joins the cluster and starts the worker's agent; resolves once the node has registered. */
export async function startSimulatedWorker(options: SimulatedWorkerOptions): Promise<SimulatedWorker> {
  const log = options.log ?? (() => {})
  const { credentials, answer } = await joinCluster(options.joinAddr, options.token, {
    hostname: options.hostname,
    advertiseAddr: options.addr,
    raftAddr: '',
    localAddress: options.addr,
  })
  const nodeId = answer.nodeId
  const key = pki.encodePrivateKeyPem(credentials.key.privateKey)
  const transport: TlsTransport = tlsTransport({
    key,
    cert: credentials.certificate,
    ca: credentials.roots,
    authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId: credentials.identity.clusterId }),
  })
  let controlAddr = answer.controlAddr
  let client = rpcClient({ transport, address: controlAddr })
  let managers: { control: string }[] = []
  let next = 0
  const executor = simulatedExecutor({
    hostname: options.hostname,
    addr: options.addr,
    serveTasks: false,
    ...(options.stepMs ? { stepMs: options.stepMs } : {}),
  })
  const dispatcher = sessionDispatcher(() => client)
  const report = options.onReport
  const counts = { statusCalls: 0, assignmentMessages: 0 }
  const onAssignments = options.onAssignments
  const watched: DispatcherApi = {
    ...dispatcher,
    updateStatus: (id, updates) => {
      counts.statusCalls++
      const sent = dispatcher.updateStatus(id, updates)
      if (report)
        void sent.then(
          () => updates.forEach(report),
          () => {},
        )
      return sent
    },
    assignments: async function* (id, signal) {
      for await (const m of dispatcher.assignments(id, signal)) {
        counts.assignmentMessages++
        if (onAssignments && Array.isArray(m?.update)) onAssignments(m.update)
        yield m
      }
    },
  }
  const info: NodeInfo = {
    hostname: options.hostname,
    platform: { os: 'linux', architecture: 'x86_64' },
    resources: { nanoCPUs: 8e9, memoryBytes: 32 * 2 ** 30 },
    engineVersion: 'simulated',
  }
  let switching = false
  const onHeartbeat = (hb: HeartbeatAnswer | undefined) => {
    if (hb) {
      if (Array.isArray(hb.managers)) managers = hb.managers.filter((m) => typeof m?.control === 'string')
      return
    }
    // The manager does not answer: turn to another one and register there (as a daemon's worker does).
    // Not again while that registration is in flight: each failure switched at once, and the new session's
    // first calls failing ("no connection") switched again, 223,000 times for 5,000 nodes on a loaded machine.
    if (switching) return
    const others = managers.filter((m) => m.control !== controlAddr)
    if (others.length === 0) return
    const to = others[next++ % others.length]!.control
    log(`${options.hostname}: manager ${controlAddr} does not answer: switching to ${to}`)
    const old = client
    controlAddr = to
    client = rpcClient({ transport, address: to })
    void old.close()
    switching = true
    void dispatcher
      .register(nodeId, info, options.addr)
      .catch((err: Error) => log(`${options.hostname}: registration with ${to} failed: ${err.message}`))
      .finally(() => {
        switching = false
      })
  }
  const agent = new Agent({
    nodeId,
    dispatcher: watched,
    info,
    addr: options.addr,
    executor,
    role: 'worker',
    onHeartbeat,
    ...(options.heartbeatGrainMs ? { heartbeatGrainMs: options.heartbeatGrainMs } : {}),
    log: (l) => log(`${options.hostname}: ${l}`),
  })
  await agent.start()
  // As a daemon's node (daemon.ts #startAgent): the mesh stream of the manager of the moment.
  const mesh =
    options.routingMesh === false
      ? undefined
      : new MeshFollower({
          host: options.addr,
          nodeId,
          source: (signal) => dispatcher.mesh(nodeId, signal),
          log: (l) => log(`${options.hostname}: ${l}`),
        })
  mesh?.start()
  return {
    nodeId,
    agent,
    executor,
    get controlAddr() {
      return controlAddr
    },
    counts,
    async stop() {
      await mesh?.close()
      await agent.stop()
      await client.close()
      await executor.close()
    },
  }
}
