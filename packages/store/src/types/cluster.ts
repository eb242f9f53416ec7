// The `clusters` table: the one cluster object, with its spec, root CA, join tokens and keys.
import type { Driver, Labels, Meta, Nanoseconds, Timestamp } from './common.js'

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
  /** When the network bootstrap keys were last made or rotated (ms since the epoch). */
  networkKeysRotatedAt?: number
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

/** The name of the single cluster object. */
export const DEFAULT_CLUSTER_NAME = 'default'
