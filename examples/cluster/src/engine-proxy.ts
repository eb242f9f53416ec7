// One address for everything: the Engine API calls that are not swarm's (containers, exec, images, load,
// volumes, distribution) go on to the engine the node executes on, as on a Docker engine in swarm mode,
// so `docker ps`, `docker logs`, `docker exec -it`, `docker images` and `docker load` work against a node.
// Plain requests are piped through; hijacked ones (exec and attach with `Upgrade: tcp`) are spliced as
// raw byte streams once the engine switched protocols. API versions above the engine's are lowered to it.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ENGINE_API_VERSION, type EngineClient } from './engine-client.js'

const PROXIED = /^\/(containers|exec|images|volumes|distribution|commit|build|plugins)(\/|$)/

/** Whether `path` (without its version prefix) is forwarded to the engine. */
export function isProxied(path: string): boolean {
  return PROXIED.test(path)
}

/** `/v1.50/containers/json?all=1` becomes `/v1.41/containers/json?all=1` for a 1.41 engine. */
export function engineUrl(url: string): string {
  const [maxMajor, maxMinor] = ENGINE_API_VERSION.split('.').map(Number) as [number, number]
  return url.replace(/^\/v(\d+)\.(\d+)\//, (all, major: string, minor: string) =>
    Number(major) > maxMajor || (Number(major) === maxMajor && Number(minor) > maxMinor)
      ? `/v${ENGINE_API_VERSION}/`
      : all,
  )
}

/** Forwards a request and its answer, streaming both ways. */
export function proxyRequest(engine: EngineClient, req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers }
  delete headers.host
  const upstream = request(
    engine.requestOptions(req.method ?? 'GET', engineUrl(req.url ?? '/'), headers as Record<string, string>),
  )
  upstream.on('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers)
    // Now, not with the first byte of the body: a long poll (`wait`) answers its headers at once and its
    // body only when the container exits, and the CLI (`docker run`) waits for those headers to go on.
    res.flushHeaders()
    answer.pipe(res)
    answer.on('error', () => res.destroy())
  })
  upstream.on('error', (err) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const e = engine.unavailable(err)
    const body = JSON.stringify({ message: e.message })
    res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
    res.end(body)
  })
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy()
  })
  req.pipe(upstream)
}

/** Forwards a hijacked request (`Upgrade: tcp`): the request goes as is, then bytes flow both ways. */
export function proxyUpgrade(engine: EngineClient, req: IncomingMessage, client: Duplex, head: Buffer): void {
  const a = engine.address
  const upstream: Socket = a.socketPath ? connect(a.socketPath) : connect(a.port!, a.host!)
  const close = () => {
    client.destroy()
    upstream.destroy()
  }
  let connected = false
  upstream.on('error', () => {
    if (!connected && client.writable) {
      const body = JSON.stringify({ message: engine.unavailable(undefined).message })
      client.end(
        `HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    close()
  })
  client.on('error', close)
  upstream.on('connect', () => {
    connected = true
    const lines = [`${req.method} ${engineUrl(req.url ?? '/')} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!
      lines.push(`${name}: ${name.toLowerCase() === 'host' ? 'docker' : req.rawHeaders[i + 1]}`)
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (head.length > 0) upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
    upstream.on('close', () => client.end())
    client.on('close', () => upstream.end())
  })
}
