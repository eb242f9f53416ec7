// A manager: raft (FileLogStorage, sealed by the store's KeyManager) with the store as its state machine,
// the scheduler and orchestrators on the leader, the CA (its key lives in the cluster object of the
// replicated store), the join listener, and the dispatcher served over mutual TLS to workers.

import { createServer as createNetServer, type Server } from 'node:net'
import { join as joinPath } from 'node:path'
import type { Server as TlsServer } from 'node:tls'
import { type MeshService, rebuildIpam, vniAllocator } from '@swarmkit/overlay'
import * as pki from '@swarmkit/pki'
import { EntryType, FileLogStorage, proposeScoped, RaftNode, scopedStateMachine } from '@swarmkit/raft'
import { createOrchestrator, createScheduler, type Orchestrator, type Scheduler } from '@swarmkit/scheduler'
import {
  type Cluster,
  formatUnlockKey,
  generateId,
  generateUnlockKey,
  type KeyManager,
  MemoryStore,
  type Node,
  parseUnlockKey,
  type RootRotation,
  SEQUENCE_MESSAGE,
  type SpecLimits,
  StoreError,
  type Tx,
} from '@swarmkit/store'
import {
  type PeerIdentity,
  type RpcClient,
  type RpcServer,
  rpcClient,
  rpcServer,
  type TlsTransport,
  tlsTransport,
} from '@swarmkit/transport'
import type { LogLine } from './agent.js'
import { type Assignment, Dispatcher, type NodeInfo, type TaskStatusUpdate } from './dispatcher.js'
import { ClusterEvents } from './events.js'
import { type JoinAnswer, type JoinMessage, listenForJoins } from './join.js'
import { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL } from './labels.js'
import { currentDutyTerm, inDutyScope, scopedStore } from './leader-scope.js'
import { ManagerHealth } from './manager-health.js'
import { type ManagerObserver, observedStateMachine } from './observer.js'
import { reencryptAtRest } from './reencrypt.js'
import { followRaftSettings } from './swarm-settings.js'
import { clusterTlsInfo, nodeTlsInfo } from './tls-info.js'

/** The CA's answer to `ca.renew`: the certificate, and for a promoted node what it needs to start raft. */
export interface RenewAnswer extends pki.CertificateResponse {
  /** The dispatcher of the manager that answered (a demoted node's agent connects there). */
  readonly controlAddr: string
  /** For a manager: its raft member ID and the other members to start with. */
  readonly raftId?: string
  readonly raftPeers?: { id: string; address: string }[]
}

export const ENGINE_VERSION = '28.2.2'
/** Swarm's node certificate lifetime: 90 days. */
export const DEFAULT_CERT_EXPIRY_NS = 90 * 24 * 3600 * 1e9
/** Swarm's shortest node certificate lifetime (`--cert-expiry`): 1 hour. */
export const MIN_CERT_EXPIRY_NS = 3600 * 1e9
export { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL }

/**
 * A root rotation for the cluster object: a new root key and certificate, and the new root cross-signed by the
 * current one, so that certificates issued by the new key chain to the root every node trusts today.
 */
export function startRootRotation(c: Cluster): RootRotation {
  const current = pki.importRootCA({ certificate: c.rootCA.caCert, key: c.rootCA.caKey })
  const r = pki.startRootRotation(current)
  return {
    caCert: r.newCA.pem,
    caKey: pki.encodePrivateKeyPem(r.newCA.privateKey),
    crossSignedCACert: pki.certificatePem(r.crossSigned),
  }
}

export interface NodeIdentityFiles {
  readonly nodeId: string
  readonly clusterId: string
  readonly credentials: pki.NodeCredentials
}

export interface ManagerOptions extends NodeIdentityFiles {
  readonly stateDir: string
  /** The manager's data keys (open and unlocked); the manager owns it from now on. */
  readonly keys: KeyManager
  /** The unlock key `keys` was unlocked with (when autolock is on). */
  readonly unlockKey?: string
  /** Host the cluster listeners bind to. */
  readonly host: string
  /** host:port of the join listener (port 0 picks one). Docker's `--listen-addr`. */
  readonly listenAddr: string
  /** Host other nodes reach this one at. Docker's `--advertise-addr`. */
  readonly advertiseHost: string
  /** Raft members to start with (this one included when bootstrapping). */
  readonly raftPeers?: { id: string; address: string }[]
  /** This manager's raft address (fixed port: other members dial it). */
  readonly raftAddr: string
  /**
   * This manager's raft member ID. Default: the node ID (managers that joined or created the cluster). A
   * promoted worker gets a new one each time, since raft never takes back a removed ID.
   */
  readonly raftId?: string
  /** Set on `docker swarm init`: the cluster is created once this manager leads. */
  readonly bootstrap?: { ca: pki.RootCA; joinTokens: pki.JoinTokens; info: NodeInfo }
  readonly heartbeatPeriodMs?: number
  /** Raft entries between two snapshots (raft's `snapshotThreshold`). Default 10,000. */
  readonly snapshotInterval?: number
  /**
   * `docker swarm init --force-new-cluster`: start from this manager's raft log and snapshot as a
   * one-member cluster (every other member removed, all cluster state kept).
   */
  readonly forceNewCluster?: boolean
  /** Port of the control server (dispatcher); 0 picks one. A restarted manager reuses its old one. */
  readonly controlPort?: number
  /** What one service spec may ask for (the store refuses more). */
  readonly specLimits?: Partial<SpecLimits>
  /** Metrics and debug hooks (src/observer.ts). */
  readonly observer?: ManagerObserver
  readonly log?: (line: string) => void
}

/** Picks a free TCP port on `host` (for listeners whose address must be known before they start). */
export async function freePort(host: string): Promise<number> {
  const server: Server = createNetServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

const toStoreRole = (role: pki.NodeRole) => (role === 'swarm-manager' ? 'manager' : 'worker')

export class Manager {
  readonly nodeId: string
  /** This manager's raft member ID (see `ManagerOptions.raftId`). */
  readonly raftId: string
  readonly clusterId: string
  readonly store: MemoryStore
  readonly raft: RaftNode
  readonly dispatcher: Dispatcher
  /** `docker events`: swarm's events from this manager's replica. */
  readonly events: ClusterEvents
  /** host:port workers and managers join at (shown by `docker swarm join-token`). */
  joinAddr = ''
  controlAddr = ''
  #options: ManagerOptions
  readonly #log: (line: string) => void
  #keys: KeyManager | undefined
  /** The raft log, to re-encrypt it when the data key changes. */
  #storage: FileLogStorage | undefined
  #scheduler: Scheduler | undefined
  #orchestrator: Orchestrator | undefined
  #control: RpcServer | undefined
  #joinServer: TlsServer | undefined
  #ca: pki.CAServer | undefined
  #caPem = ''
  #leading = false
  #leaderClient: { address: string; client: RpcClient; transport: TlsTransport } | undefined
  #closed = false
  /** On the leader: managers' reachability (and a lost manager's readiness) from raft's view. */
  readonly #health: ManagerHealth

  private constructor(options: ManagerOptions, store: MemoryStore, raft: RaftNode, keys: KeyManager) {
    this.nodeId = options.nodeId
    this.raftId = options.raftId ?? options.nodeId
    this.clusterId = options.clusterId
    this.#options = options
    this.#log = options.log ?? (() => {})
    this.store = store
    this.raft = raft
    this.#keys = keys
    this.events = new ClusterEvents(store, { log: this.#log })
    this.#health = new ManagerHealth({ store, raft, log: this.#log })
    this.dispatcher = new Dispatcher({
      store,
      log: this.#log,
      isLeader: () => this.isLeader,
      forwardHeartbeat: (nodeId) => this.#forwardHeartbeat(nodeId),
      ...(options.observer ? { observer: options.observer } : {}),
      canBeReady: (nodeId) => this.#health.reachable(nodeId) !== false,
      ...(options.heartbeatPeriodMs ? { heartbeatPeriodMs: options.heartbeatPeriodMs } : {}),
    })
  }

  static async start(options: ManagerOptions): Promise<Manager> {
    const { nodeId, clusterId, credentials } = options
    const raftId = options.raftId ?? nodeId
    const keys = options.keys
    const obs = options.observer
    const storage = await FileLogStorage.open(joinPath(options.stateDir, 'raft'), {
      nodeId,
      clusterId,
      ...keys.hooks(),
      ...(obs?.walSync ? { onSync: (ms: number, bytes: number) => obs.walSync!(ms, bytes) } : {}),
    })
    // A data key rotation that a crash interrupted is finished before anything else is written.
    await reencryptAtRest(keys, storage)
    if (options.forceNewCluster) await snapshotCommitted(storage, raftId)
    const keyPem = pki.encodePrivateKeyPem(credentials.key.privateKey)
    let raft: RaftNode | undefined
    const store = new MemoryStore({
      ...(options.specLimits ? { limits: options.specLimits } : {}),
      proposer: (command, o) => {
        if (!raft) return Promise.reject(new Error('raft is not running'))
        const started = performance.now()
        // A leader duty's write commits only under the leadership it started with (leader-scope.ts).
        const term = currentDutyTerm()
        const proposed = term === undefined ? raft.propose(command, o) : proposeScoped(raft, term, command, o)
        return proposed.then(
          (r) => {
            obs?.raftProposal?.(performance.now() - started, true)
            return r.result
          },
          (err) => {
            obs?.raftProposal?.(performance.now() - started, false)
            throw err
          },
        )
      },
      ...(obs?.storeCommit
        ? { onCommit: (c: { ms: number; changes: number }) => obs.storeCommit!(c.ms, c.changes) }
        : {}),
    })
    const raftTransport = tlsTransport({
      key: keyPem,
      cert: credentials.certificate,
      ca: credentials.roots,
      authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId }),
    })
    raft = new RaftNode({
      id: raftId,
      peers: options.raftPeers ?? [{ id: raftId, address: options.raftAddr }],
      address: options.raftAddr,
      transport: raftTransport,
      storage,
      stateMachine: scopedStateMachine(observedStateMachine(store, obs)),
      ...(obs?.raftLog ? { logger: obs.raftLog } : {}),
      electionTimeoutMs: [300, 600],
      heartbeatIntervalMs: 60,
      ...(options.snapshotInterval ? { snapshotThreshold: options.snapshotInterval } : {}),
      ...(options.forceNewCluster ? { forceNewCluster: true } : {}),
    })
    const m = new Manager(options, store, raft, keys)
    m.#storage = storage
    m.#tlsTransports.add(raftTransport)
    raft.on('leader:change', (leader, term) => m.#onLeader(leader, term))
    raft.on('error', (err) => m.#log(`raft failed: ${err.message}`))
    await raft.start()
    void followRaftSettings(store, raft, storage, m.#stopWatch.signal)
    try {
      if (options.bootstrap) await m.#bootstrap(options.bootstrap)
      else await m.#caughtUp()
      if (options.forceNewCluster) {
        await m.#waitForLeader()
        await m.#forgetOtherManagers()
      }
      await m.#listen()
    } catch (err) {
      // Leave nothing running on a half-started manager (the caller closes the key file next).
      m.#keys = undefined
      await m.close().catch(() => {})
      throw err
    }
    // A manager that resumes without a quorum (its peers are gone) records its addresses once there is a
    // leader again; one that bootstraps or forces a new cluster leads already.
    const recorded = m.#recordAddresses()
    if (options.bootstrap || options.forceNewCluster) await recorded
    m.#appliedUnlockKey = keys.autolock ? options.unlockKey : undefined
    void m.#followAutolock()
    obs?.started?.(m)
    return m
  }

  #appliedUnlockKey: string | undefined

  /** The unlock key this manager's key file is wrapped under (undefined without autolock). */
  get keyFileUnlockKey(): string | undefined {
    return this.#appliedUnlockKey
  }
  readonly #stopWatch = new AbortController()

  /** The cluster's unlock key while autolock is on. */
  unlockKey(): string | undefined {
    const c = this.cluster()
    const k = c?.spec.encryptionConfig.autoLockManagers
      ? c.unlockKeys.find((u) => u.subsystem === 'manager')
      : undefined
    return k ? formatUnlockKey(k.key) : undefined
  }

  /**
   * Turns autolock on or off for the cluster, or draws a new unlock key (`rotate`), in the same store
   * transaction as `change` (the rest of a `swarm update`). Every manager then re-wraps its key file.
   */
  async updateCluster(
    version: number | undefined,
    autolock: boolean | undefined,
    rotateUnlockKey: boolean,
    change: (c: Cluster) => Cluster = (c) => c,
  ): Promise<void> {
    await this.store.update((tx) => {
      const cur = tx.find('clusters')[0]
      if (!cur) throw new Error('no cluster')
      if (version !== undefined && cur.meta.version !== version)
        throw new StoreError('SEQUENCE', SEQUENCE_MESSAGE)
      let c = change(cur)
      const on = autolock ?? c.spec.encryptionConfig.autoLockManagers
      const others = c.unlockKeys.filter((k) => k.subsystem !== 'manager')
      const had = c.unlockKeys.find((k) => k.subsystem === 'manager')
      if (!on) c = { ...c, unlockKeys: others }
      else if (!had || rotateUnlockKey || !c.spec.encryptionConfig.autoLockManagers) {
        const key = parseUnlockKey(generateUnlockKey())
        c = {
          ...c,
          unlockKeys: [...others, { subsystem: 'manager', key, lamportTime: (had?.lamportTime ?? 0) + 1 }],
        }
      }
      c = {
        ...c,
        spec: { ...c.spec, encryptionConfig: { ...c.spec.encryptionConfig, autoLockManagers: on } },
      }
      tx.update('clusters', c)
    })
  }

  /** Keeps this manager's key file wrapped under the cluster's unlock key (swarm's autolock). */
  async #followAutolock(): Promise<void> {
    const watch = this.store.watch({ table: 'clusters', signal: this.#stopWatch.signal })
    try {
      await this.#syncAutolock()
      for await (const _ of watch) await this.#syncAutolock()
    } catch (err) {
      if (!this.#closed) this.#log(`autolock watch ended: ${(err as Error).message}`)
    }
  }

  async #syncAutolock(): Promise<void> {
    const want = this.unlockKey()
    const keys = this.#keys
    if (!keys || want === this.#appliedUnlockKey) return
    if (want === undefined) await keys.disableAutolock()
    else if (keys.autolock) await keys.rotateUnlockKey(want)
    else await keys.enableAutolock(want)
    this.#appliedUnlockKey = want
    this.#log(want ? 'key file wrapped under the unlock key' : 'autolock off')
    // Both changes above replace the data key: what the old one sealed is written again under the new one
    // (if this fails, the next start finishes it).
    if (this.#storage)
      await reencryptAtRest(keys, this.#storage).then(
        (done) => done && this.#log('raft log and snapshot re-encrypted under the new data key'),
        (err: Error) => this.#log(`re-encryption under the new data key not done: ${err.message}`),
      )
  }

  get isLeader(): boolean {
    return this.raft.leaderId === this.raftId
  }

  /** The cluster object (undefined until the first manager created it). */
  cluster(): Cluster | undefined {
    return this.store.view((tx) => tx.find('clusters')[0])
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopWatch.abort()
    this.events.close()
    this.#stopRoles()
    this.#health.stop()
    this.dispatcher.close()
    await this.#leaderClient?.client.close()
    await Promise.all([...this.#managerClients.values()].map((c) => c.close()))
    await this.#stopLeading()
    await this.#control?.close()
    await new Promise<void>((r) => (this.#joinServer ? this.#joinServer.close(() => r()) : r()))
    await this.raft.stop()
    this.store.close?.()
    this.#keys?.close()
    this.#keys = undefined
  }

  #onLeader(leader: string | null, term: number): void {
    if (this.#closed) return
    const leading = leader === this.raftId
    if (leading === this.#leading) return
    this.#leading = leading
    this.#log(leading ? 'became the leader' : `leader is ${leader ?? 'unknown'}`)
    if (leading) void this.#startLeading(term)
    else {
      this.dispatcher.stopTracking()
      this.#health.stop()
      this.#stopRoles()
      void this.#stopLeading()
    }
  }

  /**
   * Leader duties start once this term's no-op has committed and the store has applied up to it (a read
   * index on the new leader), so they never act on a view older than their leadership; they run, and write,
   * scoped to `term`, and stop as soon as raft reports the step-down.
   */
  async #startLeading(term: number): Promise<void> {
    const stillLeading = () => !this.#closed && this.#leading && this.isLeader && this.raft.term === term
    for (let delay = 20; ; delay = Math.min(2 * delay, 500)) {
      if (!stillLeading()) return
      try {
        await this.raft.readIndex()
        break
      } catch (err) {
        if (!stillLeading()) return
        this.#log(`leader duties of term ${term} wait: ${(err as Error).message}`)
        await new Promise((res) => setTimeout(res, delay))
      }
    }
    if (!stillLeading()) return
    inDutyScope(term, () => this.#startDuties(term))
  }

  #startDuties(term: number): void {
    const store = scopedStore(this.store, term)
    this.#scheduler = createScheduler({ store })
    this.#orchestrator = createOrchestrator({ store })
    this.#scheduler.on('error', (err: unknown) => this.#log(`scheduler: ${(err as Error).message}`))
    this.#orchestrator.on('error', (err: unknown) => this.#log(`orchestrator: ${(err as Error).message}`))
    this.#scheduler.start()
    this.#orchestrator.start()
    this.#caTimer = setInterval(
      () =>
        void this.#finishRootRotation().catch((err: Error) =>
          this.#log(`root rotation not finished: ${err.message}`),
        ),
      this.#options.heartbeatPeriodMs ?? 5000,
    )
    this.#caTimer.unref()
    this.dispatcher.startTracking(term)
    this.#health.start()
    this.#startRoles()
    void this.#markLeader().catch((err) => this.#log(`leader status not recorded: ${err.message}`))
  }

  /** Where the leader's control server listens (each manager records its own in its node object). */
  async #forwardHeartbeat(nodeId: string): Promise<void> {
    const leader = this.raft.leaderId
    if (!leader) throw new Error('no leader')
    const addr = this.store.view(
      (tx) =>
        tx.find('nodes', { role: 'manager' }, (n) => n.managerStatus?.raftId === leader)[0]?.description
          ?.engine.labels[CONTROL_ADDR_LABEL],
    )
    if (!addr) throw new Error(`leader ${leader} has no control address yet`)
    if (this.#leaderClient?.address !== addr) {
      const old = this.#leaderClient
      if (old) {
        this.#tlsTransports.delete(old.transport) // closed with its client: no more credentials to hand it
        void old.client.close()
      }
      const transport = this.#tls(pki.authorizer({ roles: ['swarm-manager'], clusterId: this.clusterId }))
      this.#leaderClient = { address: addr, client: rpcClient({ transport, address: addr }), transport }
    }
    await this.#leaderClient.client.call('dispatcher.seen', { nodeId }, { timeoutMs: 2000 })
  }

  #caTimer: ReturnType<typeof setInterval> | undefined

  /**
   * The leader ends a root rotation once every node that is not down holds a certificate from the new key:
   * the new root becomes the trust anchor, and both join tokens change (they carry the root's digest).
   */
  async #finishRootRotation(): Promise<void> {
    const c = this.cluster()
    const rotation = c?.rootCA.rootRotation
    if (!c || !rotation) return
    const want = clusterTlsInfo(c).certIssuerPublicKey
    const pending = this.store.view((tx) =>
      tx
        .find('nodes')
        .filter(
          (n) =>
            n.status.state !== 'down' &&
            !(
              n.description?.tlsInfo && Buffer.compare(n.description.tlsInfo.certIssuerPublicKey, want) === 0
            ),
        ),
    )
    if (pending.length > 0) return
    const root = pki.importRootCA({ certificate: rotation.caCert, key: rotation.caKey })
    const joinTokens = pki.generateJoinTokens(root.pem)
    await this.store.update((tx) => {
      const cur = tx.get('clusters', c.id)
      if (cur?.rootCA.rootRotation?.caCert !== rotation.caCert) return // changed meanwhile
      const { rootRotation: _done, ...rest } = cur.rootCA
      tx.update('clusters', {
        ...cur,
        rootCA: {
          ...rest,
          caCert: rotation.caCert,
          caKey: rotation.caKey,
          caCertHash: Buffer.from(pki.caDigest(root.pem)).toString('hex'),
          joinTokens,
        },
      })
    })
    this.#log('root rotation finished: the new root is the trust anchor')
  }

  /** This manager's TLS credentials now (renewals and root changes replace them). */
  get credentials(): pki.NodeCredentials {
    return this.#options.credentials
  }

  async #stopLeading(): Promise<void> {
    clearInterval(this.#caTimer)
    this.#caTimer = undefined
    const s = this.#scheduler
    const o = this.#orchestrator
    this.#scheduler = undefined
    this.#orchestrator = undefined
    await Promise.all([s?.stop(), o?.stop()])
  }

  /** Records in the store which manager leads (`docker node ls` MANAGER STATUS). */
  async #markLeader(): Promise<void> {
    await this.store.update((tx) => {
      for (const n of tx.find('nodes', { role: 'manager' })) {
        if (!n.managerStatus) continue
        const leader = n.id === this.nodeId
        if (n.managerStatus.leader !== leader)
          tx.update('nodes', { ...n, managerStatus: { ...n.managerStatus, leader } })
      }
    })
  }

  async #waitForLeader(): Promise<void> {
    if (this.isLeader) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no leader elected in time')), 10_000)
      const on = (leader: string | null) => {
        if (leader !== this.raftId) return
        clearTimeout(timer)
        this.raft.off('leader:change', on)
        resolve()
      }
      this.raft.on('leader:change', on)
    })
  }

  /**
   * A joining (or promoted) manager waits until its replica holds its own node object as a manager (written
   * by the leader at join, or by the CA at promotion).
   */
  async #caughtUp(): Promise<void> {
    const has = () =>
      this.store.view((tx) => tx.get('nodes', this.nodeId)?.managerStatus?.raftId === this.raftId)
    const deadline = Date.now() + 15_000
    while (!has()) {
      if (Date.now() > deadline) throw new Error('this manager did not catch up with the raft log in time')
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  async #bootstrap(b: NonNullable<ManagerOptions['bootstrap']>): Promise<void> {
    await this.#waitForLeader()
    const exported = pki.exportRootCA(b.ca)
    const o = this.#options
    await this.store.update((tx) => {
      tx.create('clusters', {
        id: this.clusterId,
        spec: {
          name: 'default',
          labels: {},
          orchestration: { taskHistoryRetentionLimit: 5 },
          raft: {
            snapshotInterval: o.snapshotInterval ?? 10000,
            keepOldSnapshots: 0,
            logEntriesForSlowFollowers: 500,
            electionTick: 10,
            heartbeatTick: 1,
          },
          dispatcher: { heartbeatPeriod: (o.heartbeatPeriodMs ?? 5000) * 1e6 },
          caConfig: { nodeCertExpiry: DEFAULT_CERT_EXPIRY_NS },
          taskDefaults: {},
          encryptionConfig: { autoLockManagers: false },
        },
        rootCA: {
          caKey: exported.key,
          caCert: exported.certificate,
          caCertHash: Buffer.from(pki.caDigest(b.ca.pem)).toString('hex'),
          joinTokens: { worker: b.joinTokens.worker, manager: b.joinTokens.manager },
        },
        unlockKeys: [],
        defaultAddressPool: ['10.0.0.0/8'],
        subnetSize: 24,
        vxlanUdpPort: 4789,
      })
      tx.create('nodes', {
        id: this.nodeId,
        spec: { labels: {}, role: 'manager', availability: 'active' },
        role: 'manager',
        description: {
          hostname: b.info.hostname,
          platform: b.info.platform,
          resources: b.info.resources,
          engine: {
            engineVersion: b.info.engineVersion,
            labels: { [RAFT_ADDR_LABEL]: o.raftAddr },
            plugins: [],
          },
          tlsInfo: nodeTlsInfo(o.credentials.certificate, o.credentials.roots),
        },
        status: { state: 'ready', addr: o.advertiseHost },
        managerStatus: { raftId: this.raftId, addr: '', leader: true, reachability: 'reachable' },
      })
      createNetwork(tx, { name: 'ingress', labels: {}, driverConfig: { name: 'overlay' }, ingress: true })
    })
  }

  async #listen(): Promise<void> {
    const o = this.#options
    const creds = o.credentials
    const authorize = pki.authorizer({ roles: ['swarm-manager', 'swarm-worker'], clusterId: this.clusterId })
    const roles = ['swarm-manager', 'swarm-worker']
    const nodeOf = (identity: { commonName: string } | undefined) => {
      if (!identity?.commonName) throw new Error('unauthenticated')
      const id = identity.commonName
      if (this.cluster()?.removedNodes?.[id])
        throw new Error(`Permission denied: node ${id} was removed from swarm`)
      return id
    }
    const d = this.dispatcher
    this.#control = rpcServer({
      transport: this.#tls(authorize),
      methods: {
        'dispatcher.register': {
          kind: 'call',
          roles,
          handler: async (p: { info: NodeInfo; addr: string }, ctx) => {
            const id = nodeOf(ctx.identity)
            await d.register(id, p?.info, String(p?.addr ?? ''))
            if (ctx.identity?.organizationalUnit === 'swarm-worker') {
              d.sessions.set(id, ctx.session)
              ctx.session.once('session:close', () => {
                if (d.sessions.get(id) === ctx.session) d.sessions.delete(id)
              })
            }
          },
        },
        'dispatcher.heartbeat': {
          kind: 'call',
          roles,
          handler: (_p, ctx) => d.heartbeat(nodeOf(ctx.identity)),
        },
        'dispatcher.assignments': {
          kind: 'stream',
          roles,
          handler: (_p, ctx): AsyncIterable<Assignment[]> => d.assignments(nodeOf(ctx.identity), ctx.signal),
        },
        'dispatcher.mesh': {
          kind: 'stream',
          roles,
          handler: (_p, ctx): AsyncIterable<MeshService[]> => d.mesh(nodeOf(ctx.identity), ctx.signal),
        },
        'dispatcher.seen': {
          kind: 'call',
          roles: ['swarm-manager'],
          handler: async (p: { nodeId?: unknown }) => {
            if (typeof p?.nodeId !== 'string' || p.nodeId.length > 128)
              throw new TypeError('nodeId: expected a string')
            await d.heartbeat(p.nodeId)
          },
        },
        'manager.logs': {
          kind: 'call',
          roles: ['swarm-manager'],
          handler: (p: { nodeId?: unknown; taskIds?: unknown }) =>
            this.#nodeLogs(p?.nodeId, p?.taskIds, false),
        },
        'dispatcher.status': {
          kind: 'call',
          roles,
          handler: (p: TaskStatusUpdate[], ctx) => d.updateStatus(nodeOf(ctx.identity), p),
        },
        'ca.renew': {
          kind: 'call',
          roles,
          handler: (p: { csr?: unknown; raftAddr?: unknown }, ctx) =>
            this.#renew(nodeOf(ctx.identity), p, ctx.identity?.commonName ?? 'unknown'),
        },
      },
    })
    this.controlAddr = await this.#control.listen(`${o.host}:${o.controlPort ?? 0}`)
    const joined = await listenForJoins(o.listenAddr, creds, (m, source) => this.#handleJoin(m, source))
    this.#joinServer = joined.server
    const port = joined.address.slice(joined.address.lastIndexOf(':') + 1)
    this.joinAddr = `${o.advertiseHost}:${port}`
  }

  /**
   * After `forceNewCluster`: the other managers are no raft members any more (and their IDs never return).
   * They stay in the node list, unreachable, until demoted and removed; without their raft addresses the
   * role reconciler does not try to add them back.
   */
  async #forgetOtherManagers(): Promise<void> {
    await this.store.update((tx) => {
      for (const n of tx.find('nodes', { role: 'manager' })) {
        if (n.id === this.nodeId || !n.managerStatus) continue
        const next: Node = {
          ...n,
          managerStatus: { ...n.managerStatus, leader: false, reachability: 'unreachable' },
        }
        if (n.description) {
          const labels = { ...n.description.engine.labels }
          delete labels[RAFT_ADDR_LABEL]
          next.description = { ...n.description, engine: { ...n.description.engine, labels } }
        }
        tx.update('nodes', next)
      }
    })
  }

  /** Records where this manager is reached (the address `docker swarm join` is given), retrying until done. */
  async #recordAddresses(): Promise<void> {
    for (let delay = 250; !this.#closed; delay = Math.min(2 * delay, 2000)) {
      try {
        await this.#writeAddresses()
        return
      } catch (err) {
        if (this.#closed) return
        this.#log(`addresses not recorded yet: ${(err as Error).message}; retrying`)
        await new Promise((r) => setTimeout(r, delay))
      }
    }
  }

  async #writeAddresses(): Promise<void> {
    await this.store.update((tx) => {
      const n = tx.get('nodes', this.nodeId)
      if (!n?.managerStatus || !n.description) return
      const labels = n.description.engine.labels
      const raftAddr = this.#options.raftAddr
      if (
        n.managerStatus.addr === this.joinAddr &&
        labels[CONTROL_ADDR_LABEL] === this.controlAddr &&
        labels[RAFT_ADDR_LABEL] === raftAddr
      )
        return
      tx.update('nodes', {
        ...n,
        managerStatus: { ...n.managerStatus, addr: this.joinAddr },
        description: {
          ...n.description,
          engine: {
            ...n.description.engine,
            labels: { ...labels, [CONTROL_ADDR_LABEL]: this.controlAddr, [RAFT_ADDR_LABEL]: raftAddr },
          },
        },
      })
    })
  }

  #caServer(cluster: Cluster): pki.CAServer {
    // `docker swarm update --cert-expiry`: certificates issued from now on get the cluster's lifetime.
    const validityMs = Math.round((cluster.spec.caConfig?.nodeCertExpiry ?? DEFAULT_CERT_EXPIRY_NS) / 1e6)
    const rotation = cluster.rootCA.rootRotation
    const key = `${validityMs}\n${cluster.rootCA.caCert}\n${rotation?.caCert ?? ''}`
    if (!this.#ca || this.#caPem !== key) {
      // During a root rotation the new key issues, and its cross-signed certificate goes along with every
      // certificate so that nodes still trusting only the old root accept it; joiners get the old root.
      const ca = rotation
        ? pki.importRootCA({
            certificate: rotation.caCert,
            key: rotation.caKey,
            intermediates: rotation.crossSignedCACert,
          })
        : pki.importRootCA({ certificate: cluster.rootCA.caCert, key: cluster.rootCA.caKey })
      this.#ca = pki.caServer({
        ca,
        roots: cluster.rootCA.caCert,
        certificateValidityMs: validityMs,
        clusterId: this.clusterId,
        joinTokens: () => {
          const c = this.cluster()
          return c ? c.rootCA.joinTokens : { worker: '', manager: '' }
        },
      })
      this.#caPem = key
    }
    return this.#ca
  }

  /** This node's own agent (set by the daemon), for `docker service logs`. */
  localLogs: ((taskIds: string[]) => Promise<Record<string, LogLine[]>>) | undefined

  /**
   * Log lines of tasks on `nodeId`: from this node's agent, a worker connected here, or (when `ask` is set)
   * whichever other manager has it.
   */
  async logs(nodeId: string, taskIds: string[]): Promise<Record<string, LogLine[]>> {
    return this.#nodeLogs(nodeId, taskIds, true)
  }

  async #nodeLogs(nodeId: unknown, taskIds: unknown, ask: boolean): Promise<Record<string, LogLine[]>> {
    if (typeof nodeId !== 'string' || !Array.isArray(taskIds) || taskIds.length > 10_000)
      throw new TypeError('expected { nodeId, taskIds }')
    const ids = taskIds.filter((t): t is string => typeof t === 'string')
    if (nodeId === this.nodeId) return (await this.localLogs?.(ids)) ?? {}
    const session = this.dispatcher.sessions.get(nodeId)
    if (session)
      return (await session.call('agent.logs', ids, { timeoutMs: 5000 })) as Record<string, LogLine[]>
    if (!ask) return {}
    const managers = this.store.view((tx) =>
      tx
        .find('nodes', { role: 'manager' })
        .filter((n) => n.id !== this.nodeId && n.status.state === 'ready')
        .map((n) => n.description?.engine.labels[CONTROL_ADDR_LABEL])
        .filter((a): a is string => !!a),
    )
    for (const address of managers) {
      const client = this.#managerClient(address)
      const got = (await client
        .call('manager.logs', { nodeId, taskIds: ids }, { timeoutMs: 5000 })
        .catch(() => ({}))) as Record<string, LogLine[]>
      if (Object.keys(got).length > 0) return got
    }
    return {}
  }

  readonly #managerClients = new Map<string, RpcClient>()

  /**
   * Asks the other managers (the leader first) for a certificate for this node's desired role
   * (`ca.renew`): how a demoted manager gets its worker certificate. Returns the answer and the join
   * address of the manager that gave it.
   */
  async renewElsewhere(request: { csr: string }): Promise<{ answer: RenewAnswer; joinAddr: string }> {
    const leader = this.raft.leaderId
    const others = this.store.view((tx) =>
      tx
        .find('nodes', { role: 'manager' })
        .filter((n) => n.id !== this.nodeId && n.managerStatus)
        .sort(
          (a, b) => Number(b.managerStatus!.raftId === leader) - Number(a.managerStatus!.raftId === leader),
        ),
    )
    let last: unknown = new Error('no other manager is known')
    for (const n of others) {
      const address = n.description?.engine.labels[CONTROL_ADDR_LABEL]
      if (!address) continue
      try {
        const answer = (await this.#managerClient(address).call('ca.renew', request, {
          timeoutMs: 5000,
        })) as RenewAnswer
        return { answer, joinAddr: n.managerStatus!.addr || address }
      } catch (err) {
        last = err
      }
    }
    throw last
  }

  /** Every mutual TLS transport this manager made, to hand them renewed credentials. */
  readonly #tlsTransports = new Set<TlsTransport>()

  #tls(authorize: (identity: PeerIdentity) => boolean | undefined): TlsTransport {
    const creds = this.#options.credentials
    const t = tlsTransport({
      key: pki.encodePrivateKeyPem(creds.key.privateKey),
      cert: creds.certificate,
      ca: creds.roots,
      authorize,
    })
    this.#tlsTransports.add(t)
    return t
  }

  /**
   * Renews this manager's own certificate with the cluster's CA (for its current role, with the cluster's
   * certificate lifetime) under a new key, and switches every listener and client to it: new handshakes use
   * it, open connections stay. Returns the new credentials for the caller to keep.
   */
  async renewOwnCertificate(): Promise<pki.NodeCredentials> {
    const key = pki.generateKeyPair()
    const answer = await this.#renew(this.nodeId, { csr: pki.createCSR(key.privateKey) }, 'self')
    const creds = pki.acceptCertificateResponse(answer, {
      key,
      roots: this.#options.credentials.roots,
      expectedRole: 'swarm-manager',
    })
    this.setCredentials(creds)
    return creds
  }

  /** Switches every TLS listener and client of this manager to `creds` (see {@link renewOwnCertificate}). */
  setCredentials(creds: pki.NodeCredentials): void {
    this.#options = { ...this.#options, credentials: creds }
    const keyPem = pki.encodePrivateKeyPem(creds.key.privateKey)
    for (const t of this.#tlsTransports)
      t.setCredentials({ key: keyPem, cert: creds.certificate, ca: creds.roots })
    this.#joinServer?.setSecureContext(pki.joinServerTlsOptions(creds))
  }

  #managerClient(address: string): RpcClient {
    let c = this.#managerClients.get(address)
    if (!c) {
      c = rpcClient({
        transport: this.#tls(pki.authorizer({ roles: ['swarm-manager'], clusterId: this.clusterId })),
        address,
      })
      this.#managerClients.set(address, c)
    }
    return c
  }

  readonly #promoting = new Set<string>()

  /**
   * Makes raft learner `id` a voter once it has caught up: raft's promote waits for that, and is asked
   * again (with backoff) for as long as this manager leads and `id` is still a learner, however slow the
   * learner is. One attempt chain per member.
   */
  async #promote(id: string): Promise<void> {
    if (this.#promoting.has(id)) return
    this.#promoting.add(id)
    try {
      for (let attempt = 1, delay = 100; !this.#closed && this.isLeader; attempt++) {
        if (!this.raft.members().learners.includes(id)) return
        try {
          await this.raft.promote(id)
          this.#log(`manager ${id} is a raft voter`)
          return
        } catch (err) {
          if (attempt % 10 === 0) this.#log(`promoting ${id} not done yet: ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, delay))
          delay = Math.min(2 * delay, 2000)
        }
      }
    } finally {
      this.#promoting.delete(id)
    }
  }

  // ---- roles: `docker node promote` / `demote` change a node's spec.role; the leader makes it so.

  #roleWatch: AbortController | undefined
  #roleTimer: ReturnType<typeof setTimeout> | undefined
  #reconciling: Promise<void> | undefined
  #reconcileAgain = false
  #transferring = false
  /** Raft member IDs raft would not take (removed once). */
  readonly #refused = new Set<string>()

  /** On the leader: follows node changes and reconciles raft membership with the managers in the store. */
  #startRoles(): void {
    this.#roleWatch = new AbortController()
    const watch = this.store.watch({ table: 'nodes', signal: this.#roleWatch.signal })
    void (async () => {
      try {
        this.#reconcileRoles()
        for await (const _ of watch) if (watch.pending === 0) this.#reconcileRoles()
      } catch (err) {
        if (!this.#closed && this.#leading) this.#log(`role watch ended: ${(err as Error).message}`)
      }
    })()
  }

  #stopRoles(): void {
    this.#roleWatch?.abort()
    this.#roleWatch = undefined
    clearTimeout(this.#roleTimer)
  }

  /** Runs one reconciliation at a time; a request during a run runs once more after it. */
  #reconcileRoles(): void {
    if (this.#reconciling) {
      this.#reconcileAgain = true
      return
    }
    this.#reconciling = this.#reconcileOnce()
      .catch((err) => this.#log(`role reconciliation failed: ${(err as Error).message}`))
      .then((pending) => {
        this.#reconciling = undefined
        if (this.#closed || !this.#leading) return
        if (this.#reconcileAgain) {
          this.#reconcileAgain = false
          this.#reconcileRoles()
        } else if (pending) {
          // A change that could not be made yet (e.g. removing a voter would cost the quorum): try again.
          clearTimeout(this.#roleTimer)
          this.#roleTimer = setTimeout(() => this.#reconcileRoles(), 500)
          this.#roleTimer.unref?.()
        }
      })
  }

  /**
   * Promoted nodes (role manager, not in raft yet) become learners, then voters; demoted ones (spec.role
   * worker) leave raft and then become workers in the store. The leader hands leadership to another voter
   * before it removes itself. Returns whether work is left for later.
   */
  async #reconcileOnce(): Promise<boolean> {
    const nodes = this.store.view((tx) => tx.find('nodes'))
    const { voters, learners } = this.raft.members()
    const members = new Set([...voters, ...learners])
    let pending = false
    for (const n of nodes) {
      if (this.#closed || !this.isLeader) return false
      const raftId = n.managerStatus?.raftId
      if (n.spec.role === 'manager' && n.role === 'manager' && raftId) {
        if (learners.includes(raftId)) void this.#promote(raftId)
        if (members.has(raftId)) continue
        const address = n.description?.engine.labels[RAFT_ADDR_LABEL]
        if (!address) continue
        if (this.#refused.has(raftId)) continue
        try {
          await this.raft.addMember(raftId, { address })
          this.#log(`node ${n.id} is a raft learner (${raftId} at ${address})`)
          void this.#promote(raftId)
        } catch (err) {
          // Raft refuses an ID it removed once (RangeError): never again. Anything else: try later.
          if (err instanceof RangeError) this.#refused.add(raftId)
          else pending = true
          this.#log(`adding ${n.id} to raft failed: ${(err as Error).message}`)
        }
      } else if (n.spec.role === 'worker' && n.role === 'manager') {
        pending = true
        if (raftId === this.raftId) {
          // The leader is being demoted: another voter takes over and finishes the demotion.
          if (!this.#transferring && voters.length > 1) {
            this.#transferring = true
            void this.raft
              .transferLeadership()
              .catch((err) => this.#log(`leadership transfer failed: ${(err as Error).message}`))
              .finally(() => {
                this.#transferring = false
              })
          }
          continue
        }
        try {
          if (raftId && members.has(raftId)) await this.raft.removeMember(raftId)
          await this.store.update((tx) => {
            const cur = tx.get('nodes', n.id)
            if (cur?.spec.role !== 'worker' || cur.role !== 'manager') return
            const next: Node = { ...cur, role: 'worker' }
            delete next.managerStatus
            if (next.description) {
              const labels = { ...next.description.engine.labels }
              delete labels[RAFT_ADDR_LABEL]
              delete labels[CONTROL_ADDR_LABEL]
              next.description = { ...next.description, engine: { ...next.description.engine, labels } }
            }
            tx.update('nodes', next)
          })
          this.#log(`node ${n.id} demoted: it left raft and is a worker`)
        } catch (err) {
          this.#log(`demoting ${n.id} is not possible yet: ${(err as Error).message}`)
        }
      }
    }
    return pending
  }

  /**
   * `ca.renew` from a node over mutual TLS: a certificate for the node's desired role. A promoted worker
   * gets a manager certificate and becomes a manager in the store (the leader then adds it to raft); a
   * demoted manager gets a worker certificate once the leader has taken it out of raft.
   */
  async #renew(
    nodeId: string,
    p: { csr?: unknown; raftAddr?: unknown },
    source: string,
  ): Promise<RenewAnswer> {
    const cluster = this.cluster()
    if (!cluster) throw new Error('this manager has no cluster yet')
    const node = this.store.view((tx) => tx.get('nodes', nodeId))
    if (!node) throw new Error(`node ${nodeId} not found`)
    const want = node.spec.role
    if (want === 'worker' && node.role === 'manager')
      throw new Error(`node ${nodeId} is still leaving raft; try again`)
    let raftId: string | undefined
    if (want === 'manager') {
      if (node.role === 'manager' && node.managerStatus) raftId = node.managerStatus.raftId
      else {
        if (typeof p?.raftAddr !== 'string' || !/^[\w.:[\]-]{1,300}:\d{1,5}$/.test(p.raftAddr))
          throw new Error('a node promoted to manager must give its raft address')
        raftId = generateId()
        const raftAddr = p.raftAddr
        await this.store.update((tx) => {
          const cur = tx.get('nodes', nodeId)
          if (cur?.spec.role !== 'manager' || cur.role !== 'worker')
            throw new Error(`node ${nodeId} changed while it was promoted; try again`)
          const description = cur.description ?? {
            hostname: '',
            platform: { os: 'linux', architecture: 'x86_64' },
            resources: { nanoCPUs: 0, memoryBytes: 0 },
            engine: { engineVersion: ENGINE_VERSION, labels: {}, plugins: [] },
          }
          tx.update('nodes', {
            ...cur,
            role: 'manager',
            managerStatus: { raftId: raftId!, addr: '', leader: false, reachability: 'reachable' },
            description: {
              ...description,
              engine: {
                ...description.engine,
                labels: { ...description.engine.labels, [RAFT_ADDR_LABEL]: raftAddr },
              },
            },
          })
        })
        this.#log(`node ${nodeId} promoted: manager certificate issued, raft member ${raftId}`)
      }
    }
    const response = this.#caServer(cluster).renew(
      { csr: String(p?.csr ?? '') },
      { source, node: { nodeId, role: want === 'manager' ? 'swarm-manager' : 'swarm-worker' } },
    )
    const raftPeers =
      want === 'manager'
        ? this.store.view((tx) =>
            tx
              .find('nodes', { role: 'manager' })
              .filter((n) => n.id !== nodeId && n.managerStatus)
              .flatMap((n) => {
                const address = n.description?.engine.labels[RAFT_ADDR_LABEL]
                return address ? [{ id: n.managerStatus!.raftId, address }] : []
              }),
          )
        : undefined
    return {
      ...response,
      controlAddr: this.controlAddr,
      ...(raftId ? { raftId } : {}),
      ...(raftPeers ? { raftPeers } : {}),
    }
  }

  async #handleJoin(m: JoinMessage, source: string): Promise<unknown> {
    const cluster = this.cluster()
    if (!cluster) throw new Error('this manager has no cluster yet')
    const ca = this.#caServer(cluster)
    if (m.op === 'rootCA') return ca.getRootCA()
    if (typeof m.hostname !== 'string' || m.hostname.length > 255)
      throw new Error('hostname must be a string')
    const response = ca.join({ csr: m.csr, token: m.token }, { source })
    const role = toStoreRole(response.role)
    if (role === 'manager') {
      if (!this.isLeader) {
        const leader = this.store.view(
          (tx) => tx.find('nodes', { role: 'manager' }, (n) => !!n.managerStatus?.leader)[0],
        )
        throw new Error(
          `join managers through the leader${leader ? ` at ${leader.managerStatus!.addr}` : ''}`,
        )
      }
      if (typeof m.raftAddr !== 'string' || !/^[\w.:[\]-]{1,300}:\d{1,5}$/.test(m.raftAddr))
        throw new Error('a joining manager must give its raft address')
    }
    const addr = typeof m.advertiseAddr === 'string' && m.advertiseAddr ? m.advertiseAddr : source
    // A manager is a raft learner first (it gets the log without voting), promoted to voter once it has
    // caught up (by the role reconciler, which sees the member already there).
    if (role === 'manager') await this.raft.addMember(response.nodeId, { address: m.raftAddr })
    await this.store.update((tx) => {
      const node: Omit<Node, 'meta'> = {
        id: response.nodeId,
        spec: { labels: {}, role, availability: 'active' },
        role,
        description: {
          hostname: m.hostname,
          platform: { os: 'linux', architecture: 'x86_64' },
          resources: { nanoCPUs: 0, memoryBytes: 0 },
          engine: {
            engineVersion: ENGINE_VERSION,
            labels: role === 'manager' ? { [RAFT_ADDR_LABEL]: m.raftAddr } : {},
            plugins: [],
          },
        },
        status: { state: 'unknown', addr: addr.replace(/^::ffff:/, '') },
        ...(role === 'manager'
          ? {
              managerStatus: {
                raftId: response.nodeId,
                addr: '',
                leader: false,
                reachability: 'reachable' as const,
              },
            }
          : {}),
      }
      tx.create('nodes', node)
    })
    let raftPeers: JoinAnswer['raftPeers']
    if (role === 'manager') {
      void this.#promote(response.nodeId)
      raftPeers = [{ id: this.raftId, address: this.#options.raftAddr }]
    }
    this.#log(`node ${response.nodeId} (${m.hostname}) joined as ${role}`)
    const answer: JoinAnswer = {
      ...response,
      controlAddr: this.controlAddr,
      ...(raftPeers ? { raftPeers } : {}),
    }
    return answer
  }
}

/**
 * Before `forceNewCluster`: folds the committed log into one snapshot whose configuration is this manager
 * alone (the other managers recorded as removed). Raft's `forceNewCluster` appends the one-member
 * configuration after the committed entries, but replaying membership entries still in the log would bring
 * the lost managers back as voters, and then the new configuration could never commit.
 */
async function snapshotCommitted(storage: FileLogStorage, nodeId: string): Promise<void> {
  const st = await storage.load()
  const base = st.snapshot?.meta.index ?? 0
  const committed = st.entries.filter((e) => e.index > base && e.index <= st.hardState.commit)
  if (!committed.some((e) => e.type === EntryType.Config)) return
  const store = new MemoryStore()
  if (st.snapshot) store.restore(st.snapshot.data)
  for (const e of committed)
    if (e.type === EntryType.Normal && e.data.length > 0) store.apply(e.data, e.index)
  const others = store.view((tx) =>
    tx
      .find('nodes')
      .filter((n) => n.managerStatus && n.id !== nodeId)
      .map((n) => n.managerStatus!.raftId),
  )
  const last = committed.at(-1)!
  const removed = new Set([...(st.snapshot?.meta.conf.removed ?? []), ...others])
  removed.delete(nodeId)
  await storage.save({
    snapshot: {
      meta: {
        index: last.index,
        term: last.term,
        conf: { voters: [nodeId], learners: [], removed: [...removed] },
      },
      data: store.snapshot(),
    },
  })
  store.close?.()
}

/**
 * Creates a network with its subnet and VXLAN ID allocated (overlay's IPAM and VNI allocators, rebuilt from
 * the networks in the store so that any manager allocates the same way).
 */
export function createNetwork(
  tx: Tx,
  spec: {
    name: string
    labels: Record<string, string>
    driverConfig: { name: string }
    ingress?: boolean
    attachable?: boolean
    internal?: boolean
  },
): string {
  const nets = tx.find('networks')
  const addresses = rebuildIpam({
    subnets: nets.flatMap((n) =>
      (n.ipam?.configs ?? []).map((c) => ({ network: n.id, subnet: c.subnet, gateway: c.gateway ?? '' })),
    ),
    addresses: [],
  })
  const vnis = vniAllocator()
  for (const n of nets) if (n.vni !== undefined) vnis.reserve(n.id, n.vni)
  const id = generateId()
  const { subnet, gateway } = addresses.allocateSubnet(id)
  const vni = vnis.allocate(id)
  tx.create('networks', {
    id,
    spec: { ...spec },
    driverState: { name: spec.driverConfig.name, options: {} },
    vni,
    ipam: { driver: { name: 'default' }, configs: [{ family: 'ipv4', subnet, gateway }] },
  })
  return id
}
