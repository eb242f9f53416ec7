// The data-path keys of encrypted overlay networks (`docker network create --opt encrypted`): swarm's network
// bootstrap keys of subsystem `networking:ipsec`. The leader makes them and rotates them every 12 hours
// (moby's key manager), keeping three in the cluster object (replicated, like the root CA key): the newest,
// which nodes only receive with for a period, the primary that seals traffic, and the previous one, still
// accepted from nodes that have not switched yet (overlay's key ring: `sendingKey` picks the primary).
//
// They leave the managers only inside a node's network view (network-view.ts), in the assignment stream of
// the node's mutual TLS session, and only for nodes that run a task on an encrypted network.

import { KEY_ROTATION_MS, type KeyRing, newKeyRing, rotateKeyRing, rotationDue } from '@swarmkit/overlay'
import type { Cluster, ClusterStore, EncryptionKey, Network } from '@swarmkit/store'
import { inDutyScope } from './leader-scope.js'

export const IPSEC_SUBSYSTEM = 'networking:ipsec'
const ALGORITHM = 'aes-128-gcm'

/** A key as it travels in a network view: the 20 bytes (16 key, 4 salt) and its Lamport tag. */
export interface WireKey {
  readonly tag: number
  readonly key: Uint8Array
}

/** Whether a network is encrypted: `--opt encrypted` (any value, as Docker's overlay driver reads it). */
export function isEncrypted(n: Pick<Network, 'spec'>): boolean {
  const options = (n.spec.driverConfig as { options?: Record<string, string> } | undefined)?.options
  return options !== undefined && Object.hasOwn(options, 'encrypted')
}

/** The cluster's IPsec key ring (newest first), or undefined when it has none yet. */
export function keyRingOf(cluster: Cluster | undefined): KeyRing | undefined {
  const keys = (cluster?.networkBootstrapKeys ?? [])
    .filter((k) => k.subsystem === IPSEC_SUBSYSTEM)
    .sort((a, b) => b.lamportTime - a.lamportTime)
    .map((k) => ({ key: new Uint8Array(k.key), tag: k.lamportTime }))
  if (keys.length === 0) return undefined
  return { keys, rotatedAt: cluster?.networkKeysRotatedAt ?? 0 }
}

/**
 * A new swarm's object with its first key ring: made with the swarm, so that the leader's key manager does
 * not write it a moment after init (a user's first `swarm update` would read a version that write made stale).
 */
export function withFirstNetworkKeys<C extends Omit<Cluster, 'meta'>>(cluster: C, now = Date.now()): C {
  return stored(cluster, newKeyRing({ now }))
}

function stored<C extends Omit<Cluster, 'meta'>>(cluster: C, ring: KeyRing): C {
  const others = (cluster.networkBootstrapKeys ?? []).filter((k) => k.subsystem !== IPSEC_SUBSYSTEM)
  const keys: EncryptionKey[] = ring.keys.map((k) => ({
    subsystem: IPSEC_SUBSYSTEM,
    algorithm: ALGORITHM,
    key: k.key,
    lamportTime: k.tag,
  }))
  return {
    ...cluster,
    networkBootstrapKeys: [...others, ...keys],
    encryptionKeyLamportClock: Math.max(cluster.encryptionKeyLamportClock ?? 0, ring.keys[0]!.tag),
    networkKeysRotatedAt: ring.rotatedAt,
  }
}

export interface NetworkKeyOptions {
  /** The clock (ms since the epoch). Default Date.now. */
  readonly now?: () => number
  /** Rotation period. Default 12 h (swarm's). */
  readonly intervalMs?: number
  /** Randomness for new keys (tests). Default crypto. */
  readonly random?: (n: number) => Uint8Array
}

/**
 * Makes the first ring, or rotates it when it is due at `now`; returns what it did. Three keys at most:
 * a rotation adds a newest key and drops the oldest.
 */
export async function maintainNetworkKeys(
  store: Pick<ClusterStore, 'view' | 'update'>,
  options: NetworkKeyOptions = {},
): Promise<'made' | 'rotated' | 'kept'> {
  const now = (options.now ?? Date.now)()
  const interval = options.intervalMs ?? KEY_ROTATION_MS
  const random = options.random ? { random: options.random } : {}
  const due = (c: Cluster | undefined) => {
    const ring = keyRingOf(c)
    return !c ? 'kept' : !ring ? 'made' : rotationDue(ring, now, interval) ? 'rotated' : 'kept'
  }
  if (store.view((tx) => due(tx.find('clusters')[0])) === 'kept') return 'kept'
  return store.update((tx) => {
    const cluster = tx.find('clusters')[0]
    const what = due(cluster)
    if (what === 'kept' || !cluster) return 'kept'
    const ring = keyRingOf(cluster)
    const next = ring ? rotateKeyRing(ring, { now, ...random }) : newKeyRing({ now, ...random })
    tx.update('clusters', stored(cluster, next))
    return what
  })
}

export interface NetworkKeyManager {
  stop(): void
}

/**
 * The leader duty of `term`: makes the ring now if there is none, then rotates it whenever it is due
 * (checked at the due time, and at least every `checkMs`, default a minute, so a changed clock is seen).
 */
export function startNetworkKeyManager(
  options: NetworkKeyOptions & {
    store: ClusterStore
    term?: number
    checkMs?: number
    log?: (line: string) => void
  },
): NetworkKeyManager {
  const { store, term } = options
  const now = options.now ?? Date.now
  const interval = options.intervalMs ?? KEY_ROTATION_MS
  const log = options.log ?? (() => {})
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const schedule = () => {
    if (stopped) return
    const ring = store.view((tx) => keyRingOf(tx.find('clusters')[0]))
    const until = ring ? ring.rotatedAt + interval - now() : 0
    timer = setTimeout(pass, Math.max(1000, Math.min(until, options.checkMs ?? 60_000)))
    timer.unref?.()
  }
  const pass = () => {
    if (stopped) return
    const run = () => maintainNetworkKeys(store, options)
    ;(term === undefined ? run() : inDutyScope(term, run)).then(
      (what) => {
        if (what !== 'kept') log(`overlay encryption keys ${what}`)
        schedule()
      },
      (err) => {
        if (!stopped) log(`overlay encryption keys not maintained: ${(err as Error).message}; retrying`)
        schedule()
      },
    )
  }
  pass()
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

/** The keys for a network view, newest first. */
export function wireKeys(ring: KeyRing | undefined): WireKey[] {
  return (ring?.keys ?? []).map((k) => ({ tag: k.tag, key: k.key }))
}
