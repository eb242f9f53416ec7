// A file system that runs out of space: around another FileSystem (usually the power-loss one, so that what a
// recovery left durable can be checked by cutting the power), with the disk's free room in bytes. A write that
// does not fit writes what fits and returns short; the next write fails with ENOSPC, as Linux does. Creating
// a file with no room left fails with ENOSPC too. Syncs can be made to fail (fsyncgate).
import { O_CREAT } from 'node:constants'
import type { FileSystem } from '../../src/index.js'

export interface FullDiskFileSystem extends FileSystem {
  /** Bytes that may still be written (Infinity: space enough). Freed bytes are not given back: set it. */
  room: number
  /** Fails the `n`th write from now (1: the next) with ENOSPC, after writing `partial` bytes of it. */
  failWrite(n: number, partial?: number): void
  /** While set, fsync and fdatasync fail with this code (after doing nothing). */
  syncError: string | null
  /** The next fsync or fdatasync fails with `code` (after doing nothing); later ones work. */
  failSyncOnce(code: string): void
  /** Writes that failed for lack of space so far. */
  readonly refused: number
  /** Awaited before a write that is about to fail with ENOSPC (set by `failWrite`): a test's chance to interleave. */
  beforeFailing: (() => Promise<void>) | null
  /** Turns of the event loop each unlink takes (default 0: as the inner file system). */
  unlinkTurns: number
}

export function errno(code: string, syscall: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: simulated failure, ${syscall}`)
  e.code = code
  e.syscall = syscall
  return e
}

export function fullDiskFileSystem(inner: FileSystem): FullDiskFileSystem {
  let countdown = 0
  let partialOfFailing = 0
  /** A short write happened: the next write on the disk fails. */
  let failNext = false
  let syncOnce: string | null = null
  const syncFailure = (): string | null => {
    const code = syncOnce ?? files.syncError
    syncOnce = null
    return code
  }
  const noSpace = () => {
    files.refused++
    return errno('ENOSPC', 'write')
  }
  const files = {
    room: Number.POSITIVE_INFINITY,
    syncError: null as string | null,
    refused: 0,
    beforeFailing: null as (() => Promise<void>) | null,
    unlinkTurns: 0,
    failSyncOnce(code: string) {
      syncOnce = code
    },
    failWrite(n: number, partial = 0) {
      countdown = n
      partialOfFailing = partial
    },
    open: (path: string, flags: number) =>
      flags & O_CREAT && files.room <= 0 ? Promise.reject(errno('ENOSPC', 'open')) : inner.open(path, flags),
    close: (fd: number) => inner.close(fd),
    read: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) =>
      inner.read(fd, buffer, offset, length, position),
    async writev(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number> {
      if (failNext) {
        failNext = false
        throw noSpace()
      }
      const total = buffers.reduce((n, b) => n + b.byteLength, 0)
      let fits = Math.min(total, files.room)
      if (countdown > 0 && --countdown === 0) {
        await files.beforeFailing?.()
        if (partialOfFailing === 0) throw noSpace()
        fits = Math.min(fits, partialOfFailing)
      }
      if (fits <= 0) throw noSpace()
      if (fits < total) {
        // Only the prefix that fits is written; the caller goes on with the rest and finds the disk full.
        const cut: Uint8Array[] = []
        let left = fits
        for (const b of buffers) {
          if (left === 0) break
          cut.push(b.byteLength <= left ? b : b.subarray(0, left))
          left -= Math.min(left, b.byteLength)
        }
        const n = await inner.writev(fd, cut, position)
        files.room -= n
        failNext = true
        return n
      }
      const n = await inner.writev(fd, buffers, position)
      files.room -= n
      return n
    },
    fsync: (fd: number) => {
      const code = syncFailure()
      return code ? Promise.reject(errno(code, 'fsync')) : inner.fsync(fd)
    },
    fdatasync: (fd: number) => {
      const code = syncFailure()
      return code ? Promise.reject(errno(code, 'fdatasync')) : inner.fdatasync(fd)
    },
    size: (path: string) => inner.size(path),
    readdir: (dir: string) => inner.readdir(dir),
    mkdir: (dir: string) => inner.mkdir(dir),
    rename: (from: string, to: string) => inner.rename(from, to),
    async unlink(path: string) {
      for (let k = 0; k < files.unlinkTurns; k++) await new Promise((r) => setImmediate(r))
      return inner.unlink(path)
    },
    truncate: (path: string, length: number) => inner.truncate(path, length),
  }
  return files
}
