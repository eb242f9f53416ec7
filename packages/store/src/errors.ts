/** What went wrong, for programs to branch on. */
export type StoreErrorCode =
  /** No object with that id (or name) in that table. */
  | 'NOT_FOUND'
  /** An object with that id already exists. */
  | 'EXISTS'
  /** Another object in the table already has that name. */
  | 'NAME_CONFLICT'
  /** The object's `meta.version` is not the stored one: "update out of sequence". */
  | 'SEQUENCE'
  /** A network, secret or config is still referenced by a service or task. */
  | 'IN_USE'
  /** A network address, published ingress port, subnet or VXLAN ID another object already holds. */
  | 'ALLOCATION_CONFLICT'
  /** The object is malformed (missing id, bad name, secret too large, …). */
  | 'INVALID_ARGUMENT'
  /** The encrypted state needs the unlock key: "Swarm is encrypted and needs to be unlocked …". */
  | 'LOCKED'
  /** The key given does not open the key material ("swarm could not be unlocked: invalid key provided"). */
  | 'BAD_KEY'
  /** Unlock was asked of key material that is not locked ("swarm is not locked"). */
  | 'NOT_LOCKED'
  /** A record or key file failed authentication or decoding (tampered or damaged). */
  | 'CORRUPT'
  /** Data in a format this version does not read (e.g. a store snapshot of a newer format). */
  | 'UNSUPPORTED'
  /** A watcher fell too far behind and was dropped, or asked to resume from a version no longer held. */
  | 'WATCH_DROPPED'
  /** A watch cannot resume from the requested version (compacted away). */
  | 'VERSION_COMPACTED'
  /** The transaction was not committed through raft, and never will be: nothing changed anywhere. */
  | 'PROPOSAL_FAILED'
  /** The proposal failed ambiguously and could not be settled (no quorum): it may still commit later. */
  | 'OUTCOME_UNKNOWN'
  /** The store (or storage) was closed. */
  | 'CLOSED'
  /** The operation was aborted through its signal. */
  | 'ABORTED'

/** The store's one error class; check `name === 'StoreError'` and `code`. `cause` keeps the underlying error. */
export class StoreError extends Error {
  override readonly name = 'StoreError'
  readonly code: StoreErrorCode
  /** The raft index of the record concerned, for `CORRUPT` log records. */
  readonly index?: number
  /** More about what happened, kept out of `message` where swarm's message is fixed (e.g. the versions for `SEQUENCE`). */
  readonly detail?: string

  constructor(
    code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown; index?: number; detail?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options?.index !== undefined) this.index = options.index
    if (options?.detail !== undefined) this.detail = options.detail
  }
}

/** Whether `err` is a `StoreError`, optionally with the given code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'StoreError' &&
    (code === undefined || (err as { code?: unknown }).code === code)
  )
}

/** Swarm's message for a locked manager. */
export const LOCKED_MESSAGE = 'Swarm is encrypted and needs to be unlocked before it can be used'
/** Swarm's message for a stale version. */
export const SEQUENCE_MESSAGE = 'update out of sequence'
