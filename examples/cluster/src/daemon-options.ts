// What a node is started with (`swarmkit-cluster` flags, or a test), and the local node states `docker info`
// reports.

import type { SpecLimits } from '@swarmkit/store'
import type { Executor } from './executor.js'
import type { ManagerObserver } from './observer.js'

export interface DaemonOptions {
  /** Where this node keeps its raft log, keys and certificates. */
  readonly stateDir: string
  /** The name `docker node ls` shows. Default: the machine's host name. */
  readonly hostname?: string
  /**
   * Overrides the `--listen-addr` of `swarm init`/`join` (e.g. `127.0.0.1:0` so that several nodes share
   * one machine). Default: what the CLI sends, `0.0.0.0:2377`.
   */
  readonly listenAddr?: string
  /** Heartbeat period of the dispatcher. Default 5,000 ms. */
  readonly heartbeatPeriodMs?: number
  /**
   * Raft entries applied between two snapshots (after which the log is compacted), like the cluster spec's
   * `Raft.SnapshotInterval`. Default 10,000.
   */
  readonly snapshotInterval?: number
  /** Time per step of the simulated executor. Default 50 ms. */
  readonly taskStepMs?: number
  /**
   * What runs this node's tasks (e.g. `dockerExecutor()`); the daemon closes it. Default: a simulated
   * executor per agent (tasks run in this process).
   */
  readonly executor?: Executor
  /**
   * Run the routing mesh: answer on every published port of every service at this node's listen address
   * and forward to the services' tasks. Default true.
   */
  readonly routingMesh?: boolean
  /**
   * What one service spec may ask for when this node is a manager (`--max-replicas`); a spec over it is
   * refused with a 400 naming the limit. Default: the store's `DEFAULT_SPEC_LIMITS` (10,000 tasks per service).
   */
  readonly specLimits?: Partial<SpecLimits>
  readonly log?: (line: string) => void
  /** Metrics and debug hooks handed to every manager this node runs (src/observer.ts). */
  readonly observer?: ManagerObserver
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked'
