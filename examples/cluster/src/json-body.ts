// Large JSON answers of the Engine API, gzipped for clients that ask (the docker CLI's Go HTTP client sends
// `Accept-Encoding: gzip` and decompresses transparently). A body leaves a manager only as fast as its event
// loop comes round to the socket: about one socket buffer per loop turn, so 3.5 MB of `node ls` at 5,000
// nodes took hundreds of milliseconds to send while the loop was busy with the cluster's work, where the same
// answer gzipped is a few socket buffers. Compression runs on libuv's thread pool, never on the loop, and a
// body kept between requests (`node ls` while the nodes are unchanged) is compressed once.

import type { IncomingMessage, ServerResponse } from 'node:http'
import zlib from 'node:zlib'

/** Smaller answers go out as they are: they fit a socket buffer, and compressing them buys nothing. */
export const GZIP_MIN_BYTES = 32 * 1024

/** A JSON answer's bytes, with their gzip made once, on demand. */
export interface JsonBody {
  readonly bytes: Buffer
  /** The bytes gzipped (fastest level), compressed off the event loop; the same promise every time. */
  gzipped(): Promise<Buffer>
}

export function jsonBody(json: string | Buffer): JsonBody {
  const bytes = typeof json === 'string' ? Buffer.from(json) : json
  let gz: Promise<Buffer> | undefined
  return {
    bytes,
    gzipped: () =>
      (gz ??= new Promise((resolve, reject) =>
        // One output chunk per megabyte: each chunk is a callback on the loop.
        zlib.gzip(bytes, { level: 1, chunkSize: 1 << 20 }, (err, out) => (err ? reject(err) : resolve(out))),
      )),
  }
}

/** Whether the request's Accept-Encoding admits gzip (`gzip`, `x-gzip` or `*`, without `q=0`). */
export function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding']
  if (!header) return false
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    if (name !== 'gzip' && name !== 'x-gzip' && name !== '*') continue
    const q = params.find((p) => p.startsWith('q='))
    if (q === undefined || Number(q.slice(2)) > 0) return true
  }
  return false
}

/**
 * Answers with `status` and `body`, gzipped when `gzip` and the body is large enough, unless an answer was
 * already begun. A failed compression sends the body as it is.
 */
export async function writeJsonBody(
  res: ServerResponse,
  status: number,
  body: JsonBody,
  gzip: boolean,
): Promise<void> {
  let bytes = body.bytes
  let encoded = false
  if (gzip && bytes.length >= GZIP_MIN_BYTES) {
    try {
      bytes = await body.gzipped()
      encoded = true
    } catch {}
  }
  if (res.headersSent) return void res.end()
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': bytes.length,
  }
  if (encoded) headers['Content-Encoding'] = 'gzip'
  if (body.bytes.length >= GZIP_MIN_BYTES) headers['Vary'] = 'Accept-Encoding'
  res.writeHead(status, headers)
  res.end(bytes)
}
