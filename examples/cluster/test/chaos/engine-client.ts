// A minimal Engine API client over a unix socket: the chaos suite talks to each manager process through the
// socket in its run directory, so the test reaches managers that live in their own network namespaces.
import { request } from 'node:http'

export interface Answer {
  status: number
  json: any
  text: string
}

/** The request did not get an answer (refused, reset, or timed out): the write may or may not have happened. */
export class NoAnswer extends Error {
  override name = 'NoAnswer'
}

/** `path` without a version prefix gets /v1.47 (the docker CLI 28's); one that starts with /vN is sent as is. */
export function engineRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      {
        socketPath,
        method,
        path: /^\/v\d/.test(path) ? path : `/v1.47${path}`,
        headers: payload
          ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (err) => reject(new NoAnswer(err.message)))
        res.on('end', () => {
          clearTimeout(timer)
          const text = Buffer.concat(chunks).toString()
          let json: unknown
          try {
            json = text ? JSON.parse(text) : undefined
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, json, text })
        })
      },
    )
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs)
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(new NoAnswer(`${method} ${path}: ${err.message}`))
    })
    req.end(payload)
  })
}
