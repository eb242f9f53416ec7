// Errors across the wire: what a caller learns about a handler's failure (name, message, string code, and
// whether it is one of the transport's own refusals), and how the caller rebuilds a TransportError from it.
import { isTransportError, type RemoteErrorInfo, TransportError, type TransportErrorCode } from '../errors.js'

const TRANSPORT_CODES: ReadonlySet<TransportErrorCode> = new Set<TransportErrorCode>([
  'FORBIDDEN',
  'UNKNOWN_METHOD',
  'OVERLOADED',
  'FRAME_TOO_LARGE',
])

/** What the caller learns about an error: its name, message and string code, nothing else. */
export function errorInfo(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const info: Record<string, unknown> = { name: error.name, message: error.message }
    if (typeof code === 'string') info.code = code
    if (isTransportError(error) && TRANSPORT_CODES.has(error.code)) info.t = 1
    return info
  }
  return { name: 'Error', message: String(error) }
}

export function errorFromInfo(info: unknown): TransportError {
  const o = (typeof info === 'object' && info !== null ? info : {}) as Record<string, unknown>
  const name = typeof o.name === 'string' ? o.name.slice(0, 256) : 'Error'
  const message = typeof o.message === 'string' ? o.message.slice(0, 4096) : 'remote error'
  const code = typeof o.code === 'string' ? o.code.slice(0, 256) : undefined
  if (o.t === 1 && code !== undefined && TRANSPORT_CODES.has(code as TransportErrorCode)) {
    return new TransportError(code as TransportErrorCode, message)
  }
  const remote: RemoteErrorInfo = { name, message, code }
  return new TransportError('REMOTE_ERROR', `remote ${name}${code ? ` ${code}` : ''}: ${message}`, { remote })
}
