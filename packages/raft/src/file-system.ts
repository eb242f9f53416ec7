// The file operations FileLogStorage needs, as a seam: node:fs by default, and in tests a file system that loses
// what was not synced when the power is cut (see `powerLossFileSystem` in @swarmkit/raft/testing).
import * as fs from 'node:fs'
import { join } from 'node:path'

/**
 * The file operations {@link FileLogStorage} performs, on file descriptors and paths as node:fs has them. Flags
 * are node's numeric `fs.constants` (`O_RDONLY`, `O_RDWR`, `O_WRONLY`, `O_CREAT`, `O_EXCL`, `O_TRUNC`,
 * `O_DSYNC`). Errors carry node's `code` (`ENOENT`, `EEXIST`, ...).
 *
 * The durability contract FileLogStorage relies on, and that a test file system may enforce strictly: data
 * written is durable only once `fsync`/`fdatasync` of its file returned, or when the write returned on a
 * descriptor opened with `O_DSYNC`; a created, renamed or removed name is durable only once its directory was
 * synced (`open(dir, O_RDONLY)` then `fsync`).
 */
export interface FileSystem {
  open(path: string, flags: number): Promise<number>
  close(fd: number): Promise<void>
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; resolves with the count read. */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>
  /** Writes the buffers in order at `position`; resolves with the count written (may be short). */
  writev(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number>
  /**
   * `writev` on the calling thread, blocking it until the write returns (optional). FileLogStorage uses it for
   * saves whose caller waits for nothing else (`inline`), saving the trip through a background thread.
   */
  writevSync?(fd: number, buffers: readonly Uint8Array[], position: number): number
  fsync(fd: number): Promise<void>
  fdatasync(fd: number): Promise<void>
  /** The size of the file at `path`. */
  size(path: string): Promise<number>
  readdir(dir: string): Promise<string[]>
  /** Creates `dir` and its missing parents. */
  mkdir(dir: string): Promise<void>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
  truncate(path: string, length: number): Promise<void>
}

const done =
  <T>(ok: (v: T) => void, fail: (e: unknown) => void) =>
  (err: unknown, v: T) =>
    err ? fail(err) : ok(v)

/** The real file system (node:fs, on descriptors, through libuv's thread pool). */
export const nodeFileSystem: FileSystem = {
  open: (path, flags) => new Promise((ok, fail) => fs.open(path, flags, 0o666, done(ok, fail))),
  close: (fd) => new Promise((ok, fail) => fs.close(fd, (err) => (err ? fail(err) : ok()))),
  read: (fd, buffer, offset, length, position) =>
    new Promise((ok, fail) => fs.read(fd, buffer, offset, length, position, done(ok, fail))),
  writev: (fd, buffers, position) =>
    new Promise((ok, fail) => fs.writev(fd, buffers as Uint8Array[], position, done(ok, fail))),
  writevSync: (fd, buffers, position) => fs.writevSync(fd, buffers as Uint8Array[], position),
  fsync: (fd) => new Promise((ok, fail) => fs.fsync(fd, (err) => (err ? fail(err) : ok()))),
  fdatasync: (fd) => new Promise((ok, fail) => fs.fdatasync(fd, (err) => (err ? fail(err) : ok()))),
  size: async (path) => (await fs.promises.stat(path)).size,
  readdir: (dir) => fs.promises.readdir(dir),
  mkdir: async (dir) => {
    await fs.promises.mkdir(dir, { recursive: true })
  },
  rename: (from, to) => fs.promises.rename(from, to),
  unlink: (path) => fs.promises.unlink(path),
  truncate: (path, length) => fs.promises.truncate(path, length),
}

export const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_DSYNC } = fs.constants

/** Writes every byte of `bufs` at `position`, going on after short writes. */
export async function writeAll(
  files: FileSystem,
  fd: number,
  bufs: readonly Uint8Array[],
  position: number,
): Promise<number> {
  const total = byteLength(bufs)
  let list = bufs
  let pos = position
  let left = total
  while (left > 0) {
    const n = await files.writev(fd, list, pos)
    if (n === left) break
    list = unwritten(list, n)
    pos += n
    left -= n
  }
  return total
}

/**
 * {@link writeAll} on the calling thread (`files.writevSync`, which must exist): the thread waits for the
 * write, and no background thread has to hand its result back.
 */
export function writeAllSync(
  files: FileSystem,
  fd: number,
  bufs: readonly Uint8Array[],
  position: number,
): number {
  const total = byteLength(bufs)
  let list = bufs
  let pos = position
  let left = total
  while (left > 0) {
    const n = files.writevSync!(fd, list, pos)
    if (n === left) break
    list = unwritten(list, n)
    pos += n
    left -= n
  }
  return total
}

function byteLength(bufs: readonly Uint8Array[]): number {
  let n = 0
  for (let i = 0; i < bufs.length; i++) n += bufs[i]!.byteLength
  return n
}

/** What is left of `list` after a short write of `n` bytes. */
function unwritten(list: readonly Uint8Array[], n: number): Uint8Array[] {
  if (n <= 0) throw new Error('short write')
  let skip = n
  const rest: Uint8Array[] = []
  for (const b of list) {
    if (skip >= b.byteLength) skip -= b.byteLength
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b)
      skip = 0
    }
  }
  return rest
}

/** Reads the whole file at `path`. */
export async function readWhole(files: FileSystem, path: string): Promise<Buffer> {
  const fd = await files.open(path, O_RDONLY)
  try {
    const size = await files.size(path)
    const buf = Buffer.allocUnsafe(size)
    let at = 0
    while (at < size) {
      const n = await files.read(fd, buf, at, size - at, at)
      if (n <= 0) break
      at += n
    }
    return at === size ? buf : buf.subarray(0, at)
  } finally {
    await files.close(fd)
  }
}

/** Writes `bytes` as the whole of a new file (`O_EXCL`: fails with `EEXIST` if it exists); not synced. */
export async function writeNew(files: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const fd = await files.open(path, O_WRONLY | O_CREAT | O_EXCL)
  try {
    await writeAll(files, fd, [bytes], 0)
  } finally {
    await files.close(fd)
  }
}

/** Syncs the directory itself, so that names created, renamed or removed in it are durable. */
export async function syncDir(files: FileSystem, dir: string): Promise<void> {
  const fd = await files.open(dir, O_RDONLY)
  try {
    await files.fsync(fd)
  } finally {
    await files.close(fd)
  }
}

/** Removes `path`, ignoring a missing file. */
export async function removeFile(files: FileSystem, path: string): Promise<void> {
  await files.unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e?.code !== 'ENOENT') throw e
  })
}

/** Writes `bytes` to `dir/name` through a synced temporary file and a rename, then syncs the directory. */
export async function writeAtomic(
  files: FileSystem,
  dir: string,
  name: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = join(dir, `${name}.tmp`)
  try {
    const fd = await files.open(tmp, O_WRONLY | O_CREAT | O_TRUNC)
    try {
      await writeAll(files, fd, [bytes], 0)
      await files.fsync(fd)
    } finally {
      await files.close(fd)
    }
    await files.rename(tmp, join(dir, name))
  } catch (e) {
    // The file at `name` is as it was; the partial copy goes at once (on a full disk it holds the space).
    await files.unlink(tmp).catch(() => {})
    throw e
  }
  await syncDir(files, dir)
}
