import { typeError } from './internal/check.js'

/**
 * The cluster object model: nodes, services, tasks, networks, the cluster, secrets and configs.
 *
 * Field names are the camelCase forms of Docker's swarm API (Engine API v1.50) so that an HTTP layer can map
 * them to Docker's PascalCase JSON one to one, without loss. Units follow Docker's API: durations are integer
 * nanoseconds ({@link Nanoseconds}), CPU is in units of 1e-9 CPUs, memory in bytes. Timestamps are
 * milliseconds since the Unix epoch ({@link Timestamp}); the HTTP layer renders them as RFC 3339.
 *
 * Objects held by the store are never mutated in place: read an object, build a changed copy, write it back
 * with the `meta.version` you read ("update out of sequence" otherwise).
 */

/** Integer nanoseconds, as in Docker's API (`20000000000` is 20 s). Safe as a JS number up to ~104 days. */
export type Nanoseconds = number
/** Milliseconds since the Unix epoch. */
export type Timestamp = number
/** String labels, as in Docker's API. */
export type Labels = Record<string, string>

/** Bookkeeping every stored object carries. */
export interface Meta {
  /** The store version (the raft index when replicated) of the object's last change; starts above 0. */
  version: number
  createdAt: Timestamp
  updatedAt: Timestamp
}

/** The tables of the store. */
export const TABLES = ['nodes', 'services', 'tasks', 'networks', 'clusters', 'secrets', 'configs'] as const
/** The name of one of the store's tables (`nodes`, `services`, `tasks`, …). */
export type Table = (typeof TABLES)[number]

/** A driver reference with options: network driver, IPAM driver, log driver, secret/config driver. */
export interface Driver {
  name: string
  options?: Record<string, string>
}

/** An OS and CPU architecture (Docker's `Platform`). */
export interface Platform {
  /** `amd64`, `arm64`, `x86_64`, … as the engine reports it. */
  architecture: string
  /** `linux`, `windows`. */
  os: string
}

// ---------------------------------------------------------------------------------------------------------
// Resources

/** A generic (user-defined) resource: a named one (e.g. a GPU by UUID) or a discrete count (e.g. `SSD=3`). */
export type GenericResource =
  | { namedResourceSpec: { kind: string; value: string } }
  | { discreteResourceSpec: { kind: string; value: number } }

/** Resources a node offers, or a task reserves. */
export interface Resources {
  /** CPU in units of 1e-9 CPUs (`1500000000` is 1.5 CPUs). */
  nanoCPUs: number
  memoryBytes: number
  genericResources?: GenericResource[]
}

/** A limit; `pids` 0 means unlimited. */
export interface ResourceLimits {
  nanoCPUs: number
  memoryBytes: number
  pids?: number
}

/** Resource limits and reservations of a task (Docker's `ResourceRequirements`). */
export interface ResourceRequirements {
  limits?: ResourceLimits
  reservations?: Resources
}

// ---------------------------------------------------------------------------------------------------------
// Nodes

/** The roles a node can have. */
export const NODE_ROLES = ['worker', 'manager'] as const
/** `worker` or `manager`. */
export type NodeRole = (typeof NODE_ROLES)[number]

/** The availabilities an operator can set on a node. */
export const NODE_AVAILABILITIES = ['active', 'pause', 'drain'] as const
/** `active` takes tasks; `pause` takes no new tasks; `drain` has its tasks moved elsewhere. */
export type NodeAvailability = (typeof NODE_AVAILABILITIES)[number]

/** The states a node's status can report. */
export const NODE_STATES = ['unknown', 'down', 'ready', 'disconnected'] as const
/** A node's state as the managers see it (Docker's `NodeStatus.State`). */
export type NodeState = (typeof NODE_STATES)[number]

/** How reachable a manager is, as the raft leader sees it. */
export const REACHABILITIES = ['unknown', 'unreachable', 'reachable'] as const
/** A manager's reachability (Docker's `ManagerStatus.Reachability`). */
export type Reachability = (typeof REACHABILITIES)[number]

/** What the operator asks of a node (`docker node update`). */
export interface NodeSpec {
  /** Optional operator-given name; node references resolve against it or `description.hostname`. */
  name?: string
  labels: Labels
  /** The desired role; `Node.role` is the role the node has now. */
  role: NodeRole
  availability: NodeAvailability
}

/** A plugin the node's engine reports (type and name). */
export interface EnginePlugin {
  /** `Volume`, `Network`, `Log`, … */
  type: string
  name: string
}

/** The TLS trust a node reports: the root CA and its certificate's issuer (Docker's `TLSInfo`). */
export interface TLSInfo {
  /** PEM of the root CA the node trusts. */
  trustRoot: string
  /** DER of the issuer's subject. */
  certIssuerSubject: Uint8Array
  /** DER of the issuer's public key. */
  certIssuerPublicKey: Uint8Array
}

/** What a node reports about itself. */
export interface NodeDescription {
  hostname: string
  platform: Platform
  resources: Resources
  engine: {
    engineVersion: string
    /** Engine labels, used by `engine.labels.<k>` constraints. */
    labels: Labels
    plugins: EnginePlugin[]
  }
  tlsInfo?: TLSInfo
  fips?: boolean
}

/** A node's state, a message, and its address (Docker's `NodeStatus`). */
export interface NodeStatus {
  state: NodeState
  message?: string
  /** The node's IP address as the managers see it (used by `node.ip` constraints). */
  addr: string
}

/** A manager node's raft membership: leader or not, reachability, address (Docker's `ManagerStatus`). */
export interface ManagerStatus {
  /** The raft member id of this manager. */
  raftId: string
  /** `host:port` of its raft/cluster listener (2377 by default). */
  addr: string
  leader: boolean
  reachability: Reachability
}

/** The states of a node certificate's issuance. */
export const CERT_ISSUANCE_STATES = ['unknown', 'renew', 'pending', 'issued', 'failed', 'rotate'] as const
/** Where a node's certificate issuance stands (swarm's `IssuanceStatus.State`). */
export type CertIssuanceState = (typeof CERT_ISSUANCE_STATES)[number]

/** The CA's bookkeeping of a node's certificate. */
export interface NodeCertificate {
  role: NodeRole
  /** PEM of the certificate signing request. */
  csr: string
  status: { state: CertIssuanceState; err?: string }
  /** PEM of the issued certificate, once issued. */
  certificate?: string
  /** The certificate's CN (the node ID). */
  cn: string
}

/** A node of the cluster (Docker's `Node`): spec, description, status, and manager status for managers. */
export interface Node {
  id: string
  meta: Meta
  spec: NodeSpec
  /** The role the node has now (follows `spec.role` once the change took effect). */
  role: NodeRole
  description?: NodeDescription
  status: NodeStatus
  /** Present for managers only. */
  managerStatus?: ManagerStatus
  certificate?: NodeCertificate
  /** Network attachments of the node itself (e.g. its ingress load-balancer address). */
  attachments?: NetworkAttachment[]
}

// ---------------------------------------------------------------------------------------------------------
// Services

/** A service runs N replicas, one task per eligible node, or as a job. Narrow with `'replicated' in mode`. */
export type ServiceMode =
  | { replicated: { replicas: number } }
  | { global: Record<string, never> }
  | { replicatedJob: { maxConcurrent: number; totalCompletions: number } }
  | { globalJob: Record<string, never> }

/** A secret or config exposed to the container as a file. */
export interface FileTarget {
  /** File name under `/run/secrets/` (secrets) or an absolute path (configs). */
  name: string
  uid: string
  gid: string
  /** Permission bits, e.g. `0o444` (292). */
  mode: number
}

/** A secret a task mounts, and how (Docker's `SecretReference`). */
export interface SecretReference {
  secretId: string
  secretName: string
  file: FileTarget
}

/** A config a task mounts, and how (Docker's `ConfigReference`). */
export interface ConfigReference {
  configId: string
  configName: string
  /** A file target; absent for a runtime config (e.g. a credential spec). */
  file?: FileTarget
  runtime?: Record<string, never>
}

/** The kinds of mount a container spec can ask for. */
export const MOUNT_TYPES = ['bind', 'volume', 'tmpfs', 'npipe', 'cluster'] as const
/** A mount's kind: `bind`, `volume`, `tmpfs`, `npipe` or `cluster`. */
export type MountType = (typeof MOUNT_TYPES)[number]

/** A mount of a container spec (Docker's `Mount`). */
export interface Mount {
  type: MountType
  source?: string
  target: string
  readOnly?: boolean
  consistency?: string
  bindOptions?: { propagation?: string; nonRecursive?: boolean }
  volumeOptions?: { noCopy?: boolean; labels?: Labels; driverConfig?: Driver }
  tmpfsOptions?: { sizeBytes?: number; mode?: number }
}

/** A container's health check (Docker's `HealthConfig`). */
export interface HealthConfig {
  /** `[]` inherits the image's check; `['NONE']` disables; `['CMD', …]` or `['CMD-SHELL', cmd]`. */
  test: string[]
  interval?: Nanoseconds
  timeout?: Nanoseconds
  retries?: number
  startPeriod?: Nanoseconds
  startInterval?: Nanoseconds
}

/** What a task's container runs (Docker's `ContainerSpec`). */
export interface ContainerSpec {
  /** Image reference, possibly pinned: `nginx:alpine@sha256:…`. */
  image: string
  labels?: Labels
  /** Entrypoint override (`--entrypoint`); the image's when absent. */
  command?: string[]
  /** Arguments (the CMD given to `docker service create`). */
  args?: string[]
  hostname?: string
  /** `KEY=value` strings. */
  env?: string[]
  /** Working directory. */
  dir?: string
  user?: string
  groups?: string[]
  init?: boolean
  tty?: boolean
  openStdin?: boolean
  readOnly?: boolean
  stopSignal?: string
  stopGracePeriod?: Nanoseconds
  healthcheck?: HealthConfig
  hosts?: string[]
  dnsConfig?: { nameservers?: string[]; search?: string[]; options?: string[] }
  mounts?: Mount[]
  secrets?: SecretReference[]
  configs?: ConfigReference[]
  isolation?: string
  sysctls?: Record<string, string>
  capabilityAdd?: string[]
  capabilityDrop?: string[]
  ulimits?: { name: string; soft: number; hard: number }[]
}

/** The conditions under which a task is restarted. */
export const RESTART_CONDITIONS = ['none', 'on-failure', 'any'] as const
/** When a task is restarted: `none`, `on-failure` or `any`. */
export type RestartCondition = (typeof RESTART_CONDITIONS)[number]

/** How and when a service's tasks are restarted (Docker's `RestartPolicy`). */
export interface RestartPolicy {
  condition: RestartCondition
  /** Delay between restart attempts (swarm's default 5 s). */
  delay?: Nanoseconds
  /** 0 means unlimited. */
  maxAttempts?: number
  /** Window in which attempts are counted; 0 means unbounded. */
  window?: Nanoseconds
}

/** `spread=node.labels.zone` is `{ spread: { spreadDescriptor: 'node.labels.zone' } }`. */
export interface PlacementPreference {
  spread: { spreadDescriptor: string }
}

/** Where a service's tasks may run: constraints, preferences, per-node limit, platforms (Docker's `Placement`). */
export interface Placement {
  /** `node.role==worker`, `node.labels.zone!=east`, … all must hold. */
  constraints?: string[]
  preferences?: PlacementPreference[]
  /** Maximum replicas of this service per node; 0 means unlimited. */
  maxReplicas?: number
  platforms?: Platform[]
}

/** A network a task attaches to. */
export interface NetworkAttachmentConfig {
  /** Network ID (the HTTP layer resolves names to IDs before storing). */
  target: string
  aliases?: string[]
  driverOpts?: Record<string, string>
}

/** The template each task of a service is created from (also the task's own spec). */
export interface TaskSpec {
  containerSpec: ContainerSpec
  resources?: ResourceRequirements
  restartPolicy?: RestartPolicy
  placement?: Placement
  networks?: NetworkAttachmentConfig[]
  logDriver?: Driver
  /** Bumped to force a redeploy with an unchanged spec (`docker service update --force`). */
  forceUpdate?: number
  runtime?: string
}

/** What a rolling update can do when tasks fail. */
export const UPDATE_FAILURE_ACTIONS = ['pause', 'continue', 'rollback'] as const
/** `pause`, `continue` or `rollback` when an update fails. */
export type UpdateFailureAction = (typeof UPDATE_FAILURE_ACTIONS)[number]

/** The orders a rolling update can replace tasks in. */
export const UPDATE_ORDERS = ['stop-first', 'start-first'] as const
/** `stop-first` or `start-first`. */
export type UpdateOrder = (typeof UPDATE_ORDERS)[number]

/** Rolling update (and rollback) settings. */
export interface UpdateConfig {
  /** Tasks updated at once; 0 means all. Swarm's default 1. */
  parallelism: number
  delay?: Nanoseconds
  failureAction?: UpdateFailureAction
  /** How long to watch each updated task for failure; swarm's default 5 s. */
  monitor?: Nanoseconds
  /** Fraction (0..1) of tasks allowed to fail before the failure action. */
  maxFailureRatio?: number
  order?: UpdateOrder
}

/** The protocols a published port can use. */
export const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const
/** `tcp`, `udp` or `sctp`. */
export type PortProtocol = (typeof PORT_PROTOCOLS)[number]

/** The ways a port can be published. */
export const PUBLISH_MODES = ['ingress', 'host'] as const
/** `ingress` (the routing mesh) or `host` (the node running the task). */
export type PublishMode = (typeof PUBLISH_MODES)[number]

/** A published port (Docker's `PortConfig`). */
export interface PortConfig {
  name?: string
  protocol: PortProtocol
  targetPort: number
  /** 0 in a spec means "allocate one" (ingress: 30000-32767). */
  publishedPort: number
  publishMode: PublishMode
}

/** The ways a service's endpoint resolves. */
export const ENDPOINT_MODES = ['vip', 'dnsrr'] as const
/** `vip` (one virtual IP) or `dnsrr` (DNS round robin). */
export type EndpointMode = (typeof ENDPOINT_MODES)[number]

/** How a service is reached: endpoint mode and published ports (Docker's `EndpointSpec`). */
export interface EndpointSpec {
  mode: EndpointMode
  ports?: PortConfig[]
}

/** The allocated endpoint: ports with published ports filled in, and a virtual IP per network (vip mode). */
export interface Endpoint {
  spec: EndpointSpec
  ports: PortConfig[]
  virtualIPs: { networkId: string; addr: string }[]
}

/** The states of a service update or rollback. */
export const UPDATE_STATES = [
  'updating',
  'paused',
  'completed',
  'rollback_started',
  'rollback_paused',
  'rollback_completed',
] as const
/** Where a service update or rollback stands (Docker's `UpdateStatus.State`). */
export type UpdateState = (typeof UPDATE_STATES)[number]

/** The progress of a service's update or rollback (Docker's `UpdateStatus`). */
export interface UpdateStatus {
  state: UpdateState
  startedAt?: Timestamp
  completedAt?: Timestamp
  message: string
}

/** What an operator asks a service to be (Docker's `ServiceSpec`). */
export interface ServiceSpec {
  name: string
  labels: Labels
  taskTemplate: TaskSpec
  mode: ServiceMode
  updateConfig?: UpdateConfig
  rollbackConfig?: UpdateConfig
  endpointSpec?: EndpointSpec
}

/** A service (Docker's `Service`): its spec, the previous spec, endpoint and update status. */
export interface Service {
  id: string
  meta: Meta
  spec: ServiceSpec
  /** Bumped (to the store version of the change) whenever the spec changes; tasks record the one they came from. */
  specVersion: { index: number }
  /** The spec before the last change, for rollback. */
  previousSpec?: ServiceSpec
  previousSpecVersion?: { index: number }
  endpoint?: Endpoint
  updateStatus?: UpdateStatus
  /**
   * Job progress (job modes only): the iteration is bumped by every update of the service, and the job runs
   * again (its tasks of earlier iterations are removed); `lastExecution` is when the iteration began.
   */
  jobStatus?: { jobIteration: { index: number }; lastExecution?: Timestamp }
  /** Set while the service's tasks are being shut down before the service itself is removed. */
  pendingDelete?: boolean
}

// ---------------------------------------------------------------------------------------------------------
// Tasks

/** Task states in swarm's order; a task's observed state only ever moves forward in this list. */
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const
/** A task's state, one of {@link TASK_STATES} in order. */
export type TaskState = (typeof TASK_STATES)[number]

const taskStateRanks: Record<TaskState, number> = Object.fromEntries(
  TASK_STATES.map((s, i) => [s, i]),
) as Record<TaskState, number>

/** The position of `state` in {@link TASK_STATES}; compare ranks to order states. */
export function taskStateRank(state: TaskState): number {
  const rank = taskStateRanks[state]
  if (rank === undefined) throw typeError('state', `be a task state (not ${String(state)})`)
  return rank
}

/**
 * States a task may be asked to reach: `ready` (prepare but do not start), `running`, `complete` (a job's
 * task: run it until it exits, and do not restart it once it completed), `shutdown`, `remove`.
 */
export const DESIRED_TASK_STATES = ['ready', 'running', 'complete', 'shutdown', 'remove'] as const
/** One of {@link DESIRED_TASK_STATES}. */
export type DesiredTaskState = (typeof DESIRED_TASK_STATES)[number]

/** The container behind a task: its ID, PID and exit code (Docker's `ContainerStatus`). */
export interface ContainerStatus {
  containerId: string
  pid: number
  exitCode: number
}

/** A task's observed state, when it was reached, and why (Docker's `TaskStatus`). */
export interface TaskStatus {
  /** When the state last changed. */
  timestamp: Timestamp
  state: TaskState
  /** Human-readable progress, e.g. `scheduler assigned task to node`. */
  message: string
  /** Why the task failed or cannot be scheduled, e.g. `no suitable node (…)`. */
  err?: string
  containerStatus?: ContainerStatus
  /** Host-mode ports actually published by this task. */
  portStatus?: { ports: PortConfig[] }
}

/** A network attachment with the addresses allocated to it (CIDR form, e.g. `10.0.1.5/24`). */
export interface NetworkAttachment {
  networkId: string
  addresses: string[]
  aliases?: string[]
  driverAttachmentOpts?: Record<string, string>
}

/** One slot's (or, for global services, one node's) instance of a service (Docker's `Task`). */
export interface Task {
  id: string
  meta: Meta
  /** A copy of the service's task template at creation. */
  spec: TaskSpec
  /** The service spec version the task was created from (`_up-to-date` compares it). */
  specVersion?: { index: number }
  serviceId: string
  /** 1..N for replicated services; 0 for global services (which key tasks by node). */
  slot: number
  /** Empty until the scheduler assigns the task. */
  nodeId: string
  labels?: Labels
  /** The service's name and labels at creation, for naming (`web.3.<taskId>`). */
  serviceAnnotations: { name: string; labels: Labels }
  status: TaskStatus
  desiredState: DesiredTaskState
  /** The networks the task is attached to, with its addresses (Docker's `NetworksAttachments`). */
  networks: NetworkAttachment[]
  endpoint?: Endpoint
  logDriver?: Driver
  assignedGenericResources?: GenericResource[]
  /** The job iteration (`Service.jobStatus.jobIteration`) a job's task belongs to; absent for services. */
  jobIteration?: { index: number }
}

// ---------------------------------------------------------------------------------------------------------
// Networks

/** One subnet of a network, with its gateway and range (Docker's `IPAMConfig`). */
export interface IPAMConfig {
  family?: 'ipv4' | 'ipv6'
  /** CIDR, e.g. `10.0.1.0/24`. */
  subnet: string
  /** Sub-range to allocate from (CIDR). */
  range?: string
  gateway?: string
  /** Reserved addresses (name -> address). */
  reserved?: Record<string, string>
}

/** A network's IP address management: driver and subnets (Docker's `IPAMOptions`). */
export interface IPAMOptions {
  driver: Driver
  configs: IPAMConfig[]
}

/** What an operator asks a network to be (Docker's `NetworkSpec`). */
export interface NetworkSpec {
  name: string
  labels: Labels
  /** `overlay` by default for swarm networks. */
  driverConfig?: Driver
  ipv6Enabled?: boolean
  internal?: boolean
  attachable?: boolean
  /** The routing-mesh network (`ingress`); there is at most one. */
  ingress?: boolean
  /** Requested IPAM; the allocated form is `Network.ipam`. */
  ipam?: IPAMOptions
  /** Name of a config-only network this one takes its configuration from. */
  configFrom?: string
}

/** A cluster network (Docker's `Network`): its spec, driver state and IPAM. */
export interface Network {
  id: string
  meta: Meta
  spec: NetworkSpec
  /** The driver as allocated, with its runtime options. */
  driverState?: Driver
  /** The VXLAN network identifier (4096 .. 2^24-1) allocated to an overlay network. */
  vni?: number
  /** IPAM as allocated (subnets and gateways filled in). */
  ipam?: IPAMOptions
  pendingDelete?: boolean
}

// ---------------------------------------------------------------------------------------------------------
// Cluster

/** Raft settings of the cluster spec (Docker's `RaftConfig`). */
export interface RaftConfig {
  snapshotInterval: number
  keepOldSnapshots: number
  logEntriesForSlowFollowers: number
  electionTick: number
  heartbeatTick: number
}

/** An external certificate authority the cluster may use (Docker's `ExternalCA`). */
export interface ExternalCA {
  protocol: 'cfssl'
  url: string
  options?: Record<string, string>
  caCert?: string
}

/** The cluster CA's settings: certificate expiry, external CAs, a root to rotate to (Docker's `CAConfig`). */
export interface CAConfig {
  nodeCertExpiry: Nanoseconds
  externalCAs?: ExternalCA[]
  /** PEM of a CA certificate to rotate to. */
  signingCACert?: string
  /** PEM of its key (kept in the replicated store only). */
  signingCAKey?: string
  /** Bumped to force a root rotation. */
  forceRotate?: number
}

/** What an operator asks the cluster to be (Docker's `ClusterSpec`). */
export interface ClusterSpec {
  /** Always `default`. */
  name: string
  labels: Labels
  orchestration: { taskHistoryRetentionLimit: number }
  raft: RaftConfig
  dispatcher: { heartbeatPeriod: Nanoseconds }
  caConfig: CAConfig
  taskDefaults: { logDriver?: Driver }
  encryptionConfig: { autoLockManagers: boolean }
}

/** The worker and manager join tokens. */
export interface JoinTokens {
  worker: string
  manager: string
}

/** A root CA rotation in progress: the new CA and the cross-signed certificate. */
export interface RootRotation {
  caCert: string
  caKey: string
  /** The new root cross-signed by the old root key. */
  crossSignedCACert: string
}

/** The cluster's root CA: certificate, key, join tokens and any rotation in progress. */
export interface RootCA {
  /** PEM; the root key lives only in the replicated store. */
  caKey: string
  caCert: string
  /** Digest of `caCert` as used in join tokens. */
  caCertHash: string
  joinTokens: JoinTokens
  rootRotation?: RootRotation
  lastForcedRotation?: number
}

/** A key held in the cluster object: the manager unlock key, network bootstrap keys. */
export interface EncryptionKey {
  subsystem: string
  algorithm?: string
  key: Uint8Array
  lamportTime: number
}

/** The cluster object (Docker's `Swarm`): spec, root CA, unlock and network bootstrap keys. */
export interface Cluster {
  id: string
  meta: Meta
  spec: ClusterSpec
  rootCA: RootCA
  /** The manager unlock key(s) while autolock is on (subsystem `manager`). */
  unlockKeys: EncryptionKey[]
  networkBootstrapKeys?: EncryptionKey[]
  encryptionKeyLamportClock?: number
  /** Certificates of removed nodes, denied until they expire (node id -> expiry). */
  removedNodes?: Record<string, { expiry: Timestamp }>
  /** Address pools for overlay networks (Docker's `DefaultAddrPool`, default `['10.0.0.0/8']`). */
  defaultAddressPool: string[]
  /** Prefix length of the subnets cut from the pools (default 24). */
  subnetSize: number
  /** VXLAN UDP port (Docker's `DataPathPort`, default 4789). */
  vxlanUdpPort: number
  fipsEnabled?: boolean
}

// ---------------------------------------------------------------------------------------------------------
// Secrets and configs

/** What an operator asks a secret to be (Docker's `SecretSpec`). */
export interface SecretSpec {
  name: string
  labels: Labels
  /** The secret value (up to 500 KiB). Never returned by the API: see `redactSecret`. */
  data: Uint8Array
  driver?: Driver
  templating?: Driver
}

/** A secret (Docker's `Secret`); redact it with {@link redactSecret} before showing it. */
export interface Secret {
  id: string
  meta: Meta
  spec: SecretSpec
  /** Secrets managed by the cluster itself. */
  internal?: boolean
}

/** What an operator asks a config to be (Docker's `ConfigSpec`). */
export interface ConfigSpec {
  name: string
  labels: Labels
  /** The config contents (up to 500 KiB); returned by the API, unlike secret data. */
  data: Uint8Array
  templating?: Driver
}

/** A config (Docker's `Config`). */
export interface Config {
  id: string
  meta: Meta
  spec: ConfigSpec
}

// ---------------------------------------------------------------------------------------------------------
// Table map

/** The object type stored in each table. */
export interface TableObjects {
  nodes: Node
  services: Service
  tasks: Task
  networks: Network
  clusters: Cluster
  secrets: Secret
  configs: Config
}

/** Any object the store holds. */
export type StoreObject = TableObjects[Table]

/** The name of the single cluster object. */
export const DEFAULT_CLUSTER_NAME = 'default'

/** Secret and config data limit (500 KiB), as in swarm. */
export const MAX_SECRET_SIZE = 500 * 1024
