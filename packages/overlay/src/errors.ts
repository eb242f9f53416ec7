/** What went wrong, as a stable string a caller can switch on. */
export type OverlayErrorCode =
  /** A pool (subnets, addresses, VNIs or dynamic ports) has nothing left to hand out. */
  | 'POOL_EXHAUSTED'
  /** A requested subnet overlaps one already allocated, or pools overlap each other. */
  | 'SUBNET_OVERLAP'
  /** A requested address, VNI or published port is already taken. */
  | 'IN_USE'
  /** An address does not belong to any subnet of the network. */
  | 'OUT_OF_RANGE'
  /** A release of something that was not allocated. */
  | 'NOT_ALLOCATED'
  /** The network (or sandbox) is unknown. */
  | 'NOT_FOUND'
  /** The Linux data plane lacks root / CAP_NET_ADMIN. */
  | 'PERMISSION_DENIED'
  /** The platform cannot run this (not Linux, or iproute2 missing). */
  | 'UNSUPPORTED'
  /** An iproute2 command failed. */
  | 'COMMAND_FAILED'
  /** A routing mesh listener could not bind its address and port. */
  | 'BIND_FAILED'
  /** The object was closed. */
  | 'CLOSED'

/** The one error class of `@swarmkit/overlay`. Guard with `err.name === 'OverlayError'` and `err.code`. */
export class OverlayError extends Error {
  override readonly name = 'OverlayError'
  readonly code: OverlayErrorCode
  /** For `IN_USE` on published ports and VNIs: who holds the resource. */
  readonly holder: string | undefined

  constructor(code: OverlayErrorCode, message: string, options?: { cause?: unknown; holder?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.holder = options?.holder
  }
}

/** True when `err` is an `OverlayError`, optionally with the given code. */
export function isOverlayError(err: unknown, code?: OverlayErrorCode): err is OverlayError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'OverlayError' &&
    (code === undefined || (err as { code?: unknown }).code === code)
  )
}
