// One node of the reference cluster, as the docker CLI sees an engine: inactive until `docker swarm init`
// (it becomes the first manager) or `docker swarm join` (it becomes a worker), then a manager or a worker
// with an agent that runs the tasks assigned to it on the simulated executor.

import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { cpus, hostname as osHostname, totalmem } from 'node:os'
import { join } from 'node:path'
import type { MeshService } from '@swarmkit/overlay'
import * as pki from '@swarmkit/pki'
import { isStoreError, KeyManager, parseUnlockKey, type SpecLimits } from '@swarmkit/store'
import { type RpcClient, rpcClient, type TlsTransport, tlsTransport } from '@swarmkit/transport'
import { Agent, type LogLine } from './agent.js'
import type { Assignment, DispatcherApi, HeartbeatAnswer, NodeInfo, TaskStatusUpdate } from './dispatcher.js'
import { ApiError, MESSAGES } from './errors.js'
import { joinCluster } from './join.js'
import { ENGINE_VERSION, freePort, Manager, type ManagerOptions, type RenewAnswer } from './manager.js'
import type { ManagerObserver } from './observer.js'
import { leaveRefusal } from './quorum.js'
import { MeshFollower } from './routing.js'
import { issuedBy, nodeTlsInfo, sameCertificates } from './tls-info.js'

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
  /**
   * Raft entries applied between two snapshots (after which the log is compacted), like the cluster spec's
   * `Raft.SnapshotInterval`. Default 10,000.
   */
  readonly snapshotInterval?: number
  /** Time per step of the simulated executor. Default 50 ms. */
  readonly taskStepMs?: number
  /**
   * Run the routing mesh: answer on every published port of every service at this node's listen address
   * and forward to the services' tasks. Default true.
   */
  readonly routingMesh?: boolean
  /**
   * What one service spec may ask for when this node is a manager (`--max-replicas`); a spec over it is
   * refused with a 400 naming the limit. Default: the store's `DEFAULT_SPEC_LIMITS` (10,000 tasks per service).
   */
  readonly specLimits?: Partial<SpecLimits>
  readonly log?: (line: string) => void
  /** Metrics and debug hooks handed to every manager this node runs (src/observer.ts). */
  readonly observer?: ManagerObserver
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

/** The agent's view of a dispatcher on another manager, over mutual TLS (the connection of the moment). */
function remoteDispatcher(client: () => RpcClient): DispatcherApi {
  return {
    register: (_id, info, addr) => client().call('dispatcher.register', { info, addr }),
    // A manager that does not answer within 2 s counts as gone (the worker then fails over).
    heartbeat: (_id) => client().call('dispatcher.heartbeat', {}, { timeoutMs: 2000 }),
    assignments: (_id, signal) =>
      client().stream('dispatcher.assignments', {}, { signal }) as AsyncIterable<Assignment[]>,
    updateStatus: (_id, updates: readonly TaskStatusUpdate[]) => client().call('dispatcher.status', updates),
    mesh: (_id, signal) => client().stream('dispatcher.mesh', {}, { signal }) as AsyncIterable<MeshService[]>,
  }
}

/** The managers list of a heartbeat answer, checked (it comes from the network). */
function checkManagers(list: unknown): { addr: string; control: string }[] | undefined {
  if (!Array.isArray(list) || list.length > 100) return undefined
  const ok = (a: unknown) => typeof a === 'string' && a.length <= 300 && /^[\w.:[\]-]*:\d{1,5}$/.test(a)
  const out = list.filter(
    (m) => typeof m === 'object' && m !== null && ok(m.control) && (m.addr === '' || ok(m.addr)),
  )
  return out.map((m) => ({ addr: String(m.addr), control: String(m.control) }))
}

/** What a node keeps in its state directory to come back after a restart (mode 0600, like swarm's key files). */
interface SavedNode {
  version: 1
  nodeId: string
  clusterId: string
  role: 'manager' | 'worker'
  /** A worker's private key (PKCS#8 PEM; a manager keeps it in its key file), certificate chain and roots. */
  key: string
  certificate: string
  roots: string
  /** The join listener's host and port (a manager's), and the host advertised to others. */
  host: string
  port: number
  advertiseHost: string
  raftAddr: string
  /** A manager's raft member ID when it is not the node ID (a promoted worker). */
  raftId?: string
  /** A manager's control server port (0 before the first start). */
  controlPort?: number
  /** A worker's manager (dispatcher) address. */
  controlAddr?: string
  remoteManager?: string
  /** The managers a worker heard of last (join and dispatcher addresses), to fail over to. */
  managers?: { addr: string; control: string }[]
}

const NODE_FILE = 'node.json'
/** Failed heartbeats in a row after which a worker turns to another manager. */
const FAILOVER_AFTER = 1
const TLS_KEY_SECRET = 'node-tls-key'
/** A renewed key, written before the certificate that needs it (see `#renewCertificate`). */
const TLS_KEY_NEXT_SECRET = 'node-tls-key-next'

/** The manager's TLS key from its key file: the one that matches its saved certificate. */
function managerTlsKey(keys: KeyManager, certificate: string): Uint8Array {
  const want = pki.parseCertificates(certificate)[0]?.publicKey
  for (const name of [TLS_KEY_SECRET, TLS_KEY_NEXT_SECRET]) {
    const pem = keys.readSecret(name)
    if (!pem || !want) continue
    const pub = pki.decodePrivateKeyPem(new TextDecoder().decode(pem)).publicKey
    if (Buffer.compare(pub, want) === 0) return pem
  }
  throw new Error("the key file holds no TLS key for this manager's certificate")
}
const raftHostOf = (host: string) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host)

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
  }

  info(): NodeInfo {
    return {
      hostname: this.hostname,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: cpus().length * 1e9, memoryBytes: totalmem() },
      engineVersion: ENGINE_VERSION,
      ...(this.#tlsState ? { tls: nodeTlsInfo(this.#tlsState.certificate, this.#tlsState.roots) } : {}),
    }
  }

  /** The manager, or the daemon's error for this node's state (503, as moby answers). */
  requireManager(): Manager {
    if (this.manager) return this.manager
    if (this.state === 'locked') throw new ApiError(503, MESSAGES.locked)
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
      const saved = await this.#readSaved()
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
      const remotes = Array.isArray(body.RemoteAddrs)
        ? body.RemoteAddrs.filter((a) => typeof a === 'string')
        : []
      if (remotes.length === 0) throw new ApiError(400, 'at least 1 RemoteAddr is required to join')
      if (typeof body.JoinToken !== 'string' || body.JoinToken.length === 0)
        throw new ApiError(400, 'a join token is required')
      const { host, port, advertiseHost } = this.#addresses(body)
      const raftAddr = `${raftHostOf(host)}:${await freePort(raftHostOf(host))}`
      let joined: Awaited<ReturnType<typeof joinCluster>> | undefined
      let lastError: unknown
      let remoteManager = ''
      for (const remote of remotes as string[]) {
        try {
          joined = await joinCluster(remote, body.JoinToken, {
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
    const saved = await this.#readSaved()
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

  /** The node file a previous process left in the state directory (undefined if there is none). */
  async #readSaved(): Promise<SavedNode | undefined> {
    let text: string
    try {
      text = await readFile(join(this.options.stateDir, NODE_FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    if (text.length > 256 * 1024) throw new Error(`${NODE_FILE} is too large`)
    const saved = JSON.parse(text) as SavedNode
    if (saved?.version !== 1 || (saved.role !== 'manager' && saved.role !== 'worker'))
      throw new Error(`${NODE_FILE}: not a node file of this version`)
    return saved
  }

  #credentials(saved: SavedNode): pki.NodeCredentials {
    return {
      identity: {
        nodeId: saved.nodeId,
        role: saved.role === 'manager' ? 'swarm-manager' : 'swarm-worker',
        clusterId: saved.clusterId,
      },
      key: pki.keyPairFromPrivateKey(pki.decodePrivateKeyPem(saved.key).privateKey),
      certificate: saved.certificate,
      roots: saved.roots,
    }
  }

  async #save(saved: SavedNode): Promise<void> {
    const path = join(this.options.stateDir, NODE_FILE)
    await writeFile(`${path}.tmp`, JSON.stringify(saved), { mode: 0o600 })
    await rename(`${path}.tmp`, path)
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
        credentials: this.#credentials({ ...saved, key: new TextDecoder().decode(key) }),
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
    await this.#save({ ...saved, port: joinPort, controlPort })
    this.nodeId = nodeId
    this.clusterId = clusterId
    this.role = 'manager'
    this.manager.localLogs = (ids) => this.#logs(ids)
    this.#keys = keys
    this.#tlsState = { certificate: saved.certificate, roots: saved.roots }
    this.#startRenewal(saved.certificate)
    await this.#startAgent(saved, this.manager.dispatcher, waitForAgent)
  }

  /** `docker swarm unlock`: opens the key file with the unlock key and starts the manager. */
  async unlock(key: unknown): Promise<void> {
    const saved = this.#locked
    if (this.state !== 'locked' || !saved) throw new ApiError(409, 'swarm is not locked')
    if (typeof key !== 'string' || key.length > 256) throw new ApiError(400, 'an unlock key is required')
    // As moby: what is not `SWMKEY-1-` and unpadded base64 is "invalid key string" (400); base64 of the
    // wrong length, like a key of another swarm, is an invalid key (401).
    const b64 = /^SWMKEY-1-([A-Za-z0-9+/]*)$/.exec(key.trim())?.[1]
    if (b64 === undefined || b64.length % 4 === 1) throw new ApiError(400, 'invalid key string')
    try {
      parseUnlockKey(key)
    } catch {
      throw new ApiError(401, 'swarm could not be unlocked: invalid key provided')
    }
    if (this.#busy) throw new ApiError(503, 'a swarm operation is already in progress on this node')
    this.#busy = true
    try {
      await this.#runManager(saved, {}, key)
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
    await this.#save(saved)
    this.#worker = saved
    this.nodeId = nodeId
    this.clusterId = clusterId
    this.role = 'worker'
    this.remoteManager = saved.remoteManager ?? saved.controlAddr
    this.#tlsState = { certificate: saved.certificate, roots: saved.roots }
    this.#startRenewal(saved.certificate)
    await this.#startAgent(
      saved,
      remoteDispatcher(() => this.#client!),
      waitForAgent,
    )
  }

  /** A worker's mutual TLS connection to a manager's dispatcher. */
  #connect(saved: SavedNode, address: string): RpcClient {
    // Kept to hand it a renewed certificate (see `#renewCertificate`).
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
      this.#followTls(answer?.tls)
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
        void this.#save(this.#worker).catch((err) => this.#log(`${NODE_FILE} not saved: ${err.message}`))
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
    void this.#save(this.#worker).catch((err) => this.#log(`${NODE_FILE} not saved: ${err.message}`))
    // The new manager keeps this worker's session (for its logs) from the registration.
    void this.#client
      .call('dispatcher.register', { info: this.info(), addr: saved.advertiseHost })
      .catch((err: Error) => this.#log(`registration with ${next.control} failed: ${err.message}`))
  }

  // ---- root rotation: the heartbeat answer names the root to trust and the CA that issues now.

  /** The certificate chain this node presents and the roots it trusts. */
  #tlsState: { certificate: string; roots: string } | undefined
  #tlsChange: Promise<void> | undefined
  /** The last (wanted, held) TLS state found to agree, so that a steady heartbeat parses no certificates. */
  #tlsSettled = ''

  #followTls(want: HeartbeatAnswer['tls'] | undefined): void {
    const now = this.#tlsState
    if (!want || !now || this.#tlsChange || this.#roleChange || this.#busy || this.state !== 'active') return
    if (typeof want.trustRoot !== 'string' || typeof want.issuer !== 'string') return
    const key = `${want.trustRoot}\0${want.issuer}\0${now.certificate}\0${now.roots}`
    if (key === this.#tlsSettled) return
    let change: Promise<void> | undefined
    if (!sameCertificates(want.trustRoot, now.roots)) change = this.#adoptRoots(want.trustRoot)
    else if (!issuedBy(now.certificate, want.issuer)) {
      this.#log('the cluster issues certificates from a new root key: renewing')
      change = this.renewCertificate()
    }
    if (!change) {
      this.#tlsSettled = key
      return
    }
    this.#tlsChange = change
      .catch((err: Error) => this.#log(`following the cluster's TLS change failed: ${err.message}`))
      .finally(() => {
        this.#tlsChange = undefined
      })
  }

  /** The rotation finished: trust the new root from now on (listeners, clients, the saved node). */
  async #adoptRoots(roots: string): Promise<void> {
    pki.parseCertificates(roots) // refuses what is not a certificate
    const state = this.#tlsState!
    const saved = this.#worker ?? (await this.#readSaved())
    if (!saved) return
    const next = { ...saved, roots }
    if (this.manager) this.manager.setCredentials({ ...this.manager.credentials, roots })
    else {
      this.#worker = next
      this.#clientTransport?.setCredentials({ key: saved.key, cert: saved.certificate, ca: roots })
    }
    await this.#save(next)
    this.#tlsState = { ...state, roots }
    this.#log('the cluster has a new root CA: trusting it')
    await this.#reportTls()
  }

  /** Registers again, so that the managers see this node's TLS as it is now. */
  async #reportTls(): Promise<void> {
    const addr = (this.#worker ?? (await this.#readSaved()))?.advertiseHost ?? ''
    try {
      if (this.manager) await this.manager.dispatcher.register(this.nodeId, this.info(), addr)
      else await this.#client?.call('dispatcher.register', { info: this.info(), addr }, { timeoutMs: 10_000 })
    } catch (err) {
      this.#log(`reporting the TLS state failed: ${(err as Error).message}`)
    }
  }

  // ---- certificate renewal: at a random point between 50% and 80% of the certificate's lifetime.

  #renewal: pki.RenewalScheduler | undefined
  #clientTransport: TlsTransport | undefined
  #keys: KeyManager | undefined

  #startRenewal(certificate: string): void {
    this.#renewal?.stop()
    const renewal = pki.renewalScheduler({
      certificate: pki.parseCertificates(certificate)[0]!,
      renew: () => this.#renewCertificate(),
    })
    renewal.on('renewal:succeeded', (c) =>
      this.#log(`certificate renewed, valid until ${c.notAfter.toISOString()}`),
    )
    renewal.on('renewal:failed', (err, at) =>
      this.#log(
        `certificate renewal failed (${(err as Error).message}); next try ${new Date(at).toISOString()}`,
      ),
    )
    renewal.start()
    this.#renewal = renewal
  }

  /**
   * Renews this node's certificate now (as the schedule would): a new key, a certificate from the CA for the
   * node's role with the cluster's lifetime, then every TLS listener and client switches to it.
   */
  async renewCertificate(): Promise<void> {
    if (!this.#renewal) throw new ApiError(503, MESSAGES.notPartOfSwarm)
    await this.#renewal.renewNow()
  }

  async #renewCertificate(): Promise<pki.CertificateLifetime> {
    const saved = await this.#readSaved()
    if (!saved) throw new Error('this node is not part of a swarm')
    if (saved.role === 'manager') {
      const manager = this.manager
      const keys = this.#keys
      if (!manager || !keys) throw new Error('the manager is not running')
      const creds = await manager.renewOwnCertificate()
      // Crash-safe order: the new key goes into the key file beside the old one before the certificate that
      // needs it is saved; on start the key that matches the saved certificate is used.
      const keyPem = new TextEncoder().encode(pki.encodePrivateKeyPem(creds.key.privateKey))
      await keys.writeSecret(TLS_KEY_NEXT_SECRET, keyPem)
      await this.#save({ ...saved, certificate: creds.certificate })
      await keys.writeSecret(TLS_KEY_SECRET, keyPem)
      this.#tlsState = { certificate: creds.certificate, roots: creds.roots }
      void this.#reportTls()
      return pki.parseCertificates(creds.certificate)[0]!
    }
    const client = this.#client
    if (!client || !this.#clientTransport) throw new Error('the worker is not connected')
    const key = pki.generateKeyPair()
    const answer = (await client.call(
      'ca.renew',
      { csr: pki.createCSR(key.privateKey) },
      { timeoutMs: 10_000 },
    )) as RenewAnswer
    const creds = pki.acceptCertificateResponse(answer, {
      key,
      roots: saved.roots,
      expectedRole: 'swarm-worker',
    })
    const keyPem = pki.encodePrivateKeyPem(key.privateKey)
    // The worker's own record (it may have failed over to another manager since the file was read).
    const current = this.#worker ?? saved
    this.#worker = { ...current, key: keyPem, certificate: creds.certificate }
    await this.#save(this.#worker)
    this.#clientTransport.setCredentials({ key: keyPem, cert: creds.certificate, ca: current.roots })
    this.#tlsState = { certificate: creds.certificate, roots: current.roots }
    void this.#reportTls()
    return pki.parseCertificates(creds.certificate)[0]!
  }

  /** Starts this node's agent; waits for its first registration attempt unless `wait` is false. */
  async #startAgent(saved: SavedNode, dispatcher: DispatcherApi, wait: boolean): Promise<void> {
    this.agent = new Agent({
      nodeId: saved.nodeId,
      dispatcher,
      info: this.info(),
      addr: saved.advertiseHost,
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

  /** Deletes what a manager keeps (raft log, snapshots, key file) so that a later promotion starts clean. */
  async #dropManagerState(): Promise<void> {
    await rm(join(this.options.stateDir, 'raft'), { recursive: true, force: true })
    await rm(join(this.options.stateDir, 'raft-keys'), { force: true })
  }

  /**
   * Promotion: a new key and a manager certificate from the CA (over this worker's mutual TLS connection),
   * which also makes the node a manager in the store; the leader adds it to raft as a learner, then a
   * voter. The worker's agent stops and the node starts as a manager with the members it was given.
   */
  async #becomeManager(): Promise<void> {
    const saved = await this.#readSaved()
    const client = this.#client
    if (saved?.role !== 'worker' || !client) return
    // The raft address chosen when it joined (never bound by a worker), so that a retried promotion names
    // the same one.
    const raftAddr = saved.raftAddr
    const key = pki.generateKeyPair()
    const answer = (await client.call(
      'ca.renew',
      { csr: pki.createCSR(key.privateKey), raftAddr },
      { timeoutMs: 10_000 },
    )) as RenewAnswer
    const credentials = pki.acceptCertificateResponse(answer, {
      key,
      roots: saved.roots,
      expectedRole: 'swarm-manager',
    })
    if (
      typeof answer.raftId !== 'string' ||
      !Array.isArray(answer.raftPeers) ||
      answer.raftPeers.length === 0
    )
      throw new Error('the CA sent no raft membership with the manager certificate')
    const next: SavedNode = {
      ...saved,
      role: 'manager',
      key: pki.encodePrivateKeyPem(key.privateKey),
      certificate: credentials.certificate,
      raftAddr,
      raftId: answer.raftId,
    }
    delete next.controlAddr
    delete next.controlPort
    delete next.remoteManager
    await this.#switch(
      async () => {
        await this.#dropManagerState()
        await this.#runManager(next, { raftPeers: answer.raftPeers! })
      },
      // Could not start as a manager: carry on as the worker it was (its certificate is still valid);
      // the next heartbeat asks again.
      () => this.#runWorker(saved),
    )
    this.#log(`promoted: ${saved.nodeId} is a manager (raft member ${answer.raftId})`)
  }

  /**
   * Demotion: the leader takes this manager out of raft and marks it a worker; until then the other
   * managers refuse it a worker certificate, so it asks again. With the certificate it stops its manager,
   * deletes the raft state and runs as a worker of the manager that answered.
   */
  async #becomeWorker(): Promise<void> {
    const saved = await this.#readSaved()
    const manager = this.manager
    if (saved?.role !== 'manager' || !manager) return
    const key = pki.generateKeyPair()
    const csr = pki.createCSR(key.privateKey)
    let got: Awaited<ReturnType<Manager['renewElsewhere']>> | undefined
    for (let delay = 200; !got; delay = Math.min(2 * delay, 2000)) {
      if (this.manager !== manager) return
      try {
        got = await manager.renewElsewhere({ csr })
      } catch (err) {
        this.#log(`no worker certificate yet: ${(err as Error).message}`)
        await new Promise((r) => setTimeout(r, delay))
      }
    }
    const credentials = pki.acceptCertificateResponse(got.answer, {
      key,
      roots: saved.roots,
      expectedRole: 'swarm-worker',
    })
    const next: SavedNode = {
      ...saved,
      role: 'worker',
      key: pki.encodePrivateKeyPem(key.privateKey),
      certificate: credentials.certificate,
      controlAddr: got.answer.controlAddr,
      remoteManager: got.joinAddr,
    }
    delete next.raftId
    delete next.controlPort
    await this.#switch(async () => {
      await this.#dropManagerState()
      await this.#runWorker(next)
    })
    this.#log(`demoted: ${saved.nodeId} is a worker of ${got.answer.controlAddr}`)
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
    const refusal = force
      ? undefined
      : leaveRefusal({ locked: this.state === 'locked', manager: this.manager })
    if (refusal) throw new ApiError(503, refusal)
    this.#busy = true
    try {
      await this.close()
      await rm(join(this.options.stateDir, NODE_FILE), { force: true })
      await this.#dropManagerState()
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

  async close(): Promise<void> {
    this.#renewal?.stop()
    this.#renewal = undefined
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
