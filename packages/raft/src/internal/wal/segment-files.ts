// Segment files of the write-ahead log: created with their header records, written aside and renamed into
// place (a reseal), and opened for appending. Appends use O_DSYNC: each write returns once its data (and the
// file size) is durable, one call instead of a write and an fdatasync.
import type { Buffer } from 'node:buffer'
import { join } from 'node:path'
import {
  type FileSystem,
  O_CREAT,
  O_DSYNC,
  O_EXCL,
  O_RDWR,
  O_WRONLY,
  syncDir,
  writeAll,
} from '../../file-system.js'

/** Segments are written with O_DSYNC: each write returns once its data (and the file size) is durable. */
const SEGMENT_FLAGS = O_RDWR | O_DSYNC
const NEW_SEGMENT_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_DSYNC

/** Opens an existing segment for appending. */
export function openSegment(files: FileSystem, path: string): Promise<number> {
  return files.open(path, SEGMENT_FLAGS)
}

/** Creates segment `name` holding `parts` (its header records), durable with its directory entry. */
export async function createSegment(
  files: FileSystem,
  dir: string,
  name: string,
  parts: Buffer[],
): Promise<{ fd: number; size: number }> {
  const fd = await files.open(join(dir, name), NEW_SEGMENT_FLAGS)
  try {
    const size = await writeAll(files, fd, parts, 0)
    await syncDir(files, dir)
    return { fd, size }
  } catch (e) {
    await files.close(fd).catch(() => {})
    throw e
  }
}

/**
 * Writes segment `name` aside, then renames it into place and opens it for appending: a torn new segment
 * would otherwise replace the log's tail with a part of it.
 */
export async function writeSegmentAside(
  files: FileSystem,
  dir: string,
  name: string,
  parts: Buffer[],
): Promise<number> {
  const tmp = join(dir, `${name}.tmp`)
  try {
    const tfd = await files.open(tmp, NEW_SEGMENT_FLAGS)
    try {
      await writeAll(files, tfd, parts, 0)
    } finally {
      await files.close(tfd).catch(() => {})
    }
    await files.rename(tmp, join(dir, name))
  } catch (e) {
    await files.unlink(tmp).catch(() => {})
    throw e
  }
  await syncDir(files, dir)
  return openSegment(files, join(dir, name))
}
