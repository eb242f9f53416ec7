// Undoing a batch of appends that found the disk full: the log goes back to where the batch began, on disk and
// durably, so that nothing of the refused saves can come back (not even after a power cut) and the next save
// appends where they would have.
import { join } from 'node:path'
import { type FileSystem, removeFile, syncDir } from '../../file-system.js'
import { parseSegmentName } from './format.js'
import { cutFile, type SegmentState } from './replay.js'
import { openSegment } from './segment-files.js'

/** Where a batch began: the segment appended to, and its size then (a record boundary). */
export interface CutPoint {
  readonly seq: number
  readonly segSize: number
}

/**
 * Deletes every segment created after `to.seq` (also one left half-created, not in `segments`), syncs the
 * directory, truncates segment `to.seq` back to `to.segSize` and syncs it. `segments` loses the deleted ones;
 * `fd` (the descriptor appended to) is closed if it belonged to one of them and the segment reopened. Finds
 * the segment by sequence number: compaction may have deleted older ones meanwhile (never this one).
 */
export async function cutBack(
  files: FileSystem,
  dir: string,
  segments: SegmentState[],
  fd: number,
  to: CutPoint,
): Promise<{ fd: number; segment: SegmentState }> {
  const at = segments.findIndex((s) => s.seq === to.seq)
  const segment = segments[at]
  if (!segment) throw new Error(`segment ${to.seq} is gone`)
  let appendFd = fd
  if (segments.length > at + 1) {
    await files.close(fd).catch(() => {})
    appendFd = -1
    segments.length = at + 1
  }
  let removed = false
  for (const name of await files.readdir(dir)) {
    const seq = parseSegmentName(name)
    if (seq === null || seq <= to.seq) continue
    await removeFile(files, join(dir, name))
    removed = true
  }
  if (removed) await syncDir(files, dir)
  const path = join(dir, segment.name)
  await cutFile(files, path, to.segSize)
  if (appendFd < 0) appendFd = await openSegment(files, path)
  return { fd: appendFd, segment }
}
