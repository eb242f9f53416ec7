// The Docker Engine API subset the docker CLI (28.x) uses in swarm mode, over node:http. See
// /work/shared/DOCKER-API.md for what each command sends. Paths are accepted with and without the
// `/v1.NN` prefix; errors are `{"message": …}` with moby's status codes and words.
//
// This module is the router (API versions, `/_ping`, the engine proxy and the UI, bodies, replies, errors);
// the routes are one module per resource under api/.

import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { secretAndConfigRoutes } from './api/blobs.js'
import { storeError } from './api/error-map.js'
import { logRoutes } from './api/logs.js'
import { networkRoutes } from './api/networks.js'
import { nodeRoutes } from './api/nodes.js'
import { API_VERSION, MIN_API_VERSION, type Reply, type Route, routeContext } from './api/route.js'
import { serviceRoutes } from './api/services.js'
import { swarmRoutes } from './api/swarm.js'
import { registryRoutes, systemRoutes } from './api/system.js'
import { taskRoutes } from './api/tasks.js'
import { type ApiTlsOptions, apiServer } from './api-tls.js'
import { type ContainerAttachments, containerAttachments } from './container-attachments.js'
import type { Daemon } from './daemon.js'
import type { DockerExecutor } from './docker-executor.js'
import { isProxied, proxyRequest, proxyUpgrade } from './engine-proxy.js'
import { ENGINE_VERSION } from './engine-version.js'
import { ApiError } from './errors.js'
import { readJsonBody, writeJson, writeJsonText } from './http-json.js'
import { acceptsGzip, GZIP_MIN_BYTES, jsonBody, writeJsonBody } from './json-body.js'
import { requireLeader } from './quorum.js'
import { serveUi } from './ui-server.js'

export { API_VERSION, MIN_API_VERSION }

/** The Engine API routes over a daemon, in the order they are tried. */
function routes(d: Daemon): Route[] {
  const ctx = routeContext(d)
  return [
    ...systemRoutes(ctx),
    ...swarmRoutes(ctx),
    ...nodeRoutes(ctx),
    ...serviceRoutes(ctx),
    ...logRoutes(ctx),
    ...taskRoutes(ctx),
    ...networkRoutes(ctx),
    ...secretAndConfigRoutes(ctx),
    ...registryRoutes(),
  ]
}

async function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  reply: Pick<Reply, 'json' | 'text' | 'body'>,
): Promise<void> {
  res.setHeader('Api-Version', API_VERSION)
  res.setHeader('Docker-Experimental', 'false')
  res.setHeader('Ostype', 'linux')
  res.setHeader('Server', `Docker/${ENGINE_VERSION} (linux)`)
  // Large answers gzipped for clients that ask (json-body.ts).
  if (reply.body) return writeJsonBody(res, status, reply.body, acceptsGzip(req))
  const text = reply.text ?? (reply.json === undefined ? undefined : JSON.stringify(reply.json))
  if (text === undefined) writeJson(res, status)
  else if (text.length >= GZIP_MIN_BYTES && acceptsGzip(req))
    await writeJsonBody(res, status, jsonBody(text), true)
  else writeJsonText(res, status, text)
}

/** A route's pattern as a metrics label: `/services/{id}/update`. */
function routeLabel(re: RegExp): string {
  return re.source
    .replace(/^\^|\$$/g, '')
    .replace(/\(\[\^\/\]\+\)/g, '{id}')
    .replace(/\(\.\+\)/g, '{name}')
    .replace(/\\\//g, '/')
}

function swarmHeader(d: Daemon): string {
  if (d.state !== 'active') return d.state
  return d.manager ? 'active/manager' : 'active/worker'
}

/** Serves the Engine API for `daemon` (listen on TCP or a unix socket). */
export function engineApi(
  d: Daemon,
  options: {
    log?: (line: string) => void
    tls?: ApiTlsOptions
    /** Told of each answered request (metrics): method, route pattern, status, seconds. */
    onRequest?: (method: string, route: string, status: number, seconds: number) => void
  } = {},
): Server {
  const table = routes(d)
  const log = options.log ?? (() => {})
  // Standalone containers on attachable swarm networks (container-attachments.ts).
  let attachments: ContainerAttachments | undefined
  const attachmentsOf = (engine: NonNullable<Daemon['engine']>) =>
    (attachments ??= containerAttachments({
      engine,
      networking: () => (d.options.executor as DockerExecutor | undefined)?.networking,
      call: (method, p) => d.attachmentCall(method, p),
      nodeId: () => (d.state === 'active' ? d.nodeId : ''),
      log,
    }))
  const server = apiServer(options.tls, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://engine')
    const vm = /^\/v(\d+)\.(\d+)(\/.*)$/.exec(url.pathname)
    const path = vm ? vm[3]! : url.pathname
    // Not swarm's: the engine this node executes on answers (containers, exec, images, volumes, …).
    const engine = d.engine
    if (engine && attachmentsOf(engine).handles(req.method, path)) {
      attachmentsOf(engine).serve(req, res, path)
      return
    }
    if (engine && isProxied(path)) {
      proxyRequest(engine, req, res)
      return
    }
    const tooNew = vm ? Number(vm[1]) > 1 || (Number(vm[1]) === 1 && Number(vm[2]) > 50) : false
    const tooOld = vm ? Number(vm[1]) < 1 || (Number(vm[1]) === 1 && Number(vm[2]) < 24) : false
    if (serveUi(d, req, res, path)) return
    if (path === '/_ping' && !tooOld && (req.method === 'GET' || req.method === 'HEAD')) {
      res.setHeader('Api-Version', API_VERSION)
      res.setHeader('Ostype', 'linux')
      res.setHeader('Docker-Experimental', 'false')
      res.setHeader('Builder-Version', '1')
      res.setHeader('Swarm', swarmHeader(d))
      res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate')
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 })
      res.end(req.method === 'HEAD' ? undefined : 'OK')
      return
    }
    let params: string[] | undefined
    const route = table.find(([method, re]) => {
      if (method !== req.method) return false
      const m = re.exec(path)
      if (m) params = m.slice(1).map((p) => decodeURIComponent(p))
      return !!m
    })
    if (options.onRequest) {
      const started = performance.now()
      const label = route ? routeLabel(route[1]) : 'unknown'
      res.once('close', () =>
        options.onRequest!(req.method ?? '', label, res.statusCode, (performance.now() - started) / 1000),
      )
    }
    const run = async () => {
      if (tooOld)
        throw new ApiError(
          400,
          `client version ${vm![1]}.${vm![2]} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        )
      if (tooNew)
        throw new ApiError(
          400,
          `client version ${vm![1]}.${vm![2]} is too new. Maximum supported API version is ${API_VERSION}`,
        )
      if (!route) throw new ApiError(404, `page not found: ${req.method} ${path}`)
      await requireLeader(d.manager, path)
      const body = req.method === 'POST' ? await readJsonBody(req) : undefined
      const reply = await route[2]({ body, query: url.searchParams, params: params ?? [] })
      if (reply.stream) reply.stream(res)
      else await send(req, res, reply.status ?? 200, reply)
    }
    run().catch((err: unknown) => {
      const e = storeError(err)
      if (!e) log(`${req.method} ${path}: ${(err as Error)?.stack ?? String(err)}`)
      const status = e?.status ?? 500
      const message = e?.message ?? (err as Error)?.message ?? String(err)
      if (!res.headersSent) void send(req, res, status, { json: { message } })
      else res.destroy()
    })
  })
  server.on('close', () => attachments?.close())
  // Hijacked requests (`docker exec -it`, `docker attach`): only the engine's.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://engine')
    const path = url.pathname.replace(/^\/v\d+\.\d+/, '')
    const engine = d.engine
    if (engine && isProxied(path)) proxyUpgrade(engine, req, socket, head)
    else {
      const body = JSON.stringify({ message: `page not found: ${req.method} ${path}` })
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
  })
  return server
}
