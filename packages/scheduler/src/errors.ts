/** What went wrong, for programs to branch on. */
export type SchedulerErrorCode =
  /** A placement constraint expression is malformed (`node.labels.zone=east`, an unknown key, a bad value). */
  | 'INVALID_CONSTRAINT'
  /** A placement preference is malformed (only `spread` over `node.labels.*` / `engine.labels.*`). */
  | 'INVALID_PREFERENCE'
  /** A service or task spec cannot be scheduled as given (negative replicas, bad max replicas, …). */
  | 'INVALID_SPEC'
  /** The service (or task, node) named does not exist. */
  | 'NOT_FOUND'
  /** A manual rollback was asked for a service that has no previous spec. */
  | 'NO_PREVIOUS_SPEC'
  /** The scheduler or orchestrator was stopped. */
  | 'STOPPED'
  /**
   * The scheduler or orchestrator follows the store in standby and does not act until `activate()` (or,
   * from `deactivate()`, is in standby already).
   */
  | 'STANDBY'
  /** `activate()` on a scheduler or orchestrator that already acts (not in standby: never in it, or activated). */
  | 'NOT_STANDBY'

/** The scheduler's one error class; check `name === 'SchedulerError'` and `code`. `cause` keeps the underlying error. */
export class SchedulerError extends Error {
  override readonly name = 'SchedulerError'
  readonly code: SchedulerErrorCode

  constructor(code: SchedulerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}

/** Whether `err` is a `SchedulerError`, optionally with the given code. */
export function isSchedulerError(err: unknown, code?: SchedulerErrorCode): err is SchedulerError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'SchedulerError' &&
    (code === undefined || (err as { code?: unknown }).code === code)
  )
}
