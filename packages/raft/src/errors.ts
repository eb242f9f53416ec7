/** What went wrong, as a discriminating code. */
export type RaftErrorCode =
  /** No leader was known within the bounded wait (an election did not finish, or this node is cut off). */
  | 'NO_LEADER'
  /** The node was stopped (or is stopping) before the operation finished. */
  | 'STOPPED'
  /** The proposal is known not to have committed (refused by the leader, or its log slot was overwritten). */
  | 'PROPOSAL_DROPPED'
  /** Leadership changed while the proposal was in flight: it may or may not commit later. */
  | 'LOST_LEADERSHIP'
  /** The command is larger than `maxProposalBytes`. */
  | 'TOO_LARGE'
  /** `transferLeadership` was called on a node that is not the leader. */
  | 'NOT_LEADER'
  /** The leadership transfer did not complete within an election timeout. */
  | 'TRANSFER_FAILED'
  /** A membership change was refused: the voters left reachable would not be a majority. */
  | 'UNSAFE_CHANGE'
  /** Stored data failed a check (checksum, framing, continuity); the message names the file and offset. */
  | 'CORRUPT'
  /** The storage directory belongs to another node or cluster, or was written with other seal hooks. */
  | 'STORAGE_MISMATCH'
  /** The storage directory is already open (in this process or in another live one). */
  | 'LOCKED'
  /** A read, write or sync failed; storage that failed to sync refuses every later write. */
  | 'IO'
  /**
   * The disk is full (ENOSPC) or over quota (EDQUOT). From `FileLogStorage.save`: nothing of the save was kept,
   * the storage stays usable and the same save may be retried once space returns. From `RaftNode.propose`: the
   * node's log cannot grow for now; a proposal in flight when it happened may or may not commit (as with
   * LOST_LEADERSHIP), one refused afterwards was never proposed (`neverProposed` tells them apart). Retry later.
   */
  | 'NO_SPACE'

/** The one error class of `@swarmkit/raft`. Guard with `err instanceof RaftError` or `err.name === 'RaftError'`. */
export class RaftError extends Error {
  override readonly name = 'RaftError'
  readonly code: RaftErrorCode
  /**
   * True when a proposal was refused before it reached any log (e.g. NO_SPACE at `propose`): it cannot commit,
   * so the caller need not settle its outcome. False when the code alone says what happened, or it is open.
   */
  readonly neverProposed: boolean
  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown; neverProposed?: boolean }) {
    super(message, options)
    this.code = code
    this.neverProposed = options?.neverProposed === true
  }
}

/** True when `err` is a {@link RaftError}, and has `code` if one is given (checks `name`, so it works across copies of the package). */
export function isRaftError(err: unknown, code?: RaftErrorCode): err is RaftError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'RaftError' &&
    (code === undefined || (err as { code?: unknown }).code === code)
  )
}
