import type { Server } from 'node:http'
import { engineApi } from './api.js'
import type { ApiTlsOptions } from './api-tls.js'
import { Daemon, type DaemonOptions } from './daemon.js'
import { type ClusterMetrics, clusterMetrics, serveMetrics } from './metrics.js'
import { combineObservers } from './observer.js'
import { lockStateDir, type StateDirLock } from './state-lock.js'
import { publishUiAddress } from './ui-server.js'
import { listenUnix } from './unix-listen.js'

export interface StartNodeOptions extends DaemonOptions {
  /** Where the Engine API listens: `host:port` (port 0 picks one) or a unix socket path. */
  readonly apiAddress: string
  /** TLS for the Engine API (`--tlsverify --tlscacert --tlscert --tlskey`); plain HTTP without. */
  readonly apiTls?: ApiTlsOptions
  /** Serve Prometheus metrics (`GET /metrics`) at this `host:port` (port 0 picks one). */
  readonly metricsAddress?: string
}

/** A daemon with its Engine API listening. */
export interface ClusterNode {
  readonly daemon: Daemon
  /** What to put in `DOCKER_HOST`: `tcp://host:port` or `unix:///path`. */
  readonly dockerHost: string
  /** Where `GET /metrics` answers (with `metricsAddress`). */
  readonly metricsUrl?: string
  /** The browser view (`…/ui/`), served on a TCP Engine API address. */
  readonly uiUrl?: string
  close(): Promise<void>
}

const closeServer = async (server: Server) => {
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
}

/** Starts one node of the reference cluster and its Engine API. */
export async function startNode(options: StartNodeOptions): Promise<ClusterNode> {
  const metrics = options.metricsAddress ? clusterMetrics() : undefined
  const daemon = new Daemon(
    metrics ? { ...options, observer: combineObservers(options.observer, metrics.observer) } : options,
  )
  metrics?.bind(daemon)
  // Before anything in the state directory is read: a second process on it must change nothing.
  const lock = await lockStateDir(options.stateDir)
  let served: { server: Server; url: string } | undefined
  try {
    if (metrics) served = await serveMetrics(metrics, options.metricsAddress!)
    return await serve(daemon, options, lock, metrics, served)
  } catch (err) {
    if (served) await closeServer(served.server)
    await daemon.close().catch(() => {})
    await lock.release()
    throw err
  }
}

async function serve(
  daemon: Daemon,
  options: StartNodeOptions,
  lock: StateDirLock,
  metrics: ClusterMetrics | undefined,
  served: { server: Server; url: string } | undefined,
): Promise<ClusterNode> {
  await daemon.resume()
  const server: Server = engineApi(daemon, {
    ...(options.log ? { log: options.log } : {}),
    ...(options.apiTls ? { tls: options.apiTls } : {}),
    ...(metrics ? { onRequest: metrics.apiRequest } : {}),
  })
  const isSocket = options.apiAddress.startsWith('/')
  let dockerHost: string
  if (isSocket) {
    await listenUnix(server, options.apiAddress)
    dockerHost = `unix://${options.apiAddress}`
  } else {
    const cut = options.apiAddress.lastIndexOf(':')
    const host = options.apiAddress.slice(0, cut)
    const port = Number(options.apiAddress.slice(cut + 1))
    if (cut <= 0 || !Number.isInteger(port))
      throw new TypeError('options.apiAddress must be host:port or a socket path')
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    dockerHost = `tcp://${host}:${(server.address() as { port: number }).port}`
  }
  const uiBase = isSocket ? undefined : dockerHost.replace('tcp://', options.apiTls ? 'https://' : 'http://')
  const stopPublishing = new AbortController()
  if (uiBase) publishUiAddress(daemon, uiBase, stopPublishing.signal)
  return {
    daemon,
    dockerHost,
    ...(served ? { metricsUrl: served.url } : {}),
    ...(uiBase ? { uiUrl: `${uiBase}/ui/` } : {}),
    async close() {
      stopPublishing.abort()
      await closeServer(server)
      if (served) await closeServer(served.server)
      await daemon.close()
      await options.executor?.close()
      await lock.release()
    },
  }
}
