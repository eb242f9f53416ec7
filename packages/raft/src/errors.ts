/** What went wrong, for code that handles a {@link RaftError}. */
export type RaftErrorCode =
  /** No leader was known within a bounded wait. */
  | 'NO_LEADER'
  /** The node or storage was stopped or closed. */
  | 'STOPPED'
  /** The proposal is known not to have committed. */
  | 'PROPOSAL_DROPPED'
  /** The leader lost its role before the outcome was known: the proposal may or may not commit. */
  | 'LOST_LEADERSHIP'
  /** A proposal, entry or message is larger than the configured maximum. */
  | 'TOO_LARGE'
  /** Stored data failed a check (checksum, framing, continuity); the message names the file and offset. */
  | 'CORRUPT'
  /** The storage directory belongs to another node or cluster, or was written with other seal hooks. */
  | 'STORAGE_MISMATCH'
  /** The storage directory is already open (in this process or in another live one). */
  | 'LOCKED'
  /** A read, write or sync failed; storage that failed to sync refuses every later write. */
  | 'IO'

/** The one error class of `@swarmkit/raft`. Check `name` and `code`, not `instanceof`, across realms. */
export class RaftError extends Error {
  override readonly name = 'RaftError'
  readonly code: RaftErrorCode

  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** True when `error` is a {@link RaftError} (optionally with the given `code`). */
export function isRaftError(error: unknown, code?: RaftErrorCode): error is RaftError {
  return (
    error instanceof Error &&
    error.name === 'RaftError' &&
    (code === undefined || (error as { code?: unknown }).code === code)
  )
}
