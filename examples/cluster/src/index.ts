/**
 * @packageDocumentation
 * `@swarmkit/cluster`: the reference cluster that the real `docker` CLI drives. Each node is a
 * {@link Daemon} (inactive until `docker swarm init` or `docker swarm join`) served by {@link engineApi},
 * the Docker Engine API subset of swarm mode over HTTP. Managers run raft with the store as its state
 * machine, the scheduler and orchestrators on the leader, the CA and the dispatcher; every node runs an agent
 * that drives its tasks through an {@link Executor}: the {@link simulatedExecutor} (in-process tasks) or
 * a Docker Engine.
 *
 * ```ts
 * import { startNode } from '@swarmkit/cluster'
 * const node = await startNode({ stateDir: '/tmp/n1', apiAddress: '127.0.0.1:2375' })
 * // DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
 * await node.close()
 * ```
 */
export { Agent, type AgentOptions } from './agent.js'
export { API_VERSION, engineApi } from './api.js'
export {
  type AssignmentsMessage,
  assignmentsMessages,
  checkAssignmentsMessage,
  MAX_ASSIGNMENTS_PER_MESSAGE,
} from './assignments-message.js'
export { containerConfig, SWARM_LABELS, taskName } from './container-config.js'
export { Daemon, type DaemonOptions, type LocalNodeState } from './daemon.js'
export type {
  Assignment,
  DispatcherApi,
  HeartbeatAnswer,
  NodeInfo,
  TaskFile,
  TaskStatusUpdate,
} from './dispatcher.js'
export { Dispatcher } from './dispatcher.js'
export {
  type DockerExecutor,
  type DockerExecutorOptions,
  dockerExecutor,
  engineAnswers,
  type TaskNetworking,
} from './docker-executor.js'
export { ENGINE_API_VERSION, EngineClient, parseEngineAddress } from './engine-client.js'
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
export {
  type Controller,
  type ControllerCallOptions,
  type ControllerEvents,
  type Executor,
  ExecutorError,
  type ExecutorErrorCode,
  exitErrorText,
  isExecutorError,
  type LogLine,
  type NodeDescription,
  type ObservedTask,
  type PluginDescription,
  type TaskExit,
  UNHEALTHY_TEXT,
} from './executor.js'
export { chooseExecutor, DEFAULT_ENGINE_ADDR, type ExecutorChoice } from './executor-choice.js'
export { type Filters, parseFilters } from './filters.js'
export { CONTROL_ADDR_LABEL, ENDPOINT_LABEL, RAFT_ADDR_LABEL } from './labels.js'
export { ENGINE_VERSION, Manager, type ManagerOptions } from './manager.js'
export {
  applyViewUpdate,
  isNetworkViewUpdate,
  type NetworkViewUpdate,
} from './network-view.js'
export { type ClusterNode, type StartNodeOptions, startNode } from './node.js'
export { MeshFollower, type MeshFollowerOptions, meshServices } from './routing.js'
export {
  SIMULATE_LABELS,
  type SimulatedBehaviour,
  type SimulatedExecutor,
  type SimulatedExecutorOptions,
  simulatedExecutor,
} from './simulated-executor.js'
export {
  type SimulatedWorker,
  type SimulatedWorkerOptions,
  startSimulatedWorker,
} from './simulated-worker.js'
export {
  type LocalTaskNetworking,
  type LocalTaskNetworkingOptions,
  localTaskNetworking,
  taskNetworkingSupported,
} from './task-networking.js'
export {
  type WorkerNetworking,
  type WorkerNetworkingOptions,
  workerNetworking,
} from './worker-network.js'
