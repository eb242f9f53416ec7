// The `docker swarm update` settings that take effect beyond the CA and autolock: task history kept per slot
// (the orchestrator reaps to it), the dispatcher heartbeat period (sent to agents, and the down-node deadline),
// raft's snapshot interval, snapshots kept and log entries kept for slow followers (followed by every manager).

import type { FileLogStorage, RaftNode } from '@swarmkit/raft'
import type { ClusterSpec, ClusterStore } from '@swarmkit/store'
import { ApiError } from './errors.js'
import { followStore } from './store-follow.js'

/** The raft and dispatcher fields of `POST /swarm/update`'s spec (Docker's PascalCase). */
interface SwarmSpecSettings {
  Orchestration?: { TaskHistoryRetentionLimit?: unknown }
  Raft?: { SnapshotInterval?: unknown; KeepOldSnapshots?: unknown; LogEntriesForSlowFollowers?: unknown }
  Dispatcher?: { HeartbeatPeriod?: unknown }
}

function count(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ApiError(400, `${field}: expected a non-negative integer`)
  return v
}

/** Checks the settings of a `swarm update` body (before anything is written): a 400 in swarm's words. */
export function checkSwarmSettings(body: unknown): void {
  const b = (body ?? {}) as SwarmSpecSettings
  const hb = b.Dispatcher?.HeartbeatPeriod
  if (hb !== undefined && hb !== null) {
    if (typeof hb !== 'number' || !Number.isSafeInteger(hb))
      throw new ApiError(400, 'Dispatcher.HeartbeatPeriod: expected integer nanoseconds')
    if (hb < 0)
      throw new ApiError(
        400,
        'rpc error: code = InvalidArgument desc = heartbeat time period cannot be a negative duration',
      )
  }
  const limit = b.Orchestration?.TaskHistoryRetentionLimit
  if (limit !== undefined && limit !== null && (typeof limit !== 'number' || !Number.isSafeInteger(limit)))
    throw new ApiError(400, 'Orchestration.TaskHistoryRetentionLimit: expected an integer')
  count(b.Raft?.SnapshotInterval, 'Raft.SnapshotInterval')
  count(b.Raft?.KeepOldSnapshots, 'Raft.KeepOldSnapshots')
  count(b.Raft?.LogEntriesForSlowFollowers, 'Raft.LogEntriesForSlowFollowers')
}

/** The cluster spec with the settings of a `swarm update` body (checked by `checkSwarmSettings`). */
export function withSwarmSettings(spec: ClusterSpec, body: unknown): ClusterSpec {
  const b = (body ?? {}) as SwarmSpecSettings
  const limit = b.Orchestration?.TaskHistoryRetentionLimit
  const hb = b.Dispatcher?.HeartbeatPeriod
  const raft = { ...spec.raft }
  const interval = count(b.Raft?.SnapshotInterval, 'Raft.SnapshotInterval')
  const keep = count(b.Raft?.KeepOldSnapshots, 'Raft.KeepOldSnapshots')
  const slow = count(b.Raft?.LogEntriesForSlowFollowers, 'Raft.LogEntriesForSlowFollowers')
  if (interval !== undefined) raft.snapshotInterval = interval
  if (keep !== undefined) raft.keepOldSnapshots = keep
  if (slow !== undefined) raft.logEntriesForSlowFollowers = slow
  return {
    ...spec,
    orchestration:
      typeof limit === 'number'
        ? { ...spec.orchestration, taskHistoryRetentionLimit: limit }
        : spec.orchestration,
    // 0 keeps the period (swarm ignores a zero period).
    dispatcher:
      typeof hb === 'number' && hb > 0 ? { ...spec.dispatcher, heartbeatPeriod: hb } : spec.dispatcher,
    raft,
  }
}

/** The heartbeat period the cluster asks for, in ms (undefined before the cluster exists or when unset). */
export function heartbeatPeriodMs(store: ClusterStore): number | undefined {
  const ns = store.view((tx) => tx.find('clusters')[0]?.spec.dispatcher.heartbeatPeriod)
  return ns && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : undefined
}

/**
 * Keeps this manager's raft node and log storage on the cluster's raft settings: snapshot interval (entries
 * applied between snapshots), log entries kept behind a snapshot for slow followers, old snapshots kept.
 */
export async function followRaftSettings(
  store: ClusterStore,
  raft: RaftNode,
  storage: FileLogStorage,
  signal: AbortSignal,
): Promise<void> {
  const apply = () => {
    const r = store.view((tx) => tx.find('clusters')[0]?.spec.raft)
    if (!r) return
    raft.setSnapshotPolicy({
      snapshotThreshold: r.snapshotInterval,
      trailingEntries: r.logEntriesForSlowFollowers,
    })
    storage.keepOldSnapshots = r.keepOldSnapshots
  }
  apply()
  // A watch dropped behind a burst of writes (a manager replaying its log) is followed again, from the
  // settings as they are then.
  await followStore(store, { table: 'clusters', onResync: apply }, apply, signal)
}
