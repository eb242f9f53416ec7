import type { FileLogStorage } from '@swarmkit/raft'
import { type Cluster, ClusterStore, type KeyManager } from '@swarmkit/store'
import { describe, it } from 'vitest'
import { AutolockFollower, withAutolock } from '../src/manager/autolock.js'
import { waitFor } from './helpers.js'

const cluster = (labels: Record<string, string>) =>
  ({
    id: 'c1',
    unlockKeys: [],
    spec: {
      name: 'default',
      labels,
      orchestration: { taskHistoryRetentionLimit: 5 },
      raft: {},
      dispatcher: { heartbeatPeriod: 5e9 },
      caConfig: { nodeCertExpiry: 90 * 24 * 3600e9 },
      taskDefaults: {},
      encryptionConfig: { autoLockManagers: false },
    },
  }) as unknown as Cluster

/** A key file that only records which unlock key it is wrapped under. */
function fakeKeys() {
  const keys = {
    autolock: false,
    wrappedUnder: undefined as string | undefined,
    hasPreviousKeys: false,
    async enableAutolock(key: string) {
      keys.autolock = true
      keys.wrappedUnder = key
    },
    async rotateUnlockKey(key: string) {
      keys.wrappedUnder = key
    },
    async disableAutolock() {
      keys.autolock = false
      keys.wrappedUnder = undefined
    },
  }
  return keys
}

describe('AutolockFollower', () => {
  it('goes on following autolock after its watch fell behind and was dropped', async () => {
    // A watch that may hold two undelivered changes: a burst of writes (a manager replaying its log) drops it.
    const store = new ClusterStore({ watchQueueSize: 2 })
    await store.update((tx) => tx.create('clusters', cluster({})))
    const keys = fakeKeys()
    const stop = new AbortController()
    const lines: string[] = []
    const follower = new AutolockFollower({
      store,
      keys: () => keys as unknown as KeyManager,
      storage: {} as FileLogStorage,
      applied: undefined,
      signal: stop.signal,
      closed: () => stop.signal.aborted,
      log: (l) => lines.push(l),
    })
    const following = follower.follow()
    try {
      await Promise.all(
        [1, 2, 3, 4, 5].map((n) =>
          store.update((tx) =>
            tx.update('clusters', { ...tx.get('clusters', 'c1')!, spec: cluster({ n: `${n}` }).spec }),
          ),
        ),
      )
      // After the drop, turning autolock on still wraps the key file.
      await store.update((tx) => tx.update('clusters', withAutolock(tx.get('clusters', 'c1')!, true, false)))
      await waitFor(
        () => keys.wrappedUnder !== undefined && keys.wrappedUnder === follower.applied,
        'the key file wrapped under the unlock key',
        5_000,
        () => lines.join('\n'),
      )
    } finally {
      stop.abort()
      await following
      store.close()
    }
  })
})
