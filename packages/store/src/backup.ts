import { copyFile, mkdir, open as openFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { StoreError } from './errors.js'
import { typeError } from './internal/check.js'

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
  if (typeof source !== 'string' || source.length === 0) throw typeError('source', 'be a directory path')
  if (typeof destination !== 'string' || destination.length === 0) {
    throw typeError('destination', 'be a directory path')
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
