import { copyFile, mkdir, open as openFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { LogStorage } from '@swarmkit/raft'
import { StoreError } from './errors.js'
import { MemoryStore } from './memory-store.js'

/**
 * Copies a manager's state directory (raft log, snapshots, key file) to `destination`, which must not exist or
 * be empty, syncing every file and directory. Stop the manager first, as swarm requires: a copy of a live
 * directory may catch a log mid-write. With autolock on, the copy stays locked under the unlock key in force
 * when it was made.
 */
export async function backupStateDir(
  source: string,
  destination: string,
  options?: { signal?: AbortSignal },
): Promise<{ files: number; bytes: number }> {
  if (typeof source !== 'string' || source.length === 0)
    throw new TypeError('source: expected a directory path')
  if (typeof destination !== 'string' || destination.length === 0) {
    throw new TypeError('destination: expected a directory path')
  }
  await mkdir(destination, { recursive: true, mode: 0o700 })
  if ((await readdir(destination)).length > 0) {
    throw new StoreError('INVALID_ARGUMENT', `backup destination ${destination} is not empty`)
  }
  const totals = { files: 0, bytes: 0 }
  await copyTree(source, destination, totals, options?.signal)
  return totals
}

async function copyTree(
  from: string,
  to: string,
  totals: { files: number; bytes: number },
  signal: AbortSignal | undefined,
): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (signal?.aborted) throw new StoreError('ABORTED', 'backup aborted', { cause: signal.reason })
    const src = join(from, e.name)
    const dst = join(to, e.name)
    if (e.isDirectory()) {
      await mkdir(dst, { mode: 0o700 })
      await copyTree(src, dst, totals, signal)
    } else if (e.isFile()) {
      if (e.name === 'LOCK' || e.name.endsWith('.tmp')) continue
      await copyFile(src, dst)
      const fh = await openFile(dst, 'r+')
      try {
        totals.bytes += (await fh.stat()).size
        await fh.sync()
      } finally {
        await fh.close()
      }
      totals.files++
    }
  }
  const dir = await openFile(to, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

export interface ForceNewClusterOptions {
  /** The raft member id this manager runs under in the new one-member cluster. */
  memberId: string
  /** Its network address, recorded in the membership. */
  address?: string
  signal?: AbortSignal
}

export interface ForceNewClusterResult {
  /** Index and term of the snapshot written (the last committed entry of the old log). */
  index: number
  term: number
  /** Uncommitted entries dropped. */
  dropped: number
  /** The store as restored, for a look before starting (e.g. to count services). */
  store: MemoryStore
}

/**
 * Rebuilds a manager's state as a one-member cluster, swarm's `--force-new-cluster`: reads `source` (a
 * manager's log, e.g. restored from a backup), replays its snapshot and committed entries into a store, drops
 * what was never committed, and writes into the empty `target` a single snapshot of that state whose membership
 * is this member alone. Start a RaftNode on `target` with `peers: [memberId]`; every service, task, network,
 * secret and config survives. Other managers join it afresh.
 */
export async function forceNewCluster(
  source: LogStorage,
  target: LogStorage,
  options: ForceNewClusterOptions,
): Promise<ForceNewClusterResult> {
  if (typeof source?.load !== 'function') throw new TypeError('source: expected a LogStorage')
  if (typeof target?.load !== 'function' || typeof target.save !== 'function') {
    throw new TypeError('target: expected a LogStorage')
  }
  if (
    typeof options !== 'object' ||
    options === null ||
    typeof options.memberId !== 'string' ||
    !options.memberId
  ) {
    throw new TypeError('options.memberId: expected a non-empty string')
  }
  if (options.address !== undefined && typeof options.address !== 'string') {
    throw new TypeError('options.address: expected a string')
  }
  const signal = options.signal
  const state = await source.load(signal ? { signal } : undefined)
  const store = new MemoryStore()
  let index = 0
  let term = 0
  if (state.snapshot) {
    store.restore(state.snapshot.data)
    index = state.snapshot.meta.index
    term = state.snapshot.meta.term
  }
  const commit = state.hardState.commit
  let dropped = 0
  for (const e of state.entries) {
    if (e.index > commit) {
      dropped++
      continue
    }
    // Normal entries (type 0) carry store commands; empty ones are leaders' no-ops; config entries are
    // superseded by the new membership.
    if (e.type === 0 && e.data.length > 0) store.apply(e.data, e.index)
    index = e.index
    term = e.term
  }
  const existing = await target.load(signal ? { signal } : undefined)
  if (existing.snapshot || existing.entries.length > 0 || existing.hardState.term > 0) {
    throw new StoreError('INVALID_ARGUMENT', 'forceNewCluster: the target storage is not empty')
  }
  if (index === 0)
    throw new StoreError('INVALID_ARGUMENT', 'forceNewCluster: the source log holds no committed state')
  await target.save(
    {
      snapshot: {
        meta: {
          index,
          term,
          conf: {
            voters: [options.memberId],
            learners: [],
            ...(options.address === undefined ? {} : { addresses: { [options.memberId]: options.address } }),
          },
        },
        data: store.snapshot(),
      },
      hardState: { term, vote: null, commit: index },
    },
    signal ? { signal } : undefined,
  )
  return { index, term, dropped, store }
}
