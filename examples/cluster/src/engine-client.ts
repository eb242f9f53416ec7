// A small Docker Engine API client over a unix socket or TCP: JSON requests, raw streams (for the
// multiplexed log stream, pull progress and request forwarding). Errors keep the engine's own message
// text, as the docker CLI prints it; a refused or broken connection becomes `ENGINE_UNAVAILABLE` with the
// CLI's "Cannot connect to the Docker daemon" text.

import { type ClientRequest, type IncomingMessage, request } from 'node:http'
import { ExecutorError } from './executor.js'

/** The API version requests use (Docker 20.10 speaks 1.41). */
export const ENGINE_API_VERSION = '1.41'

/** Where an engine listens: `unix:///var/run/docker.sock` or `tcp://host:port`. */
export interface EngineAddress {
  readonly socketPath?: string
  readonly host?: string
  readonly port?: number
  /** As given, for messages. */
  readonly text: string
}

export function parseEngineAddress(addr: string): EngineAddress {
  if (typeof addr !== 'string') throw new TypeError('engine address must be a string')
  if (addr.startsWith('unix://')) {
    const socketPath = addr.slice('unix://'.length)
    if (!socketPath.startsWith('/'))
      throw new TypeError(`engine address ${addr}: expected unix:///absolute/path`)
    return { socketPath, text: addr }
  }
  if (addr.startsWith('tcp://')) {
    const rest = addr.slice('tcp://'.length).replace(/\/$/, '')
    const cut = rest.lastIndexOf(':')
    const port = Number(rest.slice(cut + 1))
    if (cut <= 0 || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new TypeError(`engine address ${addr}: expected tcp://host:port`)
    return { host: rest.slice(0, cut).replace(/^\[|\]$/g, ''), port, text: addr }
  }
  throw new TypeError(`engine address ${addr}: expected unix:///path or tcp://host:port`)
}

export interface EngineRequest {
  readonly method: string
  /** Path without the version prefix, e.g. `/containers/json`. */
  readonly path: string
  readonly query?: Record<string, string | number | boolean | undefined>
  readonly body?: unknown
  readonly signal?: AbortSignal
  /** Default 60 s; 0 for none (long polls such as `wait`). */
  readonly timeoutMs?: number
}

export interface EngineResponse<T> {
  readonly status: number
  readonly body: T
}

/** An engine API client; every method rejects with an {@link ExecutorError} on failure. */
export class EngineClient {
  readonly address: EngineAddress

  constructor(address: string | EngineAddress) {
    this.address = typeof address === 'string' ? parseEngineAddress(address) : address
  }

  /** Options for `http.request` reaching the engine at `path` (already versioned or not). */
  requestOptions(method: string, path: string, headers: Record<string, string> = {}) {
    const a = this.address
    return {
      method,
      path,
      headers: { host: a.socketPath ? 'docker' : `${a.host}:${a.port}`, ...headers },
      ...(a.socketPath ? { socketPath: a.socketPath } : { host: a.host, port: a.port }),
    }
  }

  #url(path: string, query?: EngineRequest['query']): string {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v))
    const qs = q.toString()
    return `/v${ENGINE_API_VERSION}${path}${qs ? `?${qs}` : ''}`
  }

  /** Sends a request and resolves with the raw response (not read), whatever its status. */
  raw(req: EngineRequest): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      // Before the request exists: one made and left unsent would still connect, and its error when the
      // engine hangs up would have no listener (an uncaught exception in the node).
      if (req.signal?.aborted) return reject(req.signal.reason)
      const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body))
      let r: ClientRequest
      try {
        r = request(
          this.requestOptions(req.method, this.#url(req.path, req.query), {
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
              : {}),
          }),
        )
      } catch (err) {
        reject(this.unavailable(err))
        return
      }
      const timeoutMs = req.timeoutMs ?? 60_000
      if (timeoutMs > 0)
        r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      const onAbort = () =>
        r.destroy(req.signal?.reason instanceof Error ? req.signal.reason : new Error('aborted'))
      req.signal?.addEventListener('abort', onAbort, { once: true })
      r.on('response', (res) => {
        res.on('close', () => req.signal?.removeEventListener('abort', onAbort))
        resolve(res)
      })
      r.on('error', (err) => {
        req.signal?.removeEventListener('abort', onAbort)
        reject(req.signal?.aborted ? req.signal.reason : this.unavailable(err))
      })
      r.end(payload)
    })
  }

  /** Sends a request and parses a JSON answer; statuses of 400 and more reject with the engine's message. */
  async json<T>(req: EngineRequest, accept: readonly number[] = []): Promise<EngineResponse<T>> {
    const res = await this.raw(req)
    const text = (
      await readAll(res, req.signal).catch((err) => {
        throw req.signal?.aborted ? req.signal.reason : this.unavailable(err)
      })
    ).toString('utf8')
    const status = res.statusCode ?? 500
    let body: unknown
    try {
      body = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      body = text
    }
    if (status >= 400 && !accept.includes(status)) throw engineError(status, body, req)
    return { status, body: body as T }
  }

  /** The error the CLI shows when the engine does not answer. */
  unavailable(cause: unknown): ExecutorError {
    return new ExecutorError(
      'ENGINE_UNAVAILABLE',
      `Cannot connect to the Docker daemon at ${this.address.text}. Is the docker daemon running?`,
      { cause },
    )
  }
}

/** An engine error status as an ExecutorError with the engine's message text. */
export function engineError(status: number, body: unknown, req: EngineRequest): ExecutorError {
  const message =
    typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : typeof body === 'string' && body.trim()
        ? body.trim()
        : `${req.method} ${req.path}: HTTP ${status}`
  const code = status === 404 ? 'NOT_FOUND' : req.path.endsWith('/start') ? 'START_FAILED' : 'CREATE_FAILED'
  const err = new ExecutorError(code, message)
  Object.defineProperty(err, 'status', { value: status })
  return err
}

export function readAll(
  res: IncomingMessage,
  signal?: AbortSignal,
  limit = 64 * 1024 * 1024,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onAbort = () => res.destroy(new Error('aborted'))
    signal?.addEventListener('abort', onAbort, { once: true })
    res.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) res.destroy(new Error('answer too large'))
      else chunks.push(c)
    })
    res.on('end', () => {
      signal?.removeEventListener('abort', onAbort)
      resolve(Buffer.concat(chunks))
    })
    res.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort)
      reject(err)
    })
    res.on('close', () => {
      if (!res.complete) reject(new Error('connection closed'))
    })
  })
}

/** Splits Docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, size) into frames. */
export function demultiplex(data: Buffer): { stream: 'stdout' | 'stderr'; payload: Buffer }[] {
  const out: { stream: 'stdout' | 'stderr'; payload: Buffer }[] = []
  let at = 0
  while (at + 8 <= data.length) {
    const kind = data[at]!
    const size = data.readUInt32BE(at + 4)
    if (at + 8 + size > data.length) break
    out.push({ stream: kind === 2 ? 'stderr' : 'stdout', payload: data.subarray(at + 8, at + 8 + size) })
    at += 8 + size
  }
  return out
}
