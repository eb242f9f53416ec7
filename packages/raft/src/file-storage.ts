import type { Buffer } from 'node:buffer'
import { join, resolve } from 'node:path'
import { RaftError } from './errors.js'
import type { FileLogStorageOptions, FileLogStorageStats } from './file-storage-options.js'
import {
  type FileSystem,
  nodeFileSystem,
  removeFile,
  syncDir,
  writeAll,
  writeAllSync,
} from './file-system.js'
import { AcceptedLog, LogShape, type Pending } from './internal/wal/accepted-log.js'
import { checkCount, checkOpenArguments, checkSignal, ioError } from './internal/wal/checks.js'
import { type CutPoint, cutBack } from './internal/wal/cut-back.js'
import { DirLock } from './internal/wal/dir-lock.js'
import {
  ENTRY_BODY,
  get32,
  get64,
  KIND_ENTRIES,
  KIND_ENTRY,
  KIND_HARD,
  KIND_SNAPSHOT,
  parseSegmentName,
  parseSnapshotName,
  RECORD_HEADER,
  segmentName,
  snapshotName,
} from './internal/wal/format.js'
import { checkMeta, META } from './internal/wal/meta.js'
import { isNoSpace, noSpaceError, tagSyncFailures } from './internal/wal/no-space.js'
import { EntryEncoder, SEAL_SLACK, segmentHead } from './internal/wal/records.js'
import {
  type AsyncSealHook,
  cutFile,
  type Limits,
  type Replayed,
  readSnapshotFile,
  replaySegments,
  type SealContext,
  type SealHook,
  type SegmentState,
} from './internal/wal/replay.js'
import { createSegment, openSegment, writeSegmentAside } from './internal/wal/segment-files.js'
import { encodeSnapshotFile, newestOlderSnapshots, writeSnapshotFile } from './internal/wal/snapshot-file.js'
import { ZeroTail } from './internal/wal/zero-tail.js'
import type {
  HardState,
  LogStorage,
  PersistedState,
  SaveOptions,
  Snapshot,
  StorageUpdate,
} from './storage.js'

export type { FileLogStorageOptions, FileLogStorageStats } from './file-storage-options.js'
export type { AsyncSealHook, SealContext, SealHook }

const MiB = 1 << 20
const DEFAULT_SEGMENT_BYTES = 64 * MiB
const DEFAULT_MAX_ENTRY = 64 * MiB
const DEFAULT_MAX_SNAPSHOT = 1024 * MiB
/** A write on the caller's thread blocks its timers: a disk slower than this is written in the background. */
const DEFAULT_MAX_INLINE_WRITE_MS = 10
/** Zeros written ahead of the records (see zero-tail.ts): a refill every MiB of log. */
const DEFAULT_PREALLOCATE_BYTES = MiB

/** Whether every save of `batch` asked to be written inline (and it holds one): see `SaveOptions.inline`. */
function isInline(batch: readonly Pending[]): boolean {
  let saves = 0
  for (const p of batch) {
    if (p.run !== undefined || (p.buf !== null && p.inline !== true)) return false
    if (p.buf !== null) saves++
  }
  return saves > 0
}

/** Errors of writer work (`Pending.run`) raised before it changed anything on disk. */
const unchanged = new WeakSet<object>()

/** Where the log stood before a batch (see `cutBack`), with what the writer knew to be durable then. */
interface BatchMark extends CutPoint {
  readonly minIndex: number
  readonly segHeader: number
  readonly durHard: HardState | null
  readonly durSnap: { index: number; term: number } | null
  readonly durLast: number
  readonly snapFiles: ReadonlySet<string>
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
 * - A write that finds the disk full (ENOSPC, EDQUOT) is undone: the log is cut back (and synced) to where it
 *   stood before that batch, its saves and every save queued behind them reject with `NO_SPACE`, and the
 *   storage takes the next save as if they had never been made. A failed sync is `IO` and final: after it the
 *   page cache cannot be trusted (fsyncgate), so every later save is refused.
 */
export class FileLogStorage implements LogStorage {
  /** The storage directory. */
  readonly dir: string
  readonly #limits: Limits
  readonly #seal: SealHook | undefined
  readonly #encoder: EntryEncoder
  readonly #segmentBytes: number
  readonly #lock: DirLock
  readonly #fs: FileSystem

  /** What save() has accepted (validated against, updated synchronously in call order). */
  readonly #accepted: AcceptedLog
  /** The shape of what is durable (batches applied as they complete): what `#accepted` goes back to. */
  readonly #durable = new LogShape()

  // What is durable, as the writer goes (for the header of the next segment).
  #durHard: HardState | null = null
  #durSnap: { index: number; term: number } | null = null
  #durLast = 0

  #segments: SegmentState[] = []
  #fd = -1
  #segSize = 0
  #segHeader = 0
  /** Zeros written ahead of the records of the segment appended to. */
  readonly #zeros: ZeroTail
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
  readonly #maxInlineWriteMs: number
  /** How long the last write of log records took (ms): past `maxInlineWriteMs`, no batch is written inline. */
  #lastWriteMs = 0

  private constructor(dir: string, options: FileLogStorageOptions, lock: DirLock) {
    this.dir = dir
    this.#lock = lock
    this.#fs = tagSyncFailures(options.fileSystem ?? nodeFileSystem)
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    const maxEntry = options.maxEntryBytes ?? DEFAULT_MAX_ENTRY
    const maxSnapshot = options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT
    this.#seal = options.seal
    this.keepOldSnapshots = options.keepOldSnapshots ?? 0
    this.#onSync = options.onSync
    this.#maxInlineWriteMs = options.maxInlineWriteMs ?? DEFAULT_MAX_INLINE_WRITE_MS
    this.#zeros = new ZeroTail(this.#fs, options.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES)
    const maxBody = ENTRY_BODY + maxEntry + SEAL_SLACK
    this.#limits = {
      maxBody,
      maxSegmentFile:
        Math.max(this.#segmentBytes, DEFAULT_SEGMENT_BYTES) + maxBody + RECORD_HEADER + 64 * 1024,
      maxSnapshotBytes: maxSnapshot,
      open: options.open,
      openAsync: options.open ? options.openAsync : undefined,
      fs: this.#fs,
    }
    this.#encoder = new EntryEncoder({
      seal: options.seal,
      batchSeal: options.batchSeal === true && options.seal !== undefined,
      sealTag: options.seal !== undefined ? (options.sealTagBytes ?? 0) : 0,
      maxEntry,
      maxBody,
    })
    this.#accepted = new AcceptedLog({
      seal: options.seal,
      sealAsync: options.seal ? options.sealAsync : undefined,
      encoder: this.#encoder,
      maxEntry,
      maxSnapshot,
    })
  }

  /**
   * Opens (creating if needed) the log in `dir` and recovers it. Rejects with `CORRUPT`, `STORAGE_MISMATCH`,
   * `LOCKED` or `IO`.
   */
  static async open(dir: string, options: FileLogStorageOptions = {}): Promise<FileLogStorage> {
    checkOpenArguments(dir, options)
    const abs = resolve(dir)
    const files = options.fileSystem ?? nodeFileSystem
    const lock = DirLock.claim(files, abs)
    const storage = new FileLogStorage(abs, options, lock)
    try {
      await files.mkdir(abs)
      await lock.acquire()
      await storage.#recover(options)
      return storage
    } catch (e) {
      if (storage.#fd >= 0) await files.close(storage.#fd).catch(() => {})
      await lock.release()
      throw e
    }
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
    await checkMeta(this.#fs, this.dir, options, names.includes(META), segs.length > 0)

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
    const older = newestOlderSnapshots(names, replayed.snapshot?.index ?? 0, this.keepOldSnapshots)
    for (const n of older) this.#snapFiles.add(n)
    for (const n of names) {
      if (parseSnapshotName(n) !== null && n !== keep && !this.#snapFiles.has(n))
        await removeFile(this.#fs, join(this.dir, n))
    }
    if (keep) this.#snapFiles.add(keep)

    const accepted = this.#accepted
    accepted.hard = replayed.hardState
    this.#durHard = replayed.hardState
    accepted.snapIndex = replayed.snapshot?.index ?? 0
    accepted.snapTerm = replayed.snapshot?.term ?? 0
    this.#durSnap = replayed.snapshot
    accepted.terms = replayed.entries.map((e) => e.term)
    this.#durLast = accepted.snapIndex + accepted.terms.length
    this.#durable.copyFrom(accepted)

    const last = this.#segments[this.#segments.length - 1]
    if (last) {
      const path = join(this.dir, last.name)
      if (replayed.tailEnd < replayed.tailSize) await cutFile(this.#fs, path, replayed.tailEnd)
      this.#fd = await openSegment(this.#fs, path)
      this.#segSize = replayed.tailEnd
      this.#segHeader = 0
      this.#zeros.reset(this.#fd, this.#segSize)
      this.#zeros.extend(this.#segSize, this.#segmentBytes)
    } else {
      await this.#startSegment(1)
    }
    this.#stash = { hardState: replayed.hardState, snapshot, entries: replayed.entries }
  }

  /** Creates segment `seq` with its header records, synced, and makes it the one appended to. */
  async #startSegment(seq: number): Promise<void> {
    const parts = this.#segmentHead(seq)
    const name = segmentName(seq, this.#durLast + 1)
    const { fd, size } = await createSegment(this.#fs, this.dir, name, parts)
    this.#fd = fd
    this.#segSize = size
    this.#segHeader = size
    this.#segments.push({ seq, name, minIndex: this.#durLast + 1 })
    this.#zeros.reset(fd, size)
    this.#zeros.extend(size, this.#segmentBytes)
  }

  /**
   * Cuts the zeros written ahead off the segment appended to, durably: done before another segment follows it,
   * since every segment but the last must hold records to its end.
   */
  async #cutZeros(): Promise<void> {
    await this.#zeros.settle()
    if (!this.#zeros.beyond(this.#segSize)) return
    const seg = this.#segments[this.#segments.length - 1]!
    await cutFile(this.#fs, join(this.dir, seg.name), this.#segSize)
    this.#zeros.reset(this.#fd, this.#segSize)
  }

  /** The records a new segment starts with: its header, the durable snapshot reference and hard state. */
  #segmentHead(seq: number): Buffer[] {
    return segmentHead(seq, this.#durSnap, this.#durHard)
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
    await this.#cutZeros()
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
    if (entries.length > 0) parts.push(this.#encoder.encode(entries))
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
    const name = segmentName(seq, entries[0]?.index ?? this.#durLast + 1)
    let fd: number
    try {
      if (snap) {
        const s = await readSnapshotFile(this.dir, snap.index, snap.term, this.#limits)
        await writeSnapshotFile(this.#fs, this.dir, {
          name: snapshotName(snap.index, snap.term),
          ...encodeSnapshotFile(this.#seal, snap.index, snap.term, s.meta.conf, s.data),
        })
      }
      fd = await writeSegmentAside(this.#fs, this.dir, name, parts)
    } catch (e) {
      // Written aside and renamed into place: a full disk leaves the log as it was (the snapshot file, if
      // resealed already, holds the same data).
      if (!isNoSpace(e)) throw e
      const err = noSpaceError(this.dir, e)
      unchanged.add(err)
      throw err
    }
    const prev = this.#fd
    this.#fd = fd
    this.#segSize = size
    this.#segHeader = size
    this.#segments.push({ seq, name, minIndex: entries[0]?.index ?? this.#durLast + 1 })
    this.#zeros.reset(fd, size)
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
   * and change nothing. With `inline`, a batch made only of such saves is written on the calling thread
   * (`FileSystem.writevSync`) in the microtask after the call, without a trip through libuv's thread pool,
   * unless the last write took longer than `maxInlineWriteMs`.
   */
  save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    try {
      checkSignal(options?.signal)
      this.#checkOpen()
      if (this.#failed) throw this.#failed
      const p = this.#accepted.accept(update)
      if (options?.inline === true) p.inline = true
      this.#stash = null
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
              // A full disk fails this save where it lies in the queue (and those behind it); the log goes on.
              if (isNoSpace(e)) p.failure = noSpaceError(this.dir, e)
              else this.#failed ??= ioError(`${this.dir}: snapshot write failed`, e)
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
    if (index > this.#accepted.snapIndex) {
      throw new RangeError(`index ${index} is above the latest snapshot's index ${this.#accepted.snapIndex}`)
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
        while (
          this.#segments.length > 1 &&
          this.#segments[1]!.minIndex - 1 <= index &&
          this.#segments[0]!.seq < this.#batchFrom
        ) {
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

  /**
   * The segment the batch being written began in (or +Infinity): compaction leaves it alone, since a batch that
   * finds the disk full is cut back into it.
   */
  #batchFrom = Number.POSITIVE_INFINITY

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
        await this.#zeros.settle().catch(() => {})
        if (this.#fd >= 0) await this.#fs.close(this.#fd).catch(() => {})
        this.#fd = -1
        this.#stash = null
        await this.#lock.release()
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
      // Work between two saves (a reseal) goes in a batch of its own: undoing a batch never reaches across it.
      const cut = this.#queue.findIndex((p) => p.run !== undefined)
      const batch = this.#queue.splice(0, cut === -1 ? this.#queue.length : Math.max(cut, 1))
      if (this.#failed) {
        for (const p of batch) p.reject(this.#failed)
        continue
      }
      const mark = this.#mark()
      this.#batchFrom = mark.seq
      try {
        await this.#writeBatch(batch)
      } catch (e) {
        if (isNoSpace(e) && !this.#failed) {
          await this.#refuse(batch, mark, noSpaceError(this.dir, e))
          this.#batchFrom = Number.POSITIVE_INFINITY
          continue
        }
        this.#failed = e instanceof RaftError ? e : ioError(`${this.dir}: write-ahead log write failed`, e)
        for (const p of batch) p.reject(this.#failed)
        continue
      }
      this.#batchFrom = Number.POSITIVE_INFINITY
      for (const p of batch) if (p.run === undefined && p.buf !== null) this.#durable.applyWritten(p)
      for (const p of batch) p.resolve()
      await this.#dropOldSnapshots()
    }
    this.#flushing = false
  }

  #mark(): BatchMark {
    const seg = this.#segments[this.#segments.length - 1]!
    return {
      seq: seg.seq,
      minIndex: seg.minIndex,
      segSize: this.#segSize,
      segHeader: this.#segHeader,
      durHard: this.#durHard,
      durSnap: this.#durSnap,
      durLast: this.#durLast,
      snapFiles: new Set(this.#snapFiles),
    }
  }

  /**
   * A batch found the disk full: cut the log back to `mark` (synced, so that none of it can come back), then
   * reject the batch's saves and every save accepted after them (own snapshots still being written included:
   * they were all checked against these), and accept from the durable log again. Barriers and reseals stay
   * queued. If the log cannot be cut back, the storage fails for good.
   */
  async #refuse(batch: Pending[], mark: BatchMark, err: RaftError): Promise<void> {
    const isSave = (p: Pending) => p.run === undefined && p.buf !== null
    const handled = new Set<Pending>()
    try {
      await this.#undoWrites(mark)
      for (;;) {
        const chain = this.#snapChain
        await chain
        // Snapshot files written for these saves are referenced by no durable record: they go before a retry
        // could write the same name again.
        for (const p of [...batch, ...this.#queue]) {
          if (handled.has(p)) continue
          handled.add(p)
          if (isSave(p)) await this.#dropUnreferenced(p)
        }
        if (chain === this.#snapChain && this.#queue.every((p) => handled.has(p))) break
      }
    } catch (u) {
      this.#failed = ioError(`${this.dir}: cutting back a write that found the disk full failed`, u)
      for (const p of batch) p.reject(this.#failed)
      return
    }
    const refused = [...batch, ...this.#queue]
    this.#queue = []
    this.#accepted.copyFrom(this.#durable)
    for (const p of refused) {
      if (isSave(p)) p.reject(p.failure ?? err)
      else this.#queue.push(p)
    }
  }

  /** Cuts the log back to `m` on disk (see `cutBack`) and in what the writer knows. */
  async #undoWrites(m: BatchMark): Promise<void> {
    await this.#zeros.settle()
    const { fd, segment } = await cutBack(this.#fs, this.dir, this.#segments, this.#fd, m)
    this.#fd = fd
    this.#zeros.reset(fd, m.segSize)
    segment.minIndex = m.minIndex
    this.#segSize = m.segSize
    this.#segHeader = m.segHeader
    this.#durHard = m.durHard
    this.#durSnap = m.durSnap
    this.#durLast = m.durLast
    this.#snapFiles = new Set(m.snapFiles)
  }

  /** Deletes the snapshot file of refused save `p` unless the durable log refers to (or keeps) that file. */
  async #dropUnreferenced(p: Pending): Promise<void> {
    if (!p.snap) return
    const name = snapshotName(p.snap.index, p.snap.term)
    const durable = this.#durSnap ? snapshotName(this.#durSnap.index, this.#durSnap.term) : null
    if (name === durable || this.#snapFiles.has(name)) return
    await removeFile(this.#fs, join(this.dir, name))
  }

  async #writeBatch(batch: Pending[]): Promise<void> {
    // Snapshot files first: the log records that refer to them must not become durable before them.
    for (const p of batch) if (p.snapFile) await writeSnapshotFile(this.#fs, this.dir, p.snapFile)
    let chunk: Buffer[] = []
    let chunkBytes = 0
    let saves = 0
    const inline =
      this.#fs.writevSync !== undefined && this.#lastWriteMs <= this.#maxInlineWriteMs && isInline(batch)
    // Segments are open with O_DSYNC: the write returns once its data is durable (one call instead of a write
    // and an fdatasync, so one trip through libuv's thread pool per batch, or none for an inline batch).
    const flushChunk = async () => {
      if (chunkBytes === 0) return
      if (this.#zeros.mustSettle(this.#segSize + chunkBytes)) await this.#zeros.settle()
      const started = performance.now()
      if (inline) writeAllSync(this.#fs, this.#fd, chunk, this.#segSize)
      else await writeAll(this.#fs, this.#fd, chunk, this.#segSize)
      const ms = performance.now() - started
      this.#lastWriteMs = ms
      this.#onSync?.(ms, chunkBytes)
      this.#stats.syncs++
      this.#segSize += chunkBytes
      this.#stats.bytes += chunkBytes
      chunk = []
      chunkBytes = 0
      this.#zeros.wrote(this.#segSize)
      this.#zeros.extend(this.#segSize, this.#segmentBytes)
    }
    const roll = async () => {
      await flushChunk()
      await this.#cutZeros()
      const fd = this.#fd
      await this.#startSegment(this.#segments[this.#segments.length - 1]!.seq + 1)
      await this.#fs.close(fd)
    }
    const full = (n: number) =>
      this.#segSize + chunkBytes > this.#segHeader && this.#segSize + chunkBytes + n > this.#segmentBytes
    for (const p of batch) {
      if (p.failure) throw p.failure
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
    const kept = new Set(
      newestOlderSnapshots(this.#snapFiles, this.#durSnap?.index ?? 0, this.keepOldSnapshots),
    )
    for (const name of this.#snapFiles) {
      if (name === keep || kept.has(name)) continue
      this.#snapFiles.delete(name)
      await removeFile(this.#fs, join(this.dir, name)).catch(() => {})
    }
  }
}
