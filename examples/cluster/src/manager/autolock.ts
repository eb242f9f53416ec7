// Swarm's autolock on a manager: the cluster object holds the unlock key (while autolock is on), and every
// manager keeps its key file wrapped under it, re-encrypting its raft log when the data key changes.

import type { FileLogStorage } from '@swarmkit/raft'
import {
  type Cluster,
  type ClusterStore,
  formatUnlockKey,
  generateUnlockKey,
  type KeyManager,
  parseUnlockKey,
} from '@swarmkit/store'
import { reencryptAtRest } from '../reencrypt.js'
import { followStore } from '../store-follow.js'

/** The cluster's unlock key while autolock is on. */
export function clusterUnlockKey(c: Cluster | undefined): string | undefined {
  const k = c?.spec.encryptionConfig.autoLockManagers
    ? c.unlockKeys.find((u) => u.subsystem === 'manager')
    : undefined
  return k ? formatUnlockKey(k.key) : undefined
}

/**
 * The cluster with autolock turned on or off (`autolock`, or as it is when undefined), drawing a new unlock
 * key when autolock turns on, when there is none, or when asked to (`rotateUnlockKey`).
 */
export function withAutolock(c: Cluster, autolock: boolean | undefined, rotateUnlockKey: boolean): Cluster {
  const on = autolock ?? c.spec.encryptionConfig.autoLockManagers
  const others = c.unlockKeys.filter((k) => k.subsystem !== 'manager')
  const had = c.unlockKeys.find((k) => k.subsystem === 'manager')
  if (!on) c = { ...c, unlockKeys: others }
  else if (!had || rotateUnlockKey || !c.spec.encryptionConfig.autoLockManagers) {
    const key = parseUnlockKey(generateUnlockKey())
    c = {
      ...c,
      unlockKeys: [...others, { subsystem: 'manager', key, lamportTime: (had?.lamportTime ?? 0) + 1 }],
    }
  }
  return {
    ...c,
    spec: { ...c.spec, encryptionConfig: { ...c.spec.encryptionConfig, autoLockManagers: on } },
  }
}

export interface AutolockFollowerOptions {
  readonly store: ClusterStore
  /** The manager's key file (undefined once the manager closed it). */
  readonly keys: () => KeyManager | undefined
  /** The raft log, re-encrypted when the data key changes. */
  readonly storage: FileLogStorage
  /** The unlock key the key file is wrapped under now (undefined without autolock). */
  readonly applied: string | undefined
  readonly signal: AbortSignal
  readonly closed: () => boolean
  readonly log: (line: string) => void
}

/** Keeps a manager's key file wrapped under the cluster's unlock key (swarm's autolock). */
export class AutolockFollower {
  readonly #o: AutolockFollowerOptions
  #applied: string | undefined

  constructor(options: AutolockFollowerOptions) {
    this.#o = options
    this.#applied = options.applied
  }

  /** The unlock key the key file is wrapped under (undefined without autolock). */
  get applied(): string | undefined {
    return this.#applied
  }

  /** Follows the cluster object until the signal aborts, watching again after a dropped watch. */
  async follow(): Promise<void> {
    const { store, signal, log } = this.#o
    const sync = () => this.#sync()
    await followStore(store, { table: 'clusters', onResync: sync, resyncAtStart: true }, sync, signal, (l) =>
      log(`autolock: ${l}`),
    ).catch((err: Error) => {
      if (!this.#o.closed()) log(`autolock watch ended: ${err.message}`)
    })
  }

  async #sync(): Promise<void> {
    const { store, storage, log } = this.#o
    const want = clusterUnlockKey(store.view((tx) => tx.find('clusters')[0]))
    const keys = this.#o.keys()
    if (!keys || want === this.#applied) return
    if (want === undefined) await keys.disableAutolock()
    else if (keys.autolock) await keys.rotateUnlockKey(want)
    else await keys.enableAutolock(want)
    this.#applied = want
    log(want ? 'key file wrapped under the unlock key' : 'autolock off')
    // Both changes above replace the data key: what the old one sealed is written again under the new one
    // (if this fails, the next start finishes it).
    await reencryptAtRest(keys, storage).then(
      (done) => done && log('raft log and snapshot re-encrypted under the new data key'),
      (err: Error) => log(`re-encryption under the new data key not done: ${err.message}`),
    )
  }
}
