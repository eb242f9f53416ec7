import type { Server } from 'node:http'
import { engineApi } from './api.js'
import { Daemon, type DaemonOptions } from './daemon.js'
import { lockStateDir, type StateDirLock } from './state-lock.js'

export interface StartNodeOptions extends DaemonOptions {
  /** Where the Engine API listens: `host:port` (port 0 picks one) or a unix socket path. */
  readonly apiAddress: string
}

/** A daemon with its Engine API listening. */
export interface ClusterNode {
  readonly daemon: Daemon
  /** What to put in `DOCKER_HOST`: `tcp://host:port` or `unix:///path`. */
  readonly dockerHost: string
  close(): Promise<void>
}

/** Starts one node of the reference cluster and its Engine API. */
export async function startNode(options: StartNodeOptions): Promise<ClusterNode> {
  const daemon = new Daemon(options)
  // Before anything in the state directory is read: a second process on it must change nothing.
  const lock = await lockStateDir(options.stateDir)
  try {
    return await serve(daemon, options, lock)
  } catch (err) {
    await daemon.close().catch(() => {})
    await lock.release()
    throw err
  }
}

async function serve(daemon: Daemon, options: StartNodeOptions, lock: StateDirLock): Promise<ClusterNode> {
  await daemon.resume()
  const server: Server = engineApi(daemon, options.log ? { log: options.log } : {})
  const isSocket = options.apiAddress.startsWith('/')
  let dockerHost: string
  if (isSocket) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.apiAddress, () => resolve())
    })
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
  return {
    daemon,
    dockerHost,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
      await daemon.close()
      await options.executor?.close()
      await lock.release()
    },
  }
}
