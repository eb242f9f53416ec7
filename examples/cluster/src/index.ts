/**
 * @packageDocumentation
 * `@swarmkit/example-cluster`: the reference cluster that the real `docker` CLI drives. Each node is a
 * {@link Daemon} (inactive until `docker swarm init` or `docker swarm join`) served by {@link engineApi},
 * the Docker Engine API subset of swarm mode over HTTP. Managers run raft with the store as its state
 * machine, the scheduler and orchestrators on the leader, the CA and the dispatcher; workers run an agent
 * with a simulated executor.
 *
 * ```ts
 * import { startNode } from '@swarmkit/example-cluster'
 * const node = await startNode({ stateDir: '/tmp/n1', apiAddress: '127.0.0.1:2375' })
 * // DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
 * await node.close()
 * ```
 */
export { Agent, type AgentOptions } from './agent.js'
export { API_VERSION, engineApi } from './api.js'
export { Daemon, type DaemonOptions, type LocalNodeState } from './daemon.js'
export type { Assignment, DispatcherApi, HeartbeatAnswer, NodeInfo, TaskStatusUpdate } from './dispatcher.js'
export { Dispatcher } from './dispatcher.js'
export { ApiError, MESSAGES } from './errors.js'
export {
  ClusterEvents,
  type EventAction,
  type EventMessage,
  type EventSubscribeOptions,
  type EventType,
  eventJson,
  eventMatches,
  writeServerSentEvents,
} from './events.js'
export { type Filters, parseFilters } from './filters.js'
export { CONTROL_ADDR_LABEL, ENDPOINT_LABEL, RAFT_ADDR_LABEL } from './labels.js'
export { ENGINE_VERSION, Manager, type ManagerOptions } from './manager.js'
export { type ClusterNode, type StartNodeOptions, startNode } from './node.js'
export { MeshFollower, type MeshFollowerOptions, meshServices } from './routing.js'
