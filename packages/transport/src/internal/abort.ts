import { TransportError } from '../errors.js'

export function checkSignal(options: { signal?: AbortSignal | undefined } | undefined): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  const signal = options?.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('options.signal must be an AbortSignal')
  }
}

export function abortedError(signal: AbortSignal, what: string): TransportError {
  return new TransportError('ABORTED', `${what} was aborted`, { cause: signal.reason })
}

/** Throws `ABORTED` if the signal already fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(signal, what)
}
