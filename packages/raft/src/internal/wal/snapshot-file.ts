// Snapshot files: encoded (header, sealed data) and written like `writeAtomic`, in slices so that a large
// file does not hold up the log's own syncs.
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { type FileSystem, O_CREAT, O_TRUNC, O_WRONLY, syncDir, writeAll } from '../../file-system.js'
import { crc32c, crc32cInSlices } from './crc32c.js'
import { FLAG_SEALED, parseSnapshotName, put64, SNAP_HEADER, SNAP_MAGIC } from './format.js'
import type { AsyncSealHook, SealHook } from './replay.js'

/** Bytes of a snapshot file written and synced at a time. */
const WRITE_SLICE = 4 << 20

/** A snapshot file as its header (magic, flags, conf) and its data; the checksum is added as it is written. */
export interface EncodedSnapshotFile {
  readonly name: string
  readonly head: Buffer
  readonly data: Uint8Array
}

/** A snapshot file whose data is sealed (by an asynchronous sealer) only as it is written. */
export interface UnsealedSnapshotFile {
  readonly name: string
  readonly sealAsync: AsyncSealHook
  readonly index: number
  readonly term: number
  readonly conf: unknown
  readonly raw: Uint8Array
}

export type SnapshotFile = EncodedSnapshotFile | UnsealedSnapshotFile

/**
 * Writes a snapshot file (header, data, CRC-32C of both) like `writeAtomic`. The data is written where it lies
 * rather than copied behind the header, checksummed in slices between which the event loop runs, and synced
 * every few MiB: a large file synced only at the end would hold up the log's own syncs (they share the file
 * system's journal) for as long as all its data takes to reach the disk.
 */
export async function writeSnapshotFile(files: FileSystem, dir: string, file: SnapshotFile): Promise<void> {
  const f = 'raw' in file ? await sealSnapshotFile(file) : file
  const tmp = join(dir, `${f.name}.tmp`)
  const data = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length)
  try {
    await writeTmp(files, tmp, f, data)
  } catch (e) {
    // A full disk: the partial file goes at once (it holds space and is referenced by nothing).
    await files.unlink(tmp).catch(() => {})
    throw e
  }
  await files.rename(tmp, join(dir, f.name))
  await syncDir(files, dir)
}

async function writeTmp(files: FileSystem, tmp: string, f: EncodedSnapshotFile, data: Buffer): Promise<void> {
  const fd = await files.open(tmp, O_WRONLY | O_CREAT | O_TRUNC)
  try {
    let crc = crc32c(f.head)
    await writeAll(files, fd, [f.head], 0)
    let pos = f.head.length
    for (let at = 0; at < data.length; at += WRITE_SLICE) {
      const end = Math.min(data.length, at + WRITE_SLICE)
      crc = await crc32cInSlices(data, crc, at, end)
      await writeAll(files, fd, [data.subarray(at, end)], pos)
      pos += end - at
      if (end < data.length) await files.fdatasync(fd)
    }
    const trailer = Buffer.allocUnsafe(4)
    trailer.writeUInt32LE(crc, 0)
    await writeAll(files, fd, [trailer], pos)
    await files.fsync(fd)
  } finally {
    await files.close(fd)
  }
}

/** The header and (sealed by `seal`, if given) data of a snapshot file; its checksum is added as it is written. */
export function encodeSnapshotFile(
  seal: SealHook | undefined,
  index: number,
  term: number,
  conf: unknown,
  raw: Uint8Array,
): { head: Buffer; data: Uint8Array } {
  let data = raw
  if (seal) {
    data = seal(raw, { kind: 'snapshot', index, term, type: 0 })
    if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
  }
  return { head: snapshotHead(seal !== undefined, index, term, conf, data.length), data }
}

/** Seals an unsealed snapshot file's data through its asynchronous sealer. */
async function sealSnapshotFile(f: UnsealedSnapshotFile): Promise<EncodedSnapshotFile> {
  const data = await f.sealAsync(f.raw, { kind: 'snapshot', index: f.index, term: f.term, type: 0 })
  if (!(data instanceof Uint8Array)) throw new TypeError('options.sealAsync must resolve to a Uint8Array')
  return { name: f.name, head: snapshotHead(true, f.index, f.term, f.conf, data.length), data }
}

function snapshotHead(sealed: boolean, index: number, term: number, conf: unknown, length: number): Buffer {
  const confBytes = Buffer.from(JSON.stringify(conf))
  const head = Buffer.allocUnsafe(SNAP_HEADER + confBytes.length)
  head.write(SNAP_MAGIC, 0, 'latin1')
  head.writeUInt32LE(sealed ? FLAG_SEALED : 0, 8)
  head.writeUInt32LE(confBytes.length, 12)
  put64(head, 16, index)
  put64(head, 24, term)
  put64(head, 32, length)
  head.set(confBytes, SNAP_HEADER)
  return head
}

/** The newest `keep` snapshot files among `names` whose index is below `below`, newest first. */
export function newestOlderSnapshots(names: Iterable<string>, below: number, keep: number): string[] {
  return [...names]
    .filter((n) => (parseSnapshotName(n)?.index ?? Number.POSITIVE_INFINITY) < below)
    .sort((a, b) => parseSnapshotName(b)!.index - parseSnapshotName(a)!.index)
    .slice(0, keep)
}
