// A full disk, told apart from a failed sync. A write that fails with ENOSPC or EDQUOT wrote nothing that was
// promised: the log cuts what it wrote of the batch and takes the next save. A failed fsync/fdatasync (or
// close) is another matter: the kernel may have dropped the dirty pages and marked them clean (fsyncgate), so
// what the file holds is unknown and the log stops for good, whatever the errno.
import { RaftError } from '../../errors.js'
import type { FileSystem } from '../../file-system.js'

/** Errors raised by fsync, fdatasync or close: never retried. */
const syncFailures = new WeakSet<object>()

function tagged(e: unknown): unknown {
  if (typeof e === 'object' && e !== null) syncFailures.add(e)
  return e
}

/** `files` with its sync errors tagged, so that a full disk at sync time is never taken for a failed write. */
export function tagSyncFailures(files: FileSystem): FileSystem {
  return {
    open: (path, flags) => files.open(path, flags),
    read: (fd, buffer, offset, length, position) => files.read(fd, buffer, offset, length, position),
    writev: (fd, buffers, position) => files.writev(fd, buffers, position),
    ...(files.writevSync && {
      writevSync: (fd: number, buffers: readonly Uint8Array[], position: number) =>
        files.writevSync!(fd, buffers, position),
    }),
    size: (path) => files.size(path),
    readdir: (dir) => files.readdir(dir),
    mkdir: (dir) => files.mkdir(dir),
    rename: (from, to) => files.rename(from, to),
    unlink: (path) => files.unlink(path),
    truncate: (path, length) => files.truncate(path, length),
    close: (fd) => files.close(fd).catch((e) => Promise.reject(tagged(e))),
    fsync: (fd) => files.fsync(fd).catch((e) => Promise.reject(tagged(e))),
    fdatasync: (fd) => files.fdatasync(fd).catch((e) => Promise.reject(tagged(e))),
  }
}

/** Whether `e` is a write (or create, or rename) refused for lack of space: nothing of it was promised. */
export function isNoSpace(e: unknown): boolean {
  if (typeof e !== 'object' || e === null || syncFailures.has(e)) return false
  if (e instanceof RaftError) return e.code === 'NO_SPACE'
  const code = (e as { code?: unknown }).code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/** The error a save gets when the disk was full: retryable, names the errno. */
export function noSpaceError(dir: string, cause: unknown): RaftError {
  if (cause instanceof RaftError && cause.code === 'NO_SPACE') return cause
  return new RaftError(
    'NO_SPACE',
    `${dir}: the disk is full, nothing of this save was kept; retry once space returns (${(cause as Error)?.message ?? String(cause)})`,
    { cause },
  )
}
