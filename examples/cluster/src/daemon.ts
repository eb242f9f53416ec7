// One node of the reference cluster, as the docker CLI sees an engine: inactive until `docker swarm init`
// (it becomes the first manager) or `docker swarm join` (it becomes a worker), then a manager or a worker
// with an agent that runs the tasks assigned to it on its executor (the simulated one, or a Docker Engine).
//
// Why this file is long: it is the node's lifecycle, one state machine (init, join, resume, unlock, the
// switch between manager and worker, failover to another manager, leave) whose steps share the node's
// state and its one-operation-at-a-time guard. What is not that state machine lives beside it: request
// bodies (swarm-requests.ts), the node file (node-file.ts), certificate requests (node-certificates.ts),
// renewal and root rotation (node-tls.ts), the worker's dispatcher client (remote-dispatcher.ts).

import { mkdir, rm } from 'node:fs/promises'
import { cpus, hostname as osHostname, totalmem } from 'node:os'
import { join } from 'node:path'
import * as pki from '@swarmkit/pki'
import { isStoreError, KeyManager } from '@swarmkit/store'
import { type RpcClient, rpcClient, type TlsTransport, tlsTransport } from '@swarmkit/transport'
import { Agent, type LogLine } from './agent.js'
import { attachmentMethods } from './attachment-methods.js'
import type { DaemonOptions, LocalNodeState } from './daemon-options.js'
import type { DispatcherApi, HeartbeatAnswer, NodeInfo } from './dispatcher.js'
import { EngineClient } from './engine-client.js'
import { ENGINE_VERSION } from './engine-version.js'
import { ApiError, MESSAGES } from './errors.js'
import type { NodeDescription } from './executor.js'
import { freePort } from './free-port.js'
import { joinCluster } from './join.js'
import { kernelIngressOf } from './kernel-ingress.js'
import { Manager, type ManagerOptions } from './manager.js'
import { requestDemotion, requestPromotion } from './node-certificates.js'
import {
  dropManagerState,
  managerTlsKey,
  NODE_FILE,
  nodeCredentials,
  raftHostOf,
  readSavedNode,
  type SavedNode,
  saveNode,
  TLS_KEY_SECRET,
} from './node-file.js'
import { NodeTls } from './node-tls.js'
import { leaveRefusal } from './quorum.js'
import { checkManagers, remoteDispatcher } from './remote-dispatcher.js'
import { MeshFollower } from './routing.js'
import { checkUnlockKeyRequest, joinRequest, swarmAddresses } from './swarm-requests.js'
import { nodeTlsInfo } from './tls-info.js'

export type { DaemonOptions, LocalNodeState }

/** Failed heartbeats in a row after which a worker turns to another manager. */
const FAILOVER_AFTER = 1

export class Daemon {
  readonly options: DaemonOptions
  readonly hostname: string
  state: LocalNodeState = 'inactive'
  role: 'manager' | 'worker' | undefined
  nodeId = ''
  clusterId = ''
  manager: Manager | undefined
  agent: Agent | undefined
  /** This node's routing mesh (while in a swarm, unless turned off). */
  mesh: MeshFollower | undefined
  /** The manager this worker talks to. */
  remoteManager = ''
  #client: RpcClient | undefined
  #busy = false
  /** A manager whose key file is locked (autolock) waits here for `docker swarm unlock`. */
  #locked: SavedNode | undefined
  readonly #log: (line: string) => void

  constructor(options: DaemonOptions) {
    if (typeof options?.stateDir !== 'string' || options.stateDir.length === 0)
      throw new TypeError('options.stateDir must be a directory path')
    this.options = options
    this.hostname = options.hostname ?? osHostname()
    this.#log = options.log ?? (() => {})
    this.#tls = new NodeTls({
      stateDir: options.stateDir,
      log: this.#log,
      canChange: () => !this.#roleChange && !this.#busy && this.state === 'active',
      manager: () => this.manager,
      keys: () => this.#keys,
      worker: () => this.#worker,
      setWorker: (saved) => {
        this.#worker = saved
      },
      client: () => this.#client,
      clientTransport: () => this.#clientTransport,
      reportTls: () => this.#reportTls(),
    })
  }

  /** Certificate renewal and the cluster's root rotation, followed. */
  readonly #tls: NodeTls

  /** What the executor said about this node when last asked. */
  #description: NodeDescription | undefined

  /** The engine this node executes on, if it runs on one (non-swarm API calls are forwarded there). */
  get engine(): EngineClient | undefined {
    const e = this.options.executor as { engine?: unknown } | undefined
    return e?.engine instanceof EngineClient ? e.engine : undefined
  }

  /** Calls for this node's containers' network attachments, to the managers (attachment-methods.ts). */
  attachmentCall(method: 'attach' | 'detach', p: unknown): Promise<unknown> {
    if (this.state !== 'active' || !this.nodeId)
      return Promise.reject(new ApiError(503, 'This node is not part of a swarm'))
    if (this.manager) return attachmentMethods(this.manager.store)[method](this.nodeId, p)
    const client = this.#client
    if (!client) return Promise.reject(new ApiError(503, 'no manager of the swarm answers this node'))
    return client.call(`attachment.${method}`, p, { timeoutMs: 30_000 })
  }

  /** Which executor runs this node's tasks (`docker info` shows it). */
  get executorKind(): string {
    return this.options.executor?.kind ?? 'simulated'
  }

  /** Asks the executor to describe the node again (before registering with the managers). */
  async #describe(): Promise<void> {
    const executor = this.options.executor
    if (!executor) return
    try {
      this.#description = await executor.describe()
    } catch (err) {
      this.#log(`the executor could not describe this node: ${(err as Error).message}`)
    }
  }

  info(): NodeInfo {
    const d = this.#description
    const tls = this.#tls.state
    return {
      hostname: this.hostname,
      platform: d?.platform ?? { os: 'linux', architecture: 'x86_64' },
      resources: d
        ? {
            nanoCPUs: d.resources.nanoCPUs,
            memoryBytes: d.resources.memoryBytes,
            ...(d.resources.genericResources?.length
              ? { genericResources: d.resources.genericResources.map((g) => ({ ...g })) }
              : {}),
          }
        : { nanoCPUs: cpus().length * 1e9, memoryBytes: totalmem() },
      engineVersion: d?.engineVersion ?? ENGINE_VERSION,
      ...(d ? { plugins: d.plugins } : {}),
      ...(tls ? { tls: nodeTlsInfo(tls.certificate, tls.roots) } : {}),
    }
  }

  /** The manager, or the daemon's error for this node's state (503, as moby answers). */
  requireManager(): Manager {
    if (this.manager) return this.manager
    if (this.state === 'locked') throw new ApiError(503, MESSAGES.locked)
    throw new ApiError(503, this.role === 'worker' ? MESSAGES.worker : MESSAGES.notInSwarm)
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

  /**
   * `docker swarm init`: creates the cluster with this node as its first manager; returns the node ID.
   * With `ForceNewCluster` on a manager, restarts it from its own raft log as a one-member cluster instead.
   */
  init(body: {
    ListenAddr?: unknown
    AdvertiseAddr?: unknown
    AutoLockManagers?: unknown
    ForceNewCluster?: unknown
  }): Promise<string> {
    if (body.ForceNewCluster === true && this.state !== 'inactive') return this.#forceNewCluster()
    return this.#exclusive(async () => {
      const { host, port, advertiseHost } = swarmAddresses(body, this.options.listenAddr)
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
      const saved: SavedNode = {
        version: 1,
        nodeId,
        clusterId,
        role: 'manager',
        key: pki.encodePrivateKeyPem(key.privateKey),
        certificate: cert.chain,
        roots: ca.pem,
        host,
        port,
        advertiseHost,
        raftAddr: `${raftHostOf(host)}:${await freePort(raftHostOf(host))}`,
      }
      await this.#runManager(saved, { bootstrap: { ca, joinTokens, info: this.info() } })
      if (body.AutoLockManagers === true) await this.manager!.updateCluster(undefined, true, false)
      this.#log(`swarm initialized: node ${nodeId}, cluster ${clusterId}, join at ${this.manager!.joinAddr}`)
      return nodeId
    })
  }

  /**
   * `docker swarm init --force-new-cluster` on a manager (e.g. one restored from a backup of its state
   * directory after every manager was lost): stops it and starts it again from its raft log as the only
   * member, keeping every service, network, secret and config.
   */
  async #forceNewCluster(): Promise<string> {
    if (this.state === 'locked') throw new ApiError(503, MESSAGES.locked)
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    if (!this.manager) throw new ApiError(503, MESSAGES.worker)
    this.#busy = true
    const unlockKey = this.manager.keyFileUnlockKey
    try {
      const saved = await readSavedNode(this.options.stateDir)
      if (saved?.role !== 'manager') throw new ApiError(503, MESSAGES.worker)
      this.state = 'pending'
      await this.close()
      await this.#runManager(saved, { forceNewCluster: true }, unlockKey)
      this.state = 'active'
      this.#log(`forced a new cluster from the state of ${saved.nodeId}`)
      return this.nodeId
    } catch (err) {
      if (this.state === 'pending') this.state = 'error'
      throw err
    } finally {
      this.#busy = false
    }
  }

  /** `docker swarm join`: joins with a token through the manager at `RemoteAddrs[0]`. */
  join(body: { RemoteAddrs?: unknown; JoinToken?: unknown; AdvertiseAddr?: unknown; ListenAddr?: unknown }) {
    return this.#exclusive(async () => {
      const { remotes, token } = joinRequest(body)
      const { host, port, advertiseHost } = swarmAddresses(body, this.options.listenAddr)
      const raftAddr = `${raftHostOf(host)}:${await freePort(raftHostOf(host))}`
      let joined: Awaited<ReturnType<typeof joinCluster>> | undefined
      let lastError: unknown
      let remoteManager = ''
      for (const remote of remotes) {
        try {
          joined = await joinCluster(remote, token, {
            hostname: this.hostname,
            advertiseAddr: advertiseHost,
            raftAddr,
          })
          remoteManager = remote
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
      const saved: SavedNode = {
        version: 1,
        nodeId,
        clusterId,
        role: role === 'swarm-manager' ? 'manager' : 'worker',
        key: pki.encodePrivateKeyPem(credentials.key.privateKey),
        certificate: credentials.certificate,
        roots: credentials.roots,
        host,
        port,
        advertiseHost,
        raftAddr,
        controlAddr: answer.controlAddr,
        remoteManager,
      }
      if (saved.role === 'manager') {
        if (!answer.raftPeers?.length) throw new ApiError(503, 'the manager sent no raft members to join')
        await this.#runManager(saved, { raftPeers: answer.raftPeers })
      } else await this.#runWorker(saved)
      this.#log(`joined cluster ${clusterId} as ${this.role} ${nodeId}`)
    })
  }

  /**
   * Resumes the node a previous process left in the state directory (a manager from its raft log, a worker
   * with its certificate); does nothing for a node that never joined a swarm.
   */
  async resume(): Promise<boolean> {
    await this.#describe()
    const saved = await readSavedNode(this.options.stateDir)
    if (!saved) return false
    // The agent registers in the background: a manager may come back without a quorum (its peers are
    // gone, e.g. restored from a backup), a worker before its manager.
    await this.#exclusive(() =>
      saved.role === 'manager'
        ? this.#runManager(saved, {}, undefined, false)
        : this.#runWorker(saved, false),
    )
    if (this.#locked) {
      this.state = 'locked'
      this.nodeId = saved.nodeId
      this.clusterId = saved.clusterId
      this.#log(`manager ${saved.nodeId} is locked: run docker swarm unlock`)
      return true
    }
    this.#log(`resumed ${saved.role} ${saved.nodeId} of cluster ${saved.clusterId}`)
    return true
  }
  async #runManager(
    saved: SavedNode,
    extra: {
      bootstrap?: ManagerOptions['bootstrap']
      raftPeers?: { id: string; address: string }[]
      forceNewCluster?: boolean
    },
    unlockKey?: string,
    waitForAgent = true,
  ): Promise<void> {
    const { nodeId, clusterId } = saved
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 })
    // The manager's TLS key lives in its key file next to the raft data keys, so autolock locks it too.
    const keys = await KeyManager.open(
      join(this.options.stateDir, 'raft-keys'),
      unlockKey ? { unlockKey } : {},
    )
    if (keys.locked) {
      keys.close()
      this.#locked = saved
      return
    }
    try {
      if (saved.key) {
        await keys.writeSecret(TLS_KEY_SECRET, new TextEncoder().encode(saved.key))
        saved = { ...saved, key: '' }
      }
      const key = managerTlsKey(keys, saved.certificate)
      this.manager = await Manager.start({
        stateDir: this.options.stateDir,
        keys,
        ...(unlockKey ? { unlockKey } : {}),
        nodeId,
        clusterId,
        credentials: nodeCredentials({ ...saved, key: new TextDecoder().decode(key) }),
        host: raftHostOf(saved.host),
        listenAddr: `${saved.host}:${saved.port}`,
        advertiseHost: saved.advertiseHost,
        raftAddr: saved.raftAddr,
        ...(saved.raftId ? { raftId: saved.raftId } : {}),
        controlPort: saved.controlPort ?? 0,
        ...extra,
        ...(this.options.heartbeatPeriodMs ? { heartbeatPeriodMs: this.options.heartbeatPeriodMs } : {}),
        ...(this.options.snapshotInterval ? { snapshotInterval: this.options.snapshotInterval } : {}),
        ...(this.options.specLimits ? { specLimits: this.options.specLimits } : {}),
        ...(this.options.observer ? { observer: this.options.observer } : {}),
        log: (l) => this.#log(`manager ${nodeId}: ${l}`),
      })
    } catch (err) {
      keys.close()
      throw err
    }
    this.#locked = undefined
    // Keep the ports the listeners got, so that a restart answers at the same addresses.
    const joinPort = Number(this.manager.joinAddr.slice(this.manager.joinAddr.lastIndexOf(':') + 1))
    const controlPort = Number(this.manager.controlAddr.slice(this.manager.controlAddr.lastIndexOf(':') + 1))
    await saveNode(this.options.stateDir, { ...saved, port: joinPort, controlPort })
    this.nodeId = nodeId
    this.clusterId = clusterId
    this.role = 'manager'
    this.manager.localLogs = (ids) => this.#logs(ids)
    this.#keys = keys
    this.#tls.start(saved.certificate, saved.roots)
    await this.#startAgent(saved, this.manager.dispatcher, waitForAgent)
  }

  /** `docker swarm unlock`: opens the key file with the unlock key and starts the manager. */
  async unlock(key: unknown): Promise<void> {
    const saved = this.#locked
    if (this.state !== 'locked' || !saved) throw new ApiError(409, 'swarm is not locked')
    const unlockKey = checkUnlockKeyRequest(key)
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    this.#busy = true
    try {
      await this.#runManager(saved, {}, unlockKey)
      this.state = 'active'
    } catch (err) {
      if (isStoreError(err) && (err.code === 'BAD_KEY' || err.code === 'INVALID_ARGUMENT'))
        throw new ApiError(401, 'swarm could not be unlocked: invalid key provided')
      throw err
    } finally {
      this.#busy = false
    }
  }

  async #runWorker(saved: SavedNode, waitForAgent = true): Promise<void> {
    if (!saved.controlAddr) throw new Error('a worker needs the address of its manager')
    const { nodeId, clusterId } = saved
    this.#client = this.#connect(saved, saved.controlAddr)
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 })
    await saveNode(this.options.stateDir, saved)
    this.#worker = saved
    this.nodeId = nodeId
    this.clusterId = clusterId
    this.role = 'worker'
    this.remoteManager = saved.remoteManager ?? saved.controlAddr
    this.#tls.start(saved.certificate, saved.roots)
    await this.#startAgent(
      saved,
      remoteDispatcher(() => this.#client!),
      waitForAgent,
    )
  }

  /** A worker's mutual TLS connection to a manager's dispatcher. */
  #connect(saved: SavedNode, address: string): RpcClient {
    // Kept to hand it a renewed certificate (see node-tls.ts).
    this.#clientTransport = tlsTransport({
      key: saved.key,
      cert: saved.certificate,
      ca: saved.roots,
      authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId: saved.clusterId }),
    })
    return rpcClient({
      transport: this.#clientTransport,
      address,
      methods: {
        // The manager asks for task logs over the worker's own connection.
        'agent.logs': { kind: 'call', roles: ['swarm-manager'], handler: (ids: unknown) => this.#logs(ids) },
      },
    })
  }

  // ---- a worker fails over to another manager when its own stops answering (or was demoted).

  /** The managers this worker knows of (join and dispatcher addresses), from its heartbeats. */
  get knownManagers(): readonly { addr: string; control: string }[] {
    return this.role === 'worker' ? (this.#worker?.managers ?? []) : []
  }

  #worker: SavedNode | undefined
  #failures = 0
  #nextManager = 0

  #onHeartbeat(answer: HeartbeatAnswer | undefined): void {
    try {
      this.#tls.follow(answer?.tls)
    } catch (err) {
      this.#log(`the cluster's TLS state is unreadable: ${(err as Error).message}`)
    }
    const saved = this.#worker
    if (this.role !== 'worker' || !saved || this.#busy) return
    if (answer) {
      this.#failures = 0
      const managers = checkManagers(answer.managers)
      if (managers && managers.length > 0 && JSON.stringify(managers) !== JSON.stringify(saved.managers)) {
        this.#worker = { ...saved, managers }
        void saveNode(this.options.stateDir, this.#worker).catch((err) =>
          this.#log(`${NODE_FILE} not saved: ${err.message}`),
        )
      }
      return
    }
    if (++this.#failures < FAILOVER_AFTER) return
    this.#failures = 0
    const others = (saved.managers ?? []).filter((m) => m.control !== saved.controlAddr)
    if (others.length === 0) return
    const next = others[this.#nextManager++ % others.length]!
    this.#log(`manager ${saved.controlAddr} does not answer: switching to ${next.control}`)
    const old = this.#client
    this.#worker = { ...saved, controlAddr: next.control, remoteManager: next.addr || next.control }
    this.#client = this.#connect(this.#worker, next.control)
    this.remoteManager = this.#worker.remoteManager!
    void old?.close()
    void saveNode(this.options.stateDir, this.#worker).catch((err) =>
      this.#log(`${NODE_FILE} not saved: ${err.message}`),
    )
    // The new manager keeps this worker's session (for its logs) from the registration.
    void this.#client
      .call('dispatcher.register', { info: this.info(), addr: saved.advertiseHost })
      .catch((err: Error) => this.#log(`registration with ${next.control} failed: ${err.message}`))
  }

  /** Registers again, so that the managers see this node's TLS as it is now. */
  async #reportTls(): Promise<void> {
    const addr = (this.#worker ?? (await readSavedNode(this.options.stateDir)))?.advertiseHost ?? ''
    try {
      if (this.manager) await this.manager.dispatcher.register(this.nodeId, this.info(), addr)
      else await this.#client?.call('dispatcher.register', { info: this.info(), addr }, { timeoutMs: 10_000 })
    } catch (err) {
      this.#log(`reporting the TLS state failed: ${(err as Error).message}`)
    }
  }

  #clientTransport: TlsTransport | undefined
  #keys: KeyManager | undefined

  /**
   * Renews this node's certificate now (as the schedule would): a new key, a certificate from the CA for the
   * node's role with the cluster's lifetime, then every TLS listener and client switches to it.
   */
  async renewCertificate(): Promise<void> {
    await this.#tls.renewNow()
  }

  /** Starts this node's agent; waits for its first registration attempt unless `wait` is false. */
  async #startAgent(saved: SavedNode, dispatcher: DispatcherApi, wait: boolean): Promise<void> {
    await this.#describe()
    this.agent = new Agent({
      nodeId: saved.nodeId,
      dispatcher,
      info: this.info(),
      addr: saved.advertiseHost,
      ...(this.options.executor ? { executor: this.options.executor } : {}),
      role: saved.role,
      onRole: (role) => this.#onRole(role),
      onHeartbeat: (answer) => this.#onHeartbeat(answer),
      ...(this.options.taskStepMs ? { stepMs: this.options.taskStepMs } : {}),
      log: (l) => this.#log(`agent ${saved.nodeId}: ${l}`),
    })
    const started = this.agent.start()
    if (this.options.routingMesh !== false) {
      this.mesh = new MeshFollower({
        host: saved.host,
        nodeId: saved.nodeId,
        source: (signal) => dispatcher.mesh(saved.nodeId, signal),
        kernel: kernelIngressOf(this.options.executor),
        log: (l) => this.#log(l),
      })
      this.mesh.start()
    }
    if (wait) await started
  }

  // ---- `docker node promote` / `demote`: the heartbeat answer names the role the managers want.

  #roleChange: Promise<void> | undefined

  #onRole(role: 'manager' | 'worker'): void {
    if (this.#roleChange || this.#busy || this.state !== 'active' || role === this.role) return
    this.#log(`the managers want this node to be a ${role}`)
    this.#roleChange = (role === 'manager' ? this.#becomeManager() : this.#becomeWorker())
      .catch((err: Error) => this.#log(`changing the role to ${role} failed: ${err.message}`))
      .finally(() => {
        this.#roleChange = undefined
      })
  }
  /**
   * Promotion: a new key and a manager certificate from the CA (over this worker's mutual TLS connection),
   * which also makes the node a manager in the store; the leader adds it to raft as a learner, then a
   * voter. The worker's agent stops and the node starts as a manager with the members it was given.
   */
  async #becomeManager(): Promise<void> {
    const saved = await readSavedNode(this.options.stateDir)
    const client = this.#client
    if (saved?.role !== 'worker' || !client) return
    const { next, raftPeers } = await requestPromotion(client, saved)
    await this.#switch(
      async () => {
        await dropManagerState(this.options.stateDir)
        await this.#runManager(next, { raftPeers })
      },
      // Could not start as a manager: carry on as the worker it was (its certificate is still valid);
      // the next heartbeat asks again.
      () => this.#runWorker(saved),
    )
    this.#log(`promoted: ${saved.nodeId} is a manager (raft member ${next.raftId})`)
  }

  /**
   * Demotion: the leader takes this manager out of raft and marks it a worker; until then the other
   * managers refuse it a worker certificate, so it asks again. With the certificate it stops its manager,
   * deletes the raft state and runs as a worker of the manager that answered.
   */
  async #becomeWorker(): Promise<void> {
    const saved = await readSavedNode(this.options.stateDir)
    const manager = this.manager
    if (saved?.role !== 'manager' || !manager) return
    const next = await requestDemotion(manager, saved, () => this.manager === manager, this.#log)
    if (!next) return
    await this.#switch(async () => {
      await dropManagerState(this.options.stateDir)
      await this.#runWorker(next)
    })
    this.#log(`demoted: ${saved.nodeId} is a worker of ${next.controlAddr}`)
  }

  /**
   * Stops what runs now (agent, manager, connection) and starts `next`, with other swarm operations held
   * off; if that fails, stops what it started and runs `fallback` instead.
   */
  async #switch(next: () => Promise<void>, fallback?: () => Promise<void>): Promise<void> {
    if (this.#busy) throw new Error('a swarm operation is in progress on this node')
    this.#busy = true
    try {
      await this.close()
      this.#client = undefined
      try {
        await next()
      } catch (err) {
        if (!fallback) throw err
        this.#log(`${(err as Error).message}; falling back`)
        await this.close()
        this.#client = undefined
        await fallback()
        throw err
      }
    } catch (err) {
      if (!this.agent) this.state = 'error'
      throw err
    } finally {
      this.#busy = false
    }
  }

  async #logs(ids: unknown): Promise<Record<string, LogLine[]>> {
    if (!Array.isArray(ids) || ids.length > 10_000) throw new TypeError('expected a list of task IDs')
    const out: Record<string, LogLine[]> = {}
    const agent = this.agent
    if (!agent) return out
    await Promise.all(
      ids.map(async (id) => {
        if (typeof id === 'string') out[id] = [...(await agent.logs(id))]
      }),
    )
    return out
  }

  /** `docker swarm leave`: a worker stops its agent and forgets the cluster; a manager only with `force`. */
  async leave(force: boolean): Promise<void> {
    // A promotion or demotion the managers asked for finishes first (it never rejects): a leave right after
    // `docker node demote` waits for the node to become a worker rather than being refused as busy.
    if (this.#roleChange) await this.#roleChange
    if (this.state === 'inactive') throw new ApiError(503, MESSAGES.notPartOfSwarm)
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    const refusal = force
      ? undefined
      : leaveRefusal({ locked: this.state === 'locked', manager: this.manager })
    if (refusal) throw new ApiError(503, refusal)
    this.#busy = true
    try {
      await this.close()
      await this.#removeTasks(this.nodeId)
      await rm(join(this.options.stateDir, NODE_FILE), { force: true })
      await dropManagerState(this.options.stateDir)
      this.#client = undefined
      this.#worker = undefined
      this.state = 'inactive'
      this.role = undefined
      this.nodeId = ''
      this.clusterId = ''
      this.remoteManager = ''
    } finally {
      this.#busy = false
    }
  }

  /** A node that leaves the swarm stops and removes its tasks (containers), as a swarm engine does. */
  async #removeTasks(nodeId: string): Promise<void> {
    const executor = this.options.executor
    if (!executor || !nodeId) return
    try {
      for (const id of await executor.adoptable(nodeId)) await executor.removeOrphan(id)
    } catch (err) {
      this.#log(`removing the tasks of ${nodeId} failed: ${(err as Error).message}`)
    }
  }

  async close(): Promise<void> {
    this.#tls.stop()
    this.#keys = undefined
    await this.mesh?.close()
    this.mesh = undefined
    await this.agent?.stop()
    await this.#client?.close()
    await this.manager?.close()
    this.agent = undefined
    this.manager = undefined
  }
}
