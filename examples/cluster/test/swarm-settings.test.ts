import type { FileLogStorage, RaftNode } from '@swarmkit/raft'
import { type Cluster, ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { followRaftSettings } from '../src/swarm-settings.js'
import { waitFor } from './helpers.js'

const cluster = (snapshotInterval: number) =>
  ({
    id: 'c1',
    spec: {
      name: 'default',
      labels: {},
      orchestration: { taskHistoryRetentionLimit: 5 },
      raft: {
        snapshotInterval,
        keepOldSnapshots: 0,
        logEntriesForSlowFollowers: 500,
        electionTick: 10,
        heartbeatTick: 1,
      },
      dispatcher: { heartbeatPeriod: 5e9 },
      caConfig: { nodeCertExpiry: 90 * 24 * 3600e9 },
      taskDefaults: {},
      encryptionConfig: { autoLockManagers: false },
    },
  }) as unknown as Cluster

describe('followRaftSettings', () => {
  it('goes on following the cluster settings after its watch fell behind and was dropped', async () => {
    // A watch that may hold two undelivered changes: a burst of writes (a manager replaying its log) drops it.
    const store = new ClusterStore({ watchQueueSize: 2 })
    await store.update((tx) => tx.create('clusters', cluster(100)))
    const seen: (number | undefined)[] = []
    const raft = {
      setSnapshotPolicy: (p: { snapshotThreshold?: number }) => seen.push(p.snapshotThreshold),
    } as unknown as RaftNode
    const storage = { keepOldSnapshots: 0 } as FileLogStorage
    const stop = new AbortController()
    const following = followRaftSettings(store, raft, storage, stop.signal)
    try {
      expect(seen).toEqual([100])
      await Promise.all(
        [200, 300, 400, 500, 600].map((n) =>
          store.update((tx) => tx.update('clusters', { ...tx.get('clusters', 'c1')!, ...cluster(n) })),
        ),
      )
      // After the drop, a later change still reaches raft.
      await store.update((tx) => tx.update('clusters', { ...tx.get('clusters', 'c1')!, ...cluster(700) }))
      await waitFor(
        () => seen.at(-1) === 700,
        'the last interval followed',
        5_000,
        () => seen.join(),
      )
    } finally {
      stop.abort()
      await following
      store.close()
    }
  })
})
