// The session's wire protocol: message types, limits, and the checks that turn a malformed message from the
// peer into a BAD_FRAME error (which closes that connection, never the process).
import { isTransportError, TransportError } from '../errors.js'

/** Message types: the first element of every message array. */
export const NOTIFY = 0
export const CALL = 1
export const RESULT = 2
export const ERROR = 3
export const STREAM = 4
export const ITEM = 5
export const END = 6
export const CREDIT = 7
export const CANCEL = 8

/** Longest method name, either way. */
export const MAX_METHOD_LENGTH = 256
/** Largest stream window or credit grant, in items. */
export const MAX_WINDOW = 1 << 20

/** The value could not be encoded (as opposed to the connection failing). */
export function isEncodingError(error: unknown): boolean {
  return error instanceof TypeError || isTransportError(error, 'FRAME_TOO_LARGE')
}

/** A method name given by this side's caller: a TypeError, since it is a programmer mistake. */
export function checkMethod(method: unknown): asserts method is string {
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) {
    throw new TypeError(`method must be a string of 1 to ${MAX_METHOD_LENGTH} characters`)
  }
}

/** A method name from the peer: 1 to MAX_METHOD_LENGTH characters, else BAD_FRAME. */
export function methodName(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_METHOD_LENGTH)
    throw protocolError('bad method name')
  return v
}

/** The peer broke the protocol: the connection is closed with this error. */
export function protocolError(message: string): TransportError {
  return new TransportError('BAD_FRAME', `protocol violation: ${message}`)
}

/** A message id from the peer: a positive safe integer. */
export function messageId(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw protocolError('bad message id')
  return v
}

/** A stream window or credit from the peer: 1 to MAX_WINDOW items; `what` names the violation. */
export function windowCredits(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > MAX_WINDOW) throw protocolError(what)
  return v
}
