import { Buffer } from 'node:buffer'
import { join, resolve } from 'node:path'
import { RaftError } from './errors.js'
import {
  type FileSystem,
  nodeFileSystem,
  O_CREAT,
  O_DSYNC,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  readWhole,
  removeFile,
  syncDir,
  writeAll,
  writeAtomic,
  writeNew,
} from './file-system.js'
import { crc32c } from './internal/wal/crc32c.js'
import {
  ENTRIES_BODY,
  ENTRIES_ITEM,
  ENTRY_BODY,
  FLAG_SEALED,
  FLAG_TAG_CHECKSUM,
  seal as frame,
  get32,
  get64,
  HARD_BODY,
  KIND_ENTRIES,
  KIND_ENTRY,
  KIND_HARD,
  KIND_SEGMENT,
  KIND_SNAPSHOT,
  MAX_TAG_BYTES,
  MAX_VOTE_BYTES,
  parseSegmentName,
  parseSnapshotName,
  put64,
  RECORD_HEADER,
  SEGMENT_BODY,
  SNAP_HEADER,
  SNAP_MAGIC,
  SNAPSHOT_BODY,
  segmentName,
  snapshotName,
  WAL_VERSION,
} from './internal/wal/format.js'
import {
  cutFile,
  type Limits,
  type Replayed,
  readSnapshotFile,
  replaySegments,
  type SealContext,
  type SealHook,
  type SegmentState,
  validateConf,
} from './internal/wal/replay.js'
import type { Entry, HardState, LogStorage, PersistedState, Snapshot, StorageUpdate } from './storage.js'

export type { SealContext, SealHook }

/** Options of {@link FileLogStorage.open}. */
export interface FileLogStorageOptions {
  /** This member's ID. Recorded on first open; a directory recorded for another ID is refused. */
  readonly nodeId?: string
  /** The cluster's ID. Recorded on first open; a directory recorded for another cluster is refused. */
  readonly clusterId?: string
  /** A segment is closed and a new one started once it reaches this size. Default 64 MiB. */
  readonly segmentBytes?: number
  /** The largest entry data accepted by `save` and read back. Default 64 MiB. */
  readonly maxEntryBytes?: number
  /** The largest snapshot data accepted by `save` and read back. Default 1 GiB. */
  readonly maxSnapshotBytes?: number
  /**
   * Seals entry and snapshot data before it is written (e.g. authenticated encryption). Index, term and type
   * stay readable and are passed in `context` so a sealer can bind them (as associated data). Give `open`
   * with it; a log written with hooks must be opened with them and every record of it is sealed.
   */
  readonly seal?: SealHook
  /** Undoes `seal`; throws when the data is not authentic (reported as `CORRUPT`). */
  readonly open?: SealHook
  /**
   * With `seal`: seal the entries of one save together, in one call and one record (`context.kind` `'entries'`,
   * their data concatenated), instead of one call per entry. Each entry's index, term, type and length stay
   * readable and are passed in `context.header` for the sealer to bind. Far cheaper per entry when a save
   * carries many small entries and sealing has a fixed cost per call. A log may mix both kinds of record;
   * `open` must handle both whatever this option says. Default false.
   */
  readonly batchSeal?: boolean
  /**
   * With `seal`: the sealed data ends in an authentication tag of this many bytes (1-64) computed over all of
   * it, as an AEAD's is (16 for XChaCha20-Poly1305), and `open` throws when any sealed byte changed. Sealed
   * records then carry a checksum of their readable part and the tag only, instead of of every byte: the tag
   * already detects damage, and checksumming ciphertext costs as much as sealing it. A torn write is still
   * found (by the checksum, or by `open` for the last record of the log, which is then cut back). Default: the
   * checksum covers everything.
   */
  readonly sealTagBytes?: number
  /**
   * The file system to work through (default node:fs). Tests inject one that loses unsynced writes at a
   * simulated power cut (`powerLossFileSystem` in `@swarmkit/raft/testing`).
   */
  readonly fileSystem?: FileSystem
  /** Superseded snapshot files kept beside the latest (newest first); the rest are deleted. Default 0. */
  readonly keepOldSnapshots?: number
  /** Called after each durable write of log records (O_DSYNC): its duration in ms and its size. */
  readonly onSync?: (ms: number, bytes: number) => void
  readonly signal?: AbortSignal
}

/** Counters since open, for benchmarks and tests. */
export interface FileLogStorageStats {
  /** `save` calls made durable. */
  readonly saves: number
  /** Synchronous (O_DSYNC) writes to the log: each covers one batch of saves. */
  readonly syncs: number
  /** Bytes appended to the log. */
  readonly bytes: number
  /** Segment files in use. */
  readonly segments: number
}

const MiB = 1 << 20
const DEFAULT_SEGMENT_BYTES = 64 * MiB
const DEFAULT_MAX_ENTRY = 64 * MiB
const DEFAULT_MAX_SNAPSHOT = 1024 * MiB
/** Room a seal hook may add to data (nonce, tag, key id). */
const SEAL_SLACK = 1024
/** The most entries sealed together in one record. */
const MAX_RUN = 4096
const META = 'meta.json'
const LOCK = 'LOCK'
const META_FORMAT = 'swarmkit-raft-log'
const MAX_META_BYTES = 64 * 1024

/** Directories open in this process, per file system. */
const heldBy = new WeakMap<FileSystem, Set<string>>()
/** Errors of writer work (`Pending.run`) raised before it changed anything on disk. */
const unchanged = new WeakSet<object>()

interface Pending {
  /** The records of this save (snapshot reference, entries, hard state), or null for a barrier. */
  buf: Buffer | null
  snapFile: SnapshotFile | null
  snap: { index: number; term: number; discard: boolean } | null
  firstEntry: number
  lastEntry: number
  hard: HardState | null
  /** Work done by the writer between two saves, with the log to itself (see `reseal`). */
  run?: () => Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}

function ioError(what: string, cause: unknown): RaftError {
  return new RaftError('IO', `${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
}

/** Segments are written with O_DSYNC: each write returns once its data (and the file size) is durable. */
const SEGMENT_FLAGS = O_RDWR | O_DSYNC
const NEW_SEGMENT_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_DSYNC

/** Bytes checksummed between two yields to the event loop while a snapshot file is written. */
const CRC_SLICE = 1 << 20
/** Bytes of a snapshot file written and synced at a time. */
const WRITE_SLICE = 4 << 20

/** A snapshot file as its header (magic, flags, conf) and its data; the checksum is added as it is written. */
interface SnapshotFile {
  readonly name: string
  readonly head: Buffer
  readonly data: Uint8Array
}

/**
 * Writes a snapshot file (header, data, CRC-32C of both) like `writeAtomic`. The data is written where it lies
 * rather than copied behind the header, checksummed in slices between which the event loop runs, and synced
 * every few MiB: a large file synced only at the end would hold up the log's own syncs (they share the file
 * system's journal) for as long as all its data takes to reach the disk.
 */
async function writeSnapshotFile(files: FileSystem, dir: string, f: SnapshotFile): Promise<void> {
  const tmp = join(dir, `${f.name}.tmp`)
  const data = Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length)
  const fd = await files.open(tmp, O_WRONLY | O_CREAT | O_TRUNC)
  try {
    let crc = crc32c(f.head)
    await writeAll(files, fd, [f.head], 0)
    let pos = f.head.length
    for (let at = 0; at < data.length; at += WRITE_SLICE) {
      const end = Math.min(data.length, at + WRITE_SLICE)
      for (let c = at; c < end; c += CRC_SLICE) {
        if (c > at) await new Promise<void>((resolve) => setImmediate(resolve))
        crc = crc32c(data, crc, c, Math.min(end, c + CRC_SLICE))
      }
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
  await files.rename(tmp, join(dir, f.name))
  await syncDir(files, dir)
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

function checkCount(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

function checkHardState(hs: unknown, name: string): HardState {
  if (typeof hs !== 'object' || hs === null) throw new TypeError(`${name} must be an object`)
  const h = hs as HardState
  checkCount(h.term, `${name}.term`)
  checkCount(h.commit, `${name}.commit`)
  if (h.vote !== null && (typeof h.vote !== 'string' || h.vote.length === 0)) {
    throw new TypeError(`${name}.vote must be a non-empty string or null`)
  }
  if (h.vote !== null && Buffer.byteLength(h.vote) > MAX_VOTE_BYTES) {
    throw new RangeError(`${name}.vote is longer than ${MAX_VOTE_BYTES} bytes`)
  }
  return { term: h.term, vote: h.vote, commit: h.commit }
}

/**
 * Durable {@link LogStorage} in a directory: a segmented write-ahead log with a CRC-32C on every record, group
 * commit, snapshot files written atomically, and recovery that cuts a torn tail and refuses anything else
 * that does not check out.
 *
 * - `save` resolves only after its records are durable (O_DSYNC writes). Saves that arrive while a sync is running
 *   are written together and covered by the next single sync (group commit).
 * - A snapshot is written to a temporary file, synced, renamed and the directory synced, before the log
 *   record that refers to it is written.
 * - `compact(index)` deletes the segments whose entries all lie at or below `index`.
 * - `open` cuts a torn tail of the last segment back to the last valid record. Damage anywhere else is a
 *   `RaftError` `CORRUPT` naming the file and offset. A directory recorded for another node or cluster is
 *   `STORAGE_MISMATCH`; one already open is `LOCKED`.
 */
export class FileLogStorage implements LogStorage {
  /** The storage directory. */
  readonly dir: string
  readonly #limits: Limits
  readonly #seal: SealHook | undefined
  readonly #batchSeal: boolean
  /** Tag length of sealed data when records checksum only their readable part and tag (0: whole body). */
  readonly #sealTag: number
  readonly #segmentBytes: number
  readonly #maxEntry: number
  readonly #maxSnapshot: number
  readonly #lockKey: string
  readonly #fs: FileSystem

  // What save() has accepted (validated against, updated synchronously in call order).
  #snapIndex = 0
  #snapTerm = 0
  /** Terms of the entries after the snapshot: #terms[k] is the term of index #snapIndex + 1 + k. */
  #terms: number[] = []
  #hard: HardState = { term: 0, vote: null, commit: 0 }

  // What is durable, as the writer goes (for the header of the next segment).
  #durHard: HardState | null = null
  #durSnap: { index: number; term: number } | null = null
  #durLast = 0

  #segments: SegmentState[] = []
  #fd = -1
  #segSize = 0
  #segHeader = 0
  #snapFiles = new Set<string>()

  #queue: Pending[] = []
  /** Background writes of snapshot files, in order. */
  #snapChain: Promise<void> = Promise.resolve()
  #flushing = false
  #failed: RaftError | null = null
  #closed = false
  #closing: Promise<void> | null = null
  #stash: PersistedState | null = null
  #stats = { saves: 0, syncs: 0, bytes: 0 }
  readonly #onSync: ((ms: number, bytes: number) => void) | undefined

  private constructor(dir: string, options: FileLogStorageOptions, lockKey: string) {
    this.dir = dir
    this.#lockKey = lockKey
    this.#fs = options.fileSystem ?? nodeFileSystem
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    this.#maxEntry = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY
    this.#maxSnapshot = options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT
    this.#seal = options.seal
    this.#batchSeal = options.batchSeal === true && options.seal !== undefined
    this.#sealTag = options.seal !== undefined ? (options.sealTagBytes ?? 0) : 0
    const kos = options.keepOldSnapshots ?? 0
    if (!Number.isSafeInteger(kos) || kos < 0)
      throw new RangeError('options.keepOldSnapshots must be an integer >= 0')
    this.keepOldSnapshots = kos
    this.#onSync = options.onSync
    const maxBody = ENTRY_BODY + this.#maxEntry + SEAL_SLACK
    this.#limits = {
      maxBody,
      maxSegmentFile:
        Math.max(this.#segmentBytes, DEFAULT_SEGMENT_BYTES) + maxBody + RECORD_HEADER + 64 * 1024,
      maxSnapshotBytes: this.#maxSnapshot,
      open: options.open,
      fs: this.#fs,
    }
  }

  /**
   * Opens (creating if needed) the log in `dir` and recovers it. Rejects with `CORRUPT`, `STORAGE_MISMATCH`,
   * `LOCKED` or `IO`.
   */
  static async open(dir: string, options: FileLogStorageOptions = {}): Promise<FileLogStorage> {
    if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dir must be a non-empty string')
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    for (const key of ['nodeId', 'clusterId'] as const) {
      const v = options[key]
      if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 256)) {
        throw new TypeError(`options.${key} must be a non-empty string of at most 256 characters`)
      }
    }
    if (options.segmentBytes !== undefined) checkCount(options.segmentBytes, 'options.segmentBytes', 1024)
    if (options.maxEntryBytes !== undefined) checkCount(options.maxEntryBytes, 'options.maxEntryBytes', 1)
    if (options.maxSnapshotBytes !== undefined) {
      checkCount(options.maxSnapshotBytes, 'options.maxSnapshotBytes', 1)
      if (options.maxSnapshotBytes > 2 * 1024 * MiB)
        throw new RangeError('options.maxSnapshotBytes is over 2 GiB')
    }
    if ((options.seal === undefined) !== (options.open === undefined)) {
      throw new TypeError('options.seal and options.open go together: give both or neither')
    }
    for (const key of ['seal', 'open'] as const) {
      if (options[key] !== undefined && typeof options[key] !== 'function') {
        throw new TypeError(`options.${key} must be a function`)
      }
    }
    if (
      options.sealTagBytes !== undefined &&
      (!Number.isSafeInteger(options.sealTagBytes) ||
        options.sealTagBytes < 1 ||
        options.sealTagBytes > MAX_TAG_BYTES)
    ) {
      throw new RangeError(`options.sealTagBytes must be an integer from 1 to ${MAX_TAG_BYTES}`)
    }
    if (options.batchSeal !== undefined && typeof options.batchSeal !== 'boolean') {
      throw new TypeError('options.batchSeal must be a boolean')
    }
    checkSignal(options.signal)

    const abs = resolve(dir)
    const files = options.fileSystem ?? nodeFileSystem
    let held = heldBy.get(files)
    if (!held) heldBy.set(files, (held = new Set()))
    if (held.has(abs)) throw new RaftError('LOCKED', `${abs} is already open in this process`)
    held.add(abs)
    const storage = new FileLogStorage(abs, options, abs)
    try {
      await files.mkdir(abs)
      await storage.#lock()
      await storage.#recover(options)
      return storage
    } catch (e) {
      if (storage.#fd >= 0) await files.close(storage.#fd).catch(() => {})
      await storage.#unlock()
      throw e
    }
  }

  async #lock(): Promise<void> {
    const path = join(this.dir, LOCK)
    try {
      await writeNew(this.#fs, path, Buffer.from(String(process.pid)))
      this.#ownsLock = true
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create ${path}`, e)
    }
    // Read at most 32 bytes: a pid, never trusted beyond that.
    const files = this.#fs
    const text = await files
      .open(path, O_RDONLY)
      .then(async (fd) => {
        try {
          const buf = Buffer.alloc(32)
          const bytesRead = await files.read(fd, buf, 0, 32, 0)
          return buf.toString('latin1', 0, bytesRead)
        } finally {
          await files.close(fd)
        }
      })
      .catch(() => '')
    const pid = Number.parseInt(text, 10)
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
      throw new RaftError('LOCKED', `${this.dir} is in use by process ${pid}`)
    }
    // A lock left by a process that is gone: take it over.
    await writeAtomic(this.#fs, this.dir, LOCK, Buffer.from(String(process.pid)))
    this.#ownsLock = true
  }

  /** Whether this instance wrote the LOCK file: one refused the directory must never delete the owner's. */
  #ownsLock = false

  async #unlock(): Promise<void> {
    if (this.#ownsLock) await this.#fs.unlink(join(this.dir, LOCK)).catch(() => {})
    this.#ownsLock = false
    heldBy.get(this.#fs)?.delete(this.#lockKey)
  }

  async #recover(options: FileLogStorageOptions): Promise<void> {
    const names = await this.#fs.readdir(this.dir)
    for (const n of names) if (n.endsWith('.tmp')) await removeFile(this.#fs, join(this.dir, n))
    const segs = names
      .map((name) => ({ name, seq: parseSegmentName(name) }))
      .filter((s): s is { name: string; seq: number } => s.seq !== null)
      .sort((a, b) => a.seq - b.seq)
    for (let k = 1; k < segs.length; k++) {
      if (segs[k]!.seq !== segs[k - 1]!.seq + 1) {
        throw new RaftError(
          'CORRUPT',
          `${segs[k]!.name}: segment ${segs[k - 1]!.seq + 1} is missing before it`,
        )
      }
    }
    await this.#checkMeta(options, names.includes(META), segs.length > 0)

    const replayed: Replayed = await replaySegments(this.dir, segs, this.#limits)
    if (replayed.dropLast) await this.#fs.unlink(join(this.dir, segs[segs.length - 1]!.name))
    this.#segments = replayed.segments
    let snapshot: Snapshot | null = null
    if (replayed.snapshot) {
      snapshot = await readSnapshotFile(
        this.dir,
        replayed.snapshot.index,
        replayed.snapshot.term,
        this.#limits,
      )
    }
    // Snapshot files the log does not refer to were never acknowledged (or were superseded: the newest
    // `keepOldSnapshots` of those stay).
    const keep = replayed.snapshot ? snapshotName(replayed.snapshot.index, replayed.snapshot.term) : null
    const older = names
      .filter(
        (n) => (parseSnapshotName(n)?.index ?? Number.POSITIVE_INFINITY) < (replayed.snapshot?.index ?? 0),
      )
      .sort((a, b) => parseSnapshotName(b)!.index - parseSnapshotName(a)!.index)
      .slice(0, this.keepOldSnapshots)
    for (const n of older) this.#snapFiles.add(n)
    for (const n of names) {
      if (parseSnapshotName(n) !== null && n !== keep && !this.#snapFiles.has(n))
        await removeFile(this.#fs, join(this.dir, n))
    }
    if (keep) this.#snapFiles.add(keep)

    this.#hard = replayed.hardState
    this.#durHard = replayed.hardState
    this.#snapIndex = replayed.snapshot?.index ?? 0
    this.#snapTerm = replayed.snapshot?.term ?? 0
    this.#durSnap = replayed.snapshot
    this.#terms = replayed.entries.map((e) => e.term)
    this.#durLast = this.#snapIndex + this.#terms.length

    const last = this.#segments[this.#segments.length - 1]
    if (last) {
      const path = join(this.dir, last.name)
      if (replayed.tailEnd < replayed.tailSize) await cutFile(this.#fs, path, replayed.tailEnd)
      this.#fd = await this.#fs.open(path, SEGMENT_FLAGS)
      this.#segSize = replayed.tailEnd
      this.#segHeader = 0
    } else {
      await this.#startSegment(1)
    }
    this.#stash = { hardState: replayed.hardState, snapshot, entries: replayed.entries }
  }

  async #checkMeta(options: FileLogStorageOptions, exists: boolean, hasSegments: boolean): Promise<void> {
    const path = join(this.dir, META)
    let meta: Record<string, unknown> = {
      format: META_FORMAT,
      version: 1,
      sealed: options.seal !== undefined,
    }
    let changed = !exists
    if (exists) {
      const size = await this.#fs.size(path)
      if (size > MAX_META_BYTES) throw new RaftError('CORRUPT', `${path}: ${size} bytes is over the limit`)
      try {
        meta = JSON.parse((await readWhole(this.#fs, path)).toString('utf8'))
      } catch (e) {
        throw new RaftError('CORRUPT', `${path}: not valid JSON`, { cause: e })
      }
      if (
        typeof meta !== 'object' ||
        meta === null ||
        meta['format'] !== META_FORMAT ||
        meta['version'] !== 1
      ) {
        throw new RaftError(
          'STORAGE_MISMATCH',
          `${path}: not a swarmkit raft log (or an unsupported version)`,
        )
      }
    } else if (hasSegments) {
      throw new RaftError('CORRUPT', `${path} is missing from a directory that holds log segments`)
    }
    for (const key of ['nodeId', 'clusterId'] as const) {
      const want = options[key]
      const have = meta[key]
      if (want === undefined) continue
      if (have === undefined) {
        meta[key] = want
        changed = true
      } else if (have !== want) {
        const what = key === 'nodeId' ? 'node' : 'cluster'
        throw new RaftError(
          'STORAGE_MISMATCH',
          `${this.dir} belongs to ${what} ${JSON.stringify(have)}, not ${JSON.stringify(want)}`,
        )
      }
    }
    if (meta['sealed'] !== (options.seal !== undefined)) {
      throw new RaftError(
        'STORAGE_MISMATCH',
        meta['sealed']
          ? `${this.dir} holds a sealed log: open it with the seal and open hooks`
          : `${this.dir} holds a log that is not sealed: it cannot be opened with seal hooks`,
      )
    }
    if (changed) await writeAtomic(this.#fs, this.dir, META, Buffer.from(JSON.stringify(meta)))
  }

  /** Creates segment `seq` with its header records, synced, and makes it the one appended to. */
  async #startSegment(seq: number): Promise<void> {
    const parts = this.#segmentHead(seq)
    const name = segmentName(seq, this.#durLast + 1)
    const path = join(this.dir, name)
    const fd = await this.#fs.open(path, NEW_SEGMENT_FLAGS)
    try {
      const n = await writeAll(this.#fs, fd, parts, 0)
      await syncDir(this.#fs, this.dir)
      this.#fd = fd
      this.#segSize = n
      this.#segHeader = n
      this.#segments.push({ seq, name, minIndex: this.#durLast + 1 })
    } catch (e) {
      await this.#fs.close(fd).catch(() => {})
      throw e
    }
  }

  /** The records a new segment starts with: its header, the durable snapshot reference and hard state. */
  #segmentHead(seq: number): Buffer[] {
    const parts: Buffer[] = []
    const head = Buffer.alloc(RECORD_HEADER + SEGMENT_BODY)
    head[RECORD_HEADER] = KIND_SEGMENT
    head[RECORD_HEADER + 1] = WAL_VERSION
    put64(head, RECORD_HEADER + 4, seq)
    frame(head, 0, SEGMENT_BODY)
    parts.push(head)
    if (this.#durSnap) parts.push(encodeSnapshotRef(this.#durSnap.index, this.#durSnap.term))
    if (this.#durHard) parts.push(encodeHard(this.#durHard))
    return parts
  }

  /**
   * Writes everything the log holds again, sealed by the `seal` hook as it is now, and deletes every record
   * sealed before: after a data key rotation, nothing on disk opens with an earlier key once this resolves.
   * The snapshot file is rewritten in place; the log after it (entries and hard state) goes into one new
   * segment, written aside and renamed into place, then every earlier segment is deleted. `open` must still
   * open the old records while this runs. Saves made before the call are resealed too; saves made meanwhile
   * wait. A crash at any point leaves a log that opens with the same content. Rejects with `TOO_LARGE` when
   * the log after the snapshot is too large for one segment (take a snapshot first).
   */
  async reseal(options?: { signal?: AbortSignal }): Promise<void> {
    checkSignal(options?.signal)
    this.#checkOpen()
    if (!this.#seal) throw new TypeError('reseal needs the seal and open hooks')
    // Snapshot files still being written join the queue ahead of the reseal.
    await this.#snapChain
    if (this.#failed) throw this.#failed
    return new Promise<void>((res, rej) => {
      this.#queue.push({
        buf: null,
        snapFile: null,
        snap: null,
        firstEntry: 0,
        lastEntry: 0,
        hard: null,
        run: () => this.#resealNow(),
        resolve: res,
        reject: rej,
      })
      this.#kick()
    })
  }

  async #resealNow(): Promise<void> {
    await this.#compacting
    // Everything queued before is durable (the writer goes in order): read it back through `open`.
    const old = this.#segments.slice()
    const replayed = await replaySegments(
      this.dir,
      old.map(({ seq, name }) => ({ seq, name })),
      this.#limits,
    )
    const seq = old[old.length - 1]!.seq + 1
    const parts = this.#segmentHead(seq)
    const entries = replayed.entries
    if (entries.length > 0) parts.push(this.#encodeEntries(entries))
    const size = parts.reduce((n, b) => n + b.length, 0)
    if (size > this.#limits.maxSegmentFile) {
      const e = new RaftError(
        'TOO_LARGE',
        `the log after the snapshot (${size} bytes) is too large to reseal in one segment: take a snapshot first`,
      )
      unchanged.add(e)
      throw e
    }
    const snap = this.#durSnap
    if (snap) {
      const s = await readSnapshotFile(this.dir, snap.index, snap.term, this.#limits)
      const name = snapshotName(snap.index, snap.term)
      await writeSnapshotFile(this.#fs, this.dir, {
        name,
        ...this.#encodeSnapshotFile(snap.index, snap.term, s.meta.conf, s.data),
      })
    }
    // Aside first, then renamed: a torn new segment would replace the log's tail with a part of it.
    const name = segmentName(seq, entries[0]?.index ?? this.#durLast + 1)
    const tmp = join(this.dir, `${name}.tmp`)
    const tfd = await this.#fs.open(tmp, NEW_SEGMENT_FLAGS)
    try {
      await writeAll(this.#fs, tfd, parts, 0)
    } finally {
      await this.#fs.close(tfd).catch(() => {})
    }
    await this.#fs.rename(tmp, join(this.dir, name))
    await syncDir(this.#fs, this.dir)
    const fd = await this.#fs.open(join(this.dir, name), SEGMENT_FLAGS)
    const prev = this.#fd
    this.#fd = fd
    this.#segSize = size
    this.#segHeader = size
    this.#segments.push({ seq, name, minIndex: entries[0]?.index ?? this.#durLast + 1 })
    if (prev >= 0) await this.#fs.close(prev)
    // The new segment holds everything: what was sealed before goes, oldest first (a crash in between
    // leaves a suffix of segments that still replays to the same log).
    for (const seg of old) {
      await this.#fs.unlink(join(this.dir, seg.name))
      this.#segments.shift()
    }
    await syncDir(this.#fs, this.dir)
  }

  /** Reads back the persisted state. The first call after `open` returns what recovery read. */
  async load(options?: { signal?: AbortSignal }): Promise<PersistedState> {
    checkSignal(options?.signal)
    this.#checkOpen()
    await this.#drain()
    if (this.#stash) {
      const s = this.#stash
      this.#stash = null
      return s
    }
    const segs = this.#segments.map(({ seq, name }) => ({ seq, name }))
    const r = await replaySegments(this.dir, segs, this.#limits)
    const snapshot = r.snapshot
      ? await readSnapshotFile(this.dir, r.snapshot.index, r.snapshot.term, this.#limits)
      : null
    return { hardState: r.hardState, snapshot, entries: r.entries }
  }

  /**
   * Queues `update` and resolves once it is durable. Invalid updates (gaps, terms going back, a snapshot older
   * than the stored one, a vote changed within a term) throw synchronously-checked `RangeError`/`TypeError`
   * and change nothing.
   */
  save(update: StorageUpdate, options?: { signal?: AbortSignal }): Promise<void> {
    try {
      checkSignal(options?.signal)
      this.#checkOpen()
      if (this.#failed) throw this.#failed
      const p = this.#accept(update)
      return new Promise<void>((res, rej) => {
        p.resolve = res
        p.reject = rej
        if (p.snapFile && p.snap && !p.snap.discard && p.lastEntry === 0 && !p.hard) {
          // A snapshot of this node's own log changes no entry: write its (possibly large) file off the
          // log's path so that saves behind it are not held up, then queue the record that refers to it.
          const file = p.snapFile
          p.snapFile = null
          this.#snapChain = this.#snapChain.then(async () => {
            try {
              await writeSnapshotFile(this.#fs, this.dir, file)
            } catch (e) {
              this.#failed ??= ioError(`${this.dir}: snapshot write failed`, e)
            }
            this.#queue.push(p)
            this.#kick()
          })
        } else {
          this.#queue.push(p)
          this.#kick()
        }
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  #termAt(index: number): number | undefined {
    if (index === this.#snapIndex) return this.#snapTerm
    if (index < this.#snapIndex) return undefined
    return this.#terms[index - this.#snapIndex - 1]
  }

  /** Validates `update` against the accepted state, applies it there, and encodes its records. */
  #accept(update: StorageUpdate): Pending {
    if (typeof update !== 'object' || update === null) throw new TypeError('update must be an object')
    const { snapshot, entries, hardState } = update
    const lastIndex = this.#snapIndex + this.#terms.length

    // 1. Check everything against the state as it would be after each step, changing nothing yet.
    let snapMeta: { index: number; term: number; discard: boolean } | null = null
    let snapFile: SnapshotFile | null = null
    if (snapshot !== undefined) {
      if (typeof snapshot !== 'object' || snapshot === null || typeof snapshot.meta !== 'object') {
        throw new TypeError('update.snapshot must be a Snapshot')
      }
      const index = checkCount(snapshot.meta.index, 'update.snapshot.meta.index')
      const term = checkCount(snapshot.meta.term, 'update.snapshot.meta.term')
      const conf = validateConf(snapshot.meta.conf, 'update.snapshot.meta')
      if (!(snapshot.data instanceof Uint8Array))
        throw new TypeError('update.snapshot.data must be a Uint8Array')
      if (snapshot.data.length > this.#maxSnapshot) {
        throw new RaftError('TOO_LARGE', `snapshot data of ${snapshot.data.length} bytes is over the limit`)
      }
      if (index < this.#snapIndex || (index === this.#snapIndex && index > 0 && term !== this.#snapTerm)) {
        throw new RangeError(
          `update.snapshot ${index}/${term} is older than the stored snapshot ${this.#snapIndex}/${this.#snapTerm}`,
        )
      }
      const keep = index <= lastIndex && this.#termAt(index) === term
      snapMeta = { index, term, discard: !keep }
      snapFile = {
        name: snapshotName(index, term),
        ...this.#encodeSnapshotFile(index, term, conf, snapshot.data),
      }
    }
    const base = snapMeta ? snapMeta.index : this.#snapIndex
    const baseTerm = snapMeta ? snapMeta.term : this.#snapTerm
    const last = snapMeta?.discard ? base : lastIndex
    const termBefore = (i: number): number =>
      i === base ? baseTerm : i > base && i <= last ? this.#terms[i - this.#snapIndex - 1]! : Number.NaN

    let firstEntry = 0
    let lastEntry = 0
    if (entries !== undefined) {
      if (!Array.isArray(entries)) throw new TypeError('update.entries must be an array')
      let prevTerm = 0
      for (let k = 0; k < entries.length; k++) {
        const e = entries[k] as Entry
        if (typeof e !== 'object' || e === null) throw new TypeError(`update.entries[${k}] must be an Entry`)
        checkCount(e.index, `update.entries[${k}].index`, 1)
        checkCount(e.term, `update.entries[${k}].term`)
        if (!Number.isInteger(e.type) || e.type < 0 || e.type > 255) {
          throw new RangeError(`update.entries[${k}].type must be an integer 0-255`)
        }
        if (!(e.data instanceof Uint8Array))
          throw new TypeError(`update.entries[${k}].data must be a Uint8Array`)
        if (e.data.length > this.#maxEntry) {
          throw new RaftError('TOO_LARGE', `entry ${e.index} holds ${e.data.length} bytes, over the limit`)
        }
        if (k === 0) {
          if (e.index <= base || e.index > last + 1) {
            throw new RangeError(
              `update.entries[0].index ${e.index} must lie in ${base + 1}..${last + 1} (after the snapshot, no gap)`,
            )
          }
          prevTerm = termBefore(e.index - 1)
        } else if (e.index !== entries[k - 1]!.index + 1) {
          throw new RangeError(
            `update.entries[${k}].index ${e.index} does not follow ${entries[k - 1]!.index}`,
          )
        }
        if (e.term < prevTerm) {
          throw new RangeError(`update.entries[${k}].term ${e.term} is below the term ${prevTerm} before it`)
        }
        prevTerm = e.term
      }
      if (entries.length > 0) {
        firstEntry = entries[0]!.index
        lastEntry = entries[entries.length - 1]!.index
      }
    }
    let hard: HardState | null = null
    if (hardState !== undefined) {
      hard = checkHardState(hardState, 'update.hardState')
      if (hard.term < this.#hard.term) {
        throw new RangeError(`update.hardState.term ${hard.term} is below the stored term ${this.#hard.term}`)
      }
      if (hard.term === this.#hard.term && this.#hard.vote !== null && hard.vote !== this.#hard.vote) {
        throw new RangeError(`update.hardState.vote changes the vote already cast in term ${hard.term}`)
      }
    }

    // 2. Encode (sealing may throw; still nothing changed).
    const parts: Buffer[] = []
    if (snapMeta) parts.push(encodeSnapshotRef(snapMeta.index, snapMeta.term))
    if (entries && entries.length > 0) parts.push(this.#encodeEntries(entries))
    if (hard) parts.push(encodeHard(hard))
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts)

    // 3. Apply to the accepted state.
    if (snapMeta) {
      if (snapMeta.discard) this.#terms = []
      else this.#terms.splice(0, snapMeta.index - this.#snapIndex)
      this.#snapIndex = snapMeta.index
      this.#snapTerm = snapMeta.term
    }
    if (entries && entries.length > 0) {
      this.#terms.length = firstEntry - this.#snapIndex - 1
      for (const e of entries) this.#terms.push(e.term)
    }
    if (hard) this.#hard = hard
    this.#stash = null
    const noop = () => {}
    return { buf, snapFile, snap: snapMeta, firstEntry, lastEntry, hard, resolve: noop, reject: noop }
  }

  #encodeEntries(entries: readonly Entry[]): Buffer {
    // Each record as its readable part and its data (sealed when there is a hook); `head` null for an ENTRY
    // record, whose fixed part is written below.
    const heads: (Buffer | null)[] = []
    const datas: Uint8Array[] = []
    let size = 0
    const seal = this.#seal
    for (let i = 0; i < entries.length; ) {
      const e = entries[i]!
      let j = i + 1
      if (this.#batchSeal) {
        // The longest run from i whose record stays within the body limit however much sealing adds.
        let total = e.data.length
        while (
          j < entries.length &&
          j - i < MAX_RUN &&
          ENTRIES_BODY + (j - i + 1) * ENTRIES_ITEM + total + entries[j]!.data.length <=
            ENTRY_BODY + this.#maxEntry
        ) {
          total += entries[j]!.data.length
          j++
        }
      }
      if (j - i === 1) {
        let data = e.data
        if (seal) {
          data = seal(data, { kind: 'entry', index: e.index, term: e.term, type: e.type })
          if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
          if (data.length > this.#maxEntry + SEAL_SLACK)
            throw new RangeError('options.seal grew the data too much')
          if (data.length < this.#sealTag) throw new RangeError('options.seal returned less than its tag')
        }
        heads.push(null)
        datas.push(data)
        size += RECORD_HEADER + ENTRY_BODY + data.length
      } else {
        const { head, data } = this.#sealRun(entries, i, j)
        heads.push(head)
        datas.push(data)
        size += RECORD_HEADER + head.length + data.length
      }
      i = j
    }
    const buf = Buffer.allocUnsafe(size)
    let off = 0
    for (let k = 0, i = 0; k < heads.length; k++) {
      const head = heads[k]!
      const data = datas[k]!
      const b = off + RECORD_HEADER
      let body: number
      if (head === null) {
        const e = entries[i++]!
        buf[b] = KIND_ENTRY
        buf[b + 1] = e.type
        buf[b + 2] = seal ? FLAG_SEALED | (this.#sealTag ? FLAG_TAG_CHECKSUM : 0) : 0
        buf[b + 3] = seal ? this.#sealTag : 0
        put64(buf, b + 4, e.index)
        put64(buf, b + 12, e.term)
        body = ENTRY_BODY
      } else {
        buf.set(head, b)
        body = head.length
        i += get32(head, 12)
      }
      buf.set(data, b + body)
      frame(buf, off, body + data.length)
      off = b + body + data.length
    }
    return buf
  }

  /** Seals `entries[i, j)` as one ENTRIES record: its readable part and its sealed data. */
  #sealRun(entries: readonly Entry[], i: number, j: number): { head: Buffer; data: Uint8Array } {
    const count = j - i
    const head = Buffer.allocUnsafe(ENTRIES_BODY + count * ENTRIES_ITEM)
    head[0] = KIND_ENTRIES
    head[1] = 0
    head[2] = FLAG_SEALED | (this.#sealTag ? FLAG_TAG_CHECKSUM : 0)
    head[3] = this.#sealTag
    put64(head, 4, entries[i]!.index)
    head.writeUInt32LE(count, 12)
    let total = 0
    for (let k = i, at = ENTRIES_BODY; k < j; k++, at += ENTRIES_ITEM) {
      const e = entries[k]!
      put64(head, at, e.term)
      head[at + 8] = e.type
      head.writeUInt32LE(e.data.length, at + 9)
      total += e.data.length
    }
    const plain = Buffer.allocUnsafe(total)
    for (let k = i, at = 0; k < j; k++) {
      plain.set(entries[k]!.data, at)
      at += entries[k]!.data.length
    }
    const data = this.#seal!(plain, {
      kind: 'entries',
      index: entries[i]!.index,
      term: entries[j - 1]!.term,
      type: 0,
      count,
      header: head,
    })
    if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
    if (head.length + data.length > this.#limits.maxBody)
      throw new RangeError('options.seal grew the data too much')
    if (data.length < this.#sealTag) throw new RangeError('options.seal returned less than its tag')
    return { head, data }
  }

  /** The header and (sealed) data of a snapshot file; its checksum is computed as it is written. */
  #encodeSnapshotFile(
    index: number,
    term: number,
    conf: unknown,
    raw: Uint8Array,
  ): { head: Buffer; data: Uint8Array } {
    let data = raw
    if (this.#seal) {
      data = this.#seal(raw, { kind: 'snapshot', index, term, type: 0 })
      if (!(data instanceof Uint8Array)) throw new TypeError('options.seal must return a Uint8Array')
    }
    const confBytes = Buffer.from(JSON.stringify(conf))
    const head = Buffer.allocUnsafe(SNAP_HEADER + confBytes.length)
    head.write(SNAP_MAGIC, 0, 'latin1')
    head.writeUInt32LE(this.#seal ? FLAG_SEALED : 0, 8)
    head.writeUInt32LE(confBytes.length, 12)
    put64(head, 16, index)
    put64(head, 24, term)
    put64(head, 32, data.length)
    head.set(confBytes, SNAP_HEADER)
    return { head, data }
  }

  /** The latest durable snapshot, read back and checked, or null. */
  async snapshot(options?: { signal?: AbortSignal }): Promise<Snapshot | null> {
    checkSignal(options?.signal)
    this.#checkOpen()
    await this.#drain()
    const s = this.#durSnap
    return s ? readSnapshotFile(this.dir, s.index, s.term, this.#limits) : null
  }

  /** Deletes the segments whose entries all lie at or below `index` (at most the latest snapshot's index). */
  async compact(index: number, options?: { signal?: AbortSignal }): Promise<void> {
    checkSignal(options?.signal)
    checkCount(index, 'index')
    this.#checkOpen()
    if (index > this.#snapIndex) {
      throw new RangeError(`index ${index} is above the latest snapshot's index ${this.#snapIndex}`)
    }
    await this.#drain()
    if (index > (this.#durSnap?.index ?? 0)) {
      throw new RangeError(
        `index ${index} is above the durable snapshot's index ${this.#durSnap?.index ?? 0}`,
      )
    }
    const run = this.#compacting.then(async () => {
      let removed = 0
      try {
        while (this.#segments.length > 1 && this.#segments[1]!.minIndex - 1 <= index) {
          const seg = this.#segments.shift()!
          await this.#fs.unlink(join(this.dir, seg.name))
          removed++
        }
        if (removed > 0) await syncDir(this.#fs, this.dir)
      } catch (e) {
        throw ioError('compaction failed', e)
      }
    })
    this.#compacting = run.catch(() => {})
    await run
  }

  /** The compaction under way, which a reseal waits for (both delete segments). */
  #compacting: Promise<void> = Promise.resolve()

  /** Counters since open. */
  stats(): FileLogStorageStats {
    return { ...this.#stats, segments: this.#segments.length }
  }

  /** Waits for queued saves, then closes the files and releases the directory. Idempotent. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true
      this.#closing = (async () => {
        await this.#snapChain
        await this.#drainAll().catch(() => {})
        if (this.#fd >= 0) await this.#fs.close(this.#fd).catch(() => {})
        this.#fd = -1
        this.#stash = null
        await this.#unlock()
      })()
    }
    return this.#closing
  }

  #checkOpen(): void {
    if (this.#closed) throw new RaftError('STOPPED', `${this.dir}: storage is closed`)
  }

  /** Resolves once every save queued before the call is durable; rejects if the storage failed. */
  #drainAll(): Promise<void> {
    return new Promise<void>((res, rej) => {
      this.#queue.push({
        buf: null,
        snapFile: null,
        snap: null,
        firstEntry: 0,
        lastEntry: 0,
        hard: null,
        resolve: res,
        reject: rej,
      })
      this.#kick()
    })
  }

  async #drain(): Promise<void> {
    await this.#snapChain
    if (this.#failed) throw this.#failed
    if (this.#queue.length === 0 && !this.#flushing) return
    return this.#drainAll()
  }

  #kick(): void {
    if (this.#flushing) return
    this.#flushing = true
    // A microtask later, so that every save issued in the same turn lands in one batch.
    queueMicrotask(() => void this.#flushLoop())
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue
      this.#queue = []
      if (this.#failed) {
        for (const p of batch) p.reject(this.#failed)
        continue
      }
      try {
        await this.#writeBatch(batch)
      } catch (e) {
        this.#failed = e instanceof RaftError ? e : ioError(`${this.dir}: write-ahead log write failed`, e)
        for (const p of batch) p.reject(this.#failed)
        continue
      }
      for (const p of batch) p.resolve()
      await this.#dropOldSnapshots()
    }
    this.#flushing = false
  }

  async #writeBatch(batch: Pending[]): Promise<void> {
    // Snapshot files first: the log records that refer to them must not become durable before them.
    for (const p of batch) if (p.snapFile) await writeSnapshotFile(this.#fs, this.dir, p.snapFile)
    let chunk: Buffer[] = []
    let chunkBytes = 0
    let saves = 0
    // Segments are open with O_DSYNC: the write returns once its data is durable (one call instead of a write
    // and an fdatasync, so one trip through libuv's thread pool per batch).
    const flushChunk = async () => {
      if (chunkBytes === 0) return
      const started = performance.now()
      await writeAll(this.#fs, this.#fd, chunk, this.#segSize)
      this.#onSync?.(performance.now() - started, chunkBytes)
      this.#stats.syncs++
      this.#segSize += chunkBytes
      this.#stats.bytes += chunkBytes
      chunk = []
      chunkBytes = 0
    }
    const roll = async () => {
      await flushChunk()
      const fd = this.#fd
      await this.#startSegment(this.#segments[this.#segments.length - 1]!.seq + 1)
      await this.#fs.close(fd)
    }
    const full = (n: number) =>
      this.#segSize + chunkBytes > this.#segHeader && this.#segSize + chunkBytes + n > this.#segmentBytes
    for (const p of batch) {
      if (p.run) {
        await flushChunk()
        try {
          await p.run()
        } catch (e) {
          // Refused before it changed anything: only this call fails, the log goes on.
          if (!unchanged.has(e as object)) throw e
          p.reject(e)
        }
        continue
      }
      const buf = p.buf
      if (!buf) continue
      saves++
      if (this.#segSize + chunkBytes + buf.length <= this.#segmentBytes) {
        chunk.push(buf)
        chunkBytes += buf.length
        this.#track(p, null)
        continue
      }
      // Split this save at record boundaries across segments.
      for (let off = 0; off < buf.length; ) {
        const end = off + RECORD_HEADER + buf.readUInt32LE(off)
        if (full(end - off)) await roll()
        chunk.push(buf.subarray(off, end))
        chunkBytes += end - off
        this.#track(p, buf.subarray(off + RECORD_HEADER, end))
        off = end
      }
    }
    await flushChunk()
    this.#stats.saves += saves
    if (this.#segSize >= this.#segmentBytes) await roll()
  }

  /** Advances the durable state by a whole save (`body` null) or by one of its records. */
  #track(p: Pending, body: Buffer | null): void {
    const seg = this.#segments[this.#segments.length - 1]!
    const kind = body ? body[0] : -1
    // Every snapshot file whose record is written is tracked, so that it is deleted once superseded.
    if (p.snap && (kind === -1 || kind === KIND_SNAPSHOT))
      this.#snapFiles.add(snapshotName(p.snap.index, p.snap.term))
    if (p.snap && (kind === -1 || kind === KIND_SNAPSHOT) && p.snap.index >= (this.#durSnap?.index ?? 0)) {
      this.#durSnap = { index: p.snap.index, term: p.snap.term }
      if (p.snap.discard) this.#durLast = p.snap.index
    }
    if (p.lastEntry > 0 && (kind === -1 || kind === KIND_ENTRY || kind === KIND_ENTRIES)) {
      const first = body ? get64(body, 4) : p.firstEntry
      if (first < seg.minIndex) seg.minIndex = first
      this.#durLast = !body ? p.lastEntry : kind === KIND_ENTRIES ? first + get32(body, 12) - 1 : first
    }
    if (p.hard && (kind === -1 || kind === KIND_HARD)) this.#durHard = p.hard
  }

  /** Superseded snapshot files kept beside the latest (`FileLogStorageOptions.keepOldSnapshots`). */
  keepOldSnapshots = 0

  async #dropOldSnapshots(): Promise<void> {
    const keep = this.#durSnap ? snapshotName(this.#durSnap.index, this.#durSnap.term) : null
    if (keep) this.#snapFiles.add(keep)
    const durIndex = this.#durSnap?.index ?? 0
    const old = [...this.#snapFiles]
      .filter((n) => n !== keep && (parseSnapshotName(n)?.index ?? 0) < durIndex)
      .sort((a, b) => (parseSnapshotName(b)?.index ?? 0) - (parseSnapshotName(a)?.index ?? 0))
    const kept = new Set(old.slice(0, this.keepOldSnapshots))
    for (const name of this.#snapFiles) {
      if (name === keep || kept.has(name)) continue
      this.#snapFiles.delete(name)
      await removeFile(this.#fs, join(this.dir, name)).catch(() => {})
    }
  }
}

function encodeHard(h: HardState): Buffer {
  const vote = h.vote === null ? Buffer.alloc(0) : Buffer.from(h.vote)
  const buf = Buffer.alloc(RECORD_HEADER + HARD_BODY + vote.length)
  const b = RECORD_HEADER
  buf[b] = KIND_HARD
  buf.writeUInt16LE(vote.length, b + 2)
  put64(buf, b + 4, h.term)
  put64(buf, b + 12, h.commit)
  buf.set(vote, b + HARD_BODY)
  frame(buf, 0, HARD_BODY + vote.length)
  return buf
}

function encodeSnapshotRef(index: number, term: number): Buffer {
  const buf = Buffer.alloc(RECORD_HEADER + SNAPSHOT_BODY)
  buf[RECORD_HEADER] = KIND_SNAPSHOT
  put64(buf, RECORD_HEADER + 4, index)
  put64(buf, RECORD_HEADER + 12, term)
  frame(buf, 0, SNAPSHOT_BODY)
  return buf
}
