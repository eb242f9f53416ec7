// What a manager is started with (the daemon gives it from the node's saved state and its own options).

import type * as pki from '@swarmkit/pki'
import type { KeyManager, SpecLimits } from '@swarmkit/store'
import type { NodeInfo } from '../dispatcher.js'
import type { ManagerObserver } from '../observer.js'

export interface NodeIdentityFiles {
  readonly nodeId: string
  readonly clusterId: string
  readonly credentials: pki.NodeCredentials
}

export interface ManagerOptions extends NodeIdentityFiles {
  readonly stateDir: string
  /** The manager's data keys (open and unlocked); the manager owns it from now on. */
  readonly keys: KeyManager
  /** The unlock key `keys` was unlocked with (when autolock is on). */
  readonly unlockKey?: string
  /** Host the cluster listeners bind to. */
  readonly host: string
  /** host:port of the join listener (port 0 picks one). Docker's `--listen-addr`. */
  readonly listenAddr: string
  /** Host other nodes reach this one at. Docker's `--advertise-addr`. */
  readonly advertiseHost: string
  /** Raft members to start with (this one included when bootstrapping). */
  readonly raftPeers?: { id: string; address: string }[]
  /** This manager's raft address (fixed port: other members dial it). */
  readonly raftAddr: string
  /**
   * This manager's raft member ID. Default: the node ID (managers that joined or created the cluster). A
   * promoted worker gets a new one each time, since raft never takes back a removed ID.
   */
  readonly raftId?: string
  /** Set on `docker swarm init`: the cluster is created once this manager leads. */
  readonly bootstrap?: { ca: pki.RootCA; joinTokens: pki.JoinTokens; info: NodeInfo }
  readonly heartbeatPeriodMs?: number
  /** Raft entries between two snapshots (raft's `snapshotThreshold`). Default 10,000. */
  readonly snapshotInterval?: number
  /**
   * `docker swarm init --force-new-cluster`: start from this manager's raft log and snapshot as a
   * one-member cluster (every other member removed, all cluster state kept).
   */
  readonly forceNewCluster?: boolean
  /** Port of the control server (dispatcher); 0 picks one. A restarted manager reuses its old one. */
  readonly controlPort?: number
  /** What one service spec may ask for (the store refuses more). */
  readonly specLimits?: Partial<SpecLimits>
  /** Metrics and debug hooks (src/observer.ts). */
  readonly observer?: ManagerObserver
  readonly log?: (line: string) => void
}
