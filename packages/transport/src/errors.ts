/** What went wrong, for {@link TransportError}. */
export type TransportErrorCode =
  /** The connection, session, listener or transport is closed (pending calls fail with this). */
  | 'CLOSED'
  /** A call or dial did not complete in time. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A dial failed: nothing listens there, the host is unreachable, or the network is partitioned. */
  | 'DIAL_FAILED'
  /** Another listener already holds this address. */
  | 'ADDRESS_IN_USE'
  /** Listening failed for another reason (bad host, permissions). */
  | 'LISTEN_FAILED'
  /** A frame is larger than the connection's maximum frame size. */
  | 'FRAME_TOO_LARGE'
  /** A frame could not be decoded or does not follow the protocol. */
  | 'BAD_FRAME'
  /** The connection's outgoing buffer went over its limit (the peer reads too slowly). */
  | 'BUFFER_OVERFLOW'
  /** The TLS handshake failed or the peer presented no acceptable certificate. */
  | 'HANDSHAKE_FAILED'
  /** The peer's identity was refused by an `authorize` hook. */
  | 'UNAUTHORIZED'
  /** The peer may not call this method (its role is not among the method's roles). */
  | 'FORBIDDEN'
  /** The peer has no handler for the method. */
  | 'UNKNOWN_METHOD'
  /** The remote handler threw; `remote` carries its name, code and message. */
  | 'REMOTE_ERROR'
  /** There is no connection to send on (one-way messages are dropped, calls fail). */
  | 'NOT_CONNECTED'
  /** The peer has too many calls or streams of this session in progress. */
  | 'OVERLOADED'

/** What a remote handler's error looked like, as carried by a `REMOTE_ERROR`. */
export interface RemoteErrorInfo {
  readonly name: string
  readonly message: string
  readonly code?: string | undefined
}

/**
 * The one error class of `@swarmkit/transport`. Check `name === 'TransportError'` and `code`
 * (see {@link isTransportError}); `cause` keeps the underlying error.
 */
export class TransportError extends Error {
  override readonly name = 'TransportError'
  readonly code: TransportErrorCode
  /** For `REMOTE_ERROR`: the remote handler's error. */
  readonly remote: RemoteErrorInfo | undefined

  constructor(
    code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown; remote?: RemoteErrorInfo | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.remote = options?.remote
  }
}

/** True when `error` is a {@link TransportError}, optionally with the given code. */
export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError {
  return (
    error instanceof Error &&
    error.name === 'TransportError' &&
    (code === undefined || (error as TransportError).code === code)
  )
}
