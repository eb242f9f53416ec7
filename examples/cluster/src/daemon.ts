// One node of the reference cluster, as the docker CLI sees an engine: inactive until `docker swarm init`
// (it becomes the first manager) or `docker swarm join` (it becomes a worker), then a manager or a worker
// with an agent that runs the tasks assigned to it on the simulated executor.

import { mkdir } from 'node:fs/promises'
import { cpus, hostname as osHostname, totalmem } from 'node:os'
import * as pki from '@swarmkit/pki'
import { type RpcClient, rpcClient, tlsTransport } from '@swarmkit/transport'
import { Agent, type LogLine } from './agent.js'
import type { Assignment, DispatcherApi, NodeInfo, TaskStatusUpdate } from './dispatcher.js'
import { ApiError, MESSAGES } from './errors.js'
import { joinCluster } from './join.js'
import { ENGINE_VERSION, freePort, Manager } from './manager.js'

export interface DaemonOptions {
  /** Where this node keeps its raft log, keys and certificates. */
  readonly stateDir: string
  /** The name `docker node ls` shows. Default: the machine's host name. */
  readonly hostname?: string
  /**
   * Overrides the `--listen-addr` of `swarm init`/`join` (e.g. `127.0.0.1:0` so that several nodes share
   * one machine). Default: what the CLI sends, `0.0.0.0:2377`.
   */
  readonly listenAddr?: string
  /** Heartbeat period of the dispatcher. Default 5,000 ms. */
  readonly heartbeatPeriodMs?: number
  /** Time per step of the simulated executor. Default 50 ms. */
  readonly taskStepMs?: number
  readonly log?: (line: string) => void
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked'

function splitHostPort(address: string, defaultPort: number): { host: string; port: number } {
  const cut = address.lastIndexOf(':')
  if (cut < 0 || address.endsWith(']')) return { host: address.replace(/^\[|\]$/g, ''), port: defaultPort }
  const port = Number(address.slice(cut + 1))
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ApiError(400, `invalid address ${address}`)
  return { host: address.slice(0, cut).replace(/^\[|\]$/g, ''), port }
}

/** The agent's view of a dispatcher on another manager, over mutual TLS. */
function remoteDispatcher(client: RpcClient): DispatcherApi {
  return {
    register: (_id, info, addr) => client.call('dispatcher.register', { info, addr }),
    heartbeat: (_id) => client.call('dispatcher.heartbeat', {}),
    assignments: (_id, signal) =>
      client.stream('dispatcher.assignments', {}, { signal }) as AsyncIterable<Assignment[]>,
    updateStatus: (_id, updates: readonly TaskStatusUpdate[]) => client.call('dispatcher.status', updates),
  }
}

export class Daemon {
  readonly options: DaemonOptions
  readonly hostname: string
  state: LocalNodeState = 'inactive'
  role: 'manager' | 'worker' | undefined
  nodeId = ''
  clusterId = ''
  manager: Manager | undefined
  agent: Agent | undefined
  /** The manager this worker talks to. */
  remoteManager = ''
  #client: RpcClient | undefined
  #busy = false
  readonly #log: (line: string) => void

  constructor(options: DaemonOptions) {
    if (typeof options?.stateDir !== 'string' || options.stateDir.length === 0)
      throw new TypeError('options.stateDir must be a directory path')
    this.options = options
    this.hostname = options.hostname ?? osHostname()
    this.#log = options.log ?? (() => {})
  }

  info(): NodeInfo {
    return {
      hostname: this.hostname,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: cpus().length * 1e9, memoryBytes: totalmem() },
      engineVersion: ENGINE_VERSION,
    }
  }

  /** The manager, or the daemon's error for this node's state (503, as moby answers). */
  requireManager(): Manager {
    if (this.manager) return this.manager
    throw new ApiError(503, this.role === 'worker' ? MESSAGES.worker : MESSAGES.notInSwarm)
  }

  #addresses(body: { ListenAddr?: unknown; AdvertiseAddr?: unknown }) {
    const listen =
      this.options.listenAddr ?? (typeof body.ListenAddr === 'string' && body.ListenAddr) ?? '0.0.0.0:2377'
    const { host, port } = splitHostPort(listen || '0.0.0.0:2377', 2377)
    const adv = typeof body.AdvertiseAddr === 'string' && body.AdvertiseAddr ? body.AdvertiseAddr : ''
    const advertiseHost = adv
      ? splitHostPort(adv, port).host
      : host === '0.0.0.0' || host === '::'
        ? '127.0.0.1'
        : host
    return { host, port, advertiseHost }
  }

  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'inactive') throw new ApiError(503, MESSAGES.alreadyInSwarm)
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    this.#busy = true
    this.state = 'pending'
    try {
      const r = await fn()
      this.state = 'active'
      return r
    } catch (err) {
      this.state = 'inactive'
      throw err
    } finally {
      this.#busy = false
    }
  }

  /** `docker swarm init`: creates the cluster with this node as its first manager; returns the node ID. */
  init(body: { ListenAddr?: unknown; AdvertiseAddr?: unknown }): Promise<string> {
    return this.#exclusive(async () => {
      const { host, port, advertiseHost } = this.#addresses(body)
      const nodeId = pki.generateNodeId()
      const clusterId = pki.generateClusterId()
      const ca = pki.createRootCA()
      const joinTokens = pki.generateJoinTokens(ca.pem)
      const key = pki.generateKeyPair()
      const cert = pki.issueNodeCertificate(ca, pki.createCSR(key.privateKey), {
        nodeId,
        role: 'swarm-manager',
        clusterId,
      })
      const credentials: pki.NodeCredentials = {
        identity: { nodeId, role: 'swarm-manager', clusterId },
        key,
        certificate: cert.chain,
        roots: ca.pem,
      }
      await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 })
      const raftHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      const raftAddr = `${raftHost}:${await freePort(raftHost)}`
      this.manager = await Manager.start({
        stateDir: this.options.stateDir,
        nodeId,
        clusterId,
        credentials,
        host: raftHost,
        listenAddr: `${host}:${port}`,
        advertiseHost,
        raftAddr,
        bootstrap: { ca, joinTokens, info: this.info() },
        ...(this.options.heartbeatPeriodMs ? { heartbeatPeriodMs: this.options.heartbeatPeriodMs } : {}),
        log: (l) => this.#log(`manager ${nodeId}: ${l}`),
      })
      this.nodeId = nodeId
      this.clusterId = clusterId
      this.role = 'manager'
      this.agent = new Agent({
        nodeId,
        dispatcher: this.manager.dispatcher,
        info: this.info(),
        addr: advertiseHost,
        ...(this.options.taskStepMs ? { stepMs: this.options.taskStepMs } : {}),
        log: (l) => this.#log(`agent ${nodeId}: ${l}`),
      })
      this.manager.localLogs = (ids) => this.#logs(ids)
      await this.agent.start()
      this.#log(`swarm initialized: node ${nodeId}, cluster ${clusterId}, join at ${this.manager.joinAddr}`)
      return nodeId
    })
  }

  /** `docker swarm join`: joins with a token through the manager at `RemoteAddrs[0]`. */
  join(body: { RemoteAddrs?: unknown; JoinToken?: unknown; AdvertiseAddr?: unknown; ListenAddr?: unknown }) {
    return this.#exclusive(async () => {
      const remotes = Array.isArray(body.RemoteAddrs)
        ? body.RemoteAddrs.filter((a) => typeof a === 'string')
        : []
      if (remotes.length === 0) throw new ApiError(400, 'at least 1 RemoteAddr is required to join')
      if (typeof body.JoinToken !== 'string' || body.JoinToken.length === 0)
        throw new ApiError(400, 'a join token is required')
      const { host, port, advertiseHost } = this.#addresses(body)
      const raftHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      const raftAddr = `${raftHost}:${await freePort(raftHost)}`
      let joined: Awaited<ReturnType<typeof joinCluster>> | undefined
      let lastError: unknown
      for (const remote of remotes as string[]) {
        try {
          joined = await joinCluster(remote, body.JoinToken, {
            hostname: this.hostname,
            advertiseAddr: advertiseHost,
            raftAddr,
          })
          this.remoteManager = remote
          break
        } catch (err) {
          lastError = err
        }
      }
      if (!joined) {
        const msg = (lastError as Error)?.message ?? String(lastError)
        throw new ApiError(pki.isPkiError(lastError) ? 400 : 503, `rpc error: code = Unknown desc = ${msg}`)
      }
      const { credentials, answer } = joined
      const { nodeId, clusterId, role } = credentials.identity
      this.nodeId = nodeId
      this.clusterId = clusterId
      let dispatcher: DispatcherApi
      if (role === 'swarm-manager') {
        if (!answer.raftPeers?.length) throw new ApiError(503, 'the manager sent no raft members to join')
        await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 })
        this.manager = await Manager.start({
          stateDir: this.options.stateDir,
          nodeId,
          clusterId,
          credentials,
          host: raftHost,
          listenAddr: `${host}:${port}`,
          advertiseHost,
          raftAddr,
          raftPeers: answer.raftPeers,
          ...(this.options.heartbeatPeriodMs ? { heartbeatPeriodMs: this.options.heartbeatPeriodMs } : {}),
          log: (l) => this.#log(`manager ${nodeId}: ${l}`),
        })
        this.role = 'manager'
        this.manager.localLogs = (ids) => this.#logs(ids)
        dispatcher = this.manager.dispatcher
      } else {
        this.#client = rpcClient({
          transport: tlsTransport({
            key: pki.encodePrivateKeyPem(credentials.key.privateKey),
            cert: credentials.certificate,
            ca: credentials.roots,
            authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId }),
          }),
          address: answer.controlAddr,
          methods: {
            // The manager asks for task logs over the worker's own connection.
            'agent.logs': {
              kind: 'call',
              roles: ['swarm-manager'],
              handler: (ids: unknown) => this.#logs(ids),
            },
          },
        })
        this.role = 'worker'
        dispatcher = remoteDispatcher(this.#client)
      }
      this.agent = new Agent({
        nodeId,
        dispatcher,
        info: this.info(),
        addr: advertiseHost,
        ...(this.options.taskStepMs ? { stepMs: this.options.taskStepMs } : {}),
        log: (l) => this.#log(`agent ${nodeId}: ${l}`),
      })
      await this.agent.start()
      this.#log(`joined cluster ${clusterId} as ${this.role} ${nodeId}`)
    })
  }

  #logs(ids: unknown): Record<string, LogLine[]> {
    if (!Array.isArray(ids) || ids.length > 10_000) throw new TypeError('expected a list of task IDs')
    const out: Record<string, LogLine[]> = {}
    for (const id of ids) if (typeof id === 'string' && this.agent) out[id] = [...this.agent.logs(id)]
    return out
  }

  /** `docker swarm leave`: a worker stops its agent and forgets the cluster; a manager only with `force`. */
  async leave(force: boolean): Promise<void> {
    if (this.state === 'inactive') throw new ApiError(503, MESSAGES.notPartOfSwarm)
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    if (this.manager && !force)
      throw new ApiError(
        503,
        'You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.',
      )
    this.#busy = true
    try {
      await this.close()
      this.#client = undefined
      this.state = 'inactive'
      this.role = undefined
      this.nodeId = ''
      this.clusterId = ''
      this.remoteManager = ''
    } finally {
      this.#busy = false
    }
  }

  async close(): Promise<void> {
    await this.agent?.stop()
    await this.#client?.close()
    await this.manager?.close()
    this.agent = undefined
    this.manager = undefined
  }
}
