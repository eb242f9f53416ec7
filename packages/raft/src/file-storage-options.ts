// The public shapes of FileLogStorage: its options and counters.
import type { FileSystem } from './file-system.js'
import type { AsyncSealHook, SealHook } from './internal/wal/replay.js'

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
   * With `seal`: seals snapshot data instead of `seal`, producing exactly what `seal` would, but may work in
   * slices between which the event loop runs (a snapshot of a large state machine is tens of MB, and sealing it
   * in one call held the loop past a raft election timeout). Snapshot files are then sealed as they are
   * written, after `save` was accepted: a sealer that rejects fails the save like a write error.
   */
  readonly sealAsync?: AsyncSealHook
  /** With `open`: opens snapshot data instead of `open` (see `sealAsync`). */
  readonly openAsync?: AsyncSealHook
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
  /**
   * Saves asked to be written inline (`SaveOptions.inline`) go to the background instead while the log's last
   * write took longer than this many ms: a write on the caller's thread blocks its timers and its answers to
   * heartbeats for as long as it takes, so a slow disk gets written in the background. Default 10.
   */
  readonly maxInlineWriteMs?: number
  /**
   * Bytes of zeros written (in the background) ahead of the records of the segment being written, so that a
   * save writes into space the file already holds: an O_DSYNC write that appends also commits the file's new
   * size through the file system's journal. Refilled once half of it is used; cut off before the next segment
   * starts, and cut at open like a torn tail. 0 turns it off. Default 1 MiB.
   */
  readonly preallocateBytes?: number
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
