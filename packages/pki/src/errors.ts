/** Every failure the package reports at run time carries one of these codes. */
export type PkiErrorCode =
  | 'MALFORMED_PEM'
  | 'MALFORMED_DER'
  | 'MALFORMED_CERTIFICATE'
  | 'MALFORMED_CSR'
  | 'MALFORMED_KEY'
  | 'UNSUPPORTED_ALGORITHM'
  | 'TOO_LARGE'
  | 'MALFORMED_TOKEN'
  | 'UNSUPPORTED_TOKEN_VERSION'
  | 'MALFORMED_TOKEN_DIGEST'
  | 'MALFORMED_TOKEN_SECRET'
  | 'MALFORMED_UNLOCK_KEY'
  | 'UNSUPPORTED_UNLOCK_KEY_VERSION'
  | 'BAD_CSR_SIGNATURE'
  | 'KEY_MISMATCH'
  | 'NOT_A_CA'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'UNKNOWN_ISSUER'
  | 'CHAIN_TOO_LONG'
  | 'BAD_SIGNATURE'
  | 'NOT_A_NODE_CERTIFICATE'
  | 'WRONG_CLUSTER'
  | 'UNAUTHORIZED_ROLE'
  | 'REVOKED'
  | 'INVALID_JOIN_TOKEN'
  | 'CA_MISMATCH'
  | 'RATE_LIMITED'
  | 'ROTATION_IN_PROGRESS'
  | 'ABORTED'

/**
 * The one error class of `@swarmkit/pki`. `code` tells the cases apart; `cause` keeps the underlying error.
 * Check with {@link isPkiError} rather than `instanceof` when several copies of the package may be loaded.
 */
export class PkiError extends Error {
  override readonly name = 'PkiError'
  readonly code: PkiErrorCode
  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** True when `err` is a {@link PkiError} (by name and code, so it works across package copies). */
export function isPkiError(err: unknown, code?: PkiErrorCode): err is PkiError {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { name?: unknown; code?: unknown }
  return e.name === 'PkiError' && typeof e.code === 'string' && (code === undefined || e.code === code)
}
