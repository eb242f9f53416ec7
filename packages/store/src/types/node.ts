// The `nodes` table: a node's spec, what it reports, its status, manager status and certificate.
import type { Labels, Meta, Platform, Resources } from './common.js'
import type { NetworkAttachment } from './task.js'

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
