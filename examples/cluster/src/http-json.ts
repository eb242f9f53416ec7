// Request bodies and JSON answers of the node's Engine API, shared by the API router (api.ts) and the engine
// proxy's container hooks (container-attachments.ts): one size limit, one error for a bad body.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { ApiError } from './errors.js'

/** The largest request body read (a service spec with its configs inline is far below it). */
export const MAX_BODY = 2 * 1024 * 1024

/** A request's JSON body, undefined when empty; an {@link ApiError} 413 past `MAX_BODY`, 400 when not JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new ApiError(413, 'request body too large')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError(400, 'request body is not valid JSON')
  }
}

/** Answers with `status` and `json` (no body when undefined), unless an answer was already begun. */
export function writeJson(res: ServerResponse, status: number, json?: unknown): void {
  if (res.headersSent) return void res.end()
  if (json === undefined) {
    res.writeHead(status)
    res.end()
    return
  }
  writeJsonText(res, status, JSON.stringify(json))
}

/** Answers with `status` and a JSON body already serialized, unless an answer was already begun. */
export function writeJsonText(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}
