// A manager: raft (FileLogStorage, sealed by the store's KeyManager) with the store as its state machine,
// the scheduler and orchestrators on the leader, the CA (its key lives in the cluster object of the
// replicated store), the join listener, and the dispatcher served over mutual TLS to workers.
//
// This class holds the lifecycle and the leader duties; each part lives in its own module under manager/:
// raft wiring (replication), autolock, the CA and root rotation (ca), certificate renewal (renewal), joins,
// the control server's methods (control), role reconciliation (roles), bootstrap and force-new-cluster.

import type { Server as TlsServer } from 'node:tls'
import * as pki from '@swarmkit/pki'
import type { RaftNode, StepDownInfo } from '@swarmkit/raft'
import {
  type Cluster,
  type ClusterStore,
  type KeyManager,
  SEQUENCE_MESSAGE,
  StoreError,
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
import { Dispatcher } from './dispatcher.js'
import { ClusterEvents } from './events.js'
import { type HeartbeatRelay, heartbeatRelay } from './heartbeat-relay.js'
import { listenForJoins } from './join.js'
import { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL } from './labels.js'
import { inDutyScope } from './leader-scope.js'
import { type LoopStallWatch, watchLoopStalls } from './loop-stalls.js'
import { recordAddresses } from './manager/addresses.js'
import { AutolockFollower, clusterUnlockKey, withAutolock } from './manager/autolock.js'
import { createCluster } from './manager/bootstrap.js'
import { ClusterCA, finishRootRotation } from './manager/ca.js'
import { controlMethods } from './manager/control.js'
import { forgetOtherManagers } from './manager/force-new-cluster.js'
import { type JoinCommits, joinCommits } from './manager/join-commits.js'
import { answerJoin } from './manager/joins.js'
import { nodeLogs } from './manager/logs.js'
import type { ManagerOptions } from './manager/options.js'
import { answerRenewal, type RenewAnswer, renewWithOtherManagers } from './manager/renewal.js'
import { openReplication } from './manager/replication.js'
import { RoleReconciler } from './manager/roles.js'
import { type Duties, WarmDuties } from './manager/warm-duties.js'
import { ManagerHealth } from './manager-health.js'
import { followRaftSettings } from './swarm-settings.js'

// Where these lived before the split: kept importable from here.
export { createNetwork } from './allocator.js'
export { ENGINE_VERSION } from './engine-version.js'
export { freePort } from './free-port.js'
export { DEFAULT_CERT_EXPIRY_NS, MIN_CERT_EXPIRY_NS, startRootRotation } from './manager/ca.js'
export type { ManagerOptions, NodeIdentityFiles } from './manager/options.js'
export type { RenewAnswer } from './manager/renewal.js'
export { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL }

export class Manager {
  readonly nodeId: string
  /** This manager's raft member ID (see `ManagerOptions.raftId`). */
  readonly raftId: string
  readonly clusterId: string
  readonly store: ClusterStore
  readonly raft: RaftNode
  readonly dispatcher: Dispatcher
  /** `docker events`: swarm's events from this manager's replica. */
  readonly events: ClusterEvents
  /** host:port workers and managers join at (shown by `docker swarm join-token`). */
  joinAddr = ''
  controlAddr = ''
  #options: ManagerOptions
  readonly #log: (line: string) => void
  /** Event-loop stalls, logged (a stall past the election timeout can cost the leadership). */
  #stalls: LoopStallWatch | undefined
  #keys: KeyManager | undefined
  readonly #duties: WarmDuties
  #control: RpcServer | undefined
  #joinServer: TlsServer | undefined
  readonly #ca: ClusterCA
  readonly #joinCommits: JoinCommits
  /** On a follower: its workers' heartbeats, handed on to the leader together (heartbeat-relay.ts). */
  readonly #relay: HeartbeatRelay
  #leading = false
  /** The last leader raft named (for the failover trace). */
  #lastLeader: string | undefined
  #leaderClient: { address: string; client: RpcClient; transport: TlsTransport } | undefined
  #closed = false
  /** On the leader: managers' reachability (and a lost manager's readiness) from raft's view. */
  readonly #health: ManagerHealth
  /** On the leader: raft membership follows the roles the store asks for. */
  readonly #roles: RoleReconciler
  #autolock: AutolockFollower | undefined

  private constructor(options: ManagerOptions, store: ClusterStore, raft: RaftNode, keys: KeyManager) {
    this.nodeId = options.nodeId
    this.raftId = options.raftId ?? options.nodeId
    this.clusterId = options.clusterId
    this.#options = options
    this.#log = options.log ?? (() => {})
    this.store = store
    this.raft = raft
    this.#keys = keys
    this.events = new ClusterEvents(store, { log: this.#log })
    // The dead leader's nodes reach no one until they fail over (5-10 s at the default period): a new
    // leader's scheduler places on them last, so that its first passes' work leaves at once.
    this.#duties = new WarmDuties(store, this.#log, (nodeId) => this.dispatcher.unheard(nodeId))
    this.#health = new ManagerHealth({ store, raft, log: this.#log })
    this.dispatcher = new Dispatcher({
      store,
      log: this.#log,
      isLeader: () => this.isLeader,
      forwardHeartbeat: async (nodeId) => this.#relay.seen(nodeId),
      ...(options.observer ? { observer: options.observer } : {}),
      canBeReady: (nodeId) => this.#health.reachable(nodeId) !== false,
      raftHears: (nodeId) => this.#health.reachable(nodeId) === true,
      ...(options.heartbeatPeriodMs ? { heartbeatPeriodMs: options.heartbeatPeriodMs } : {}),
    })
    this.#joinCommits = joinCommits(store)
    this.#relay = heartbeatRelay({
      send: (nodeIds, timeoutMs) => this.#callLeader('dispatcher.heard', { nodeIds }, timeoutMs),
      periodMs: () => this.dispatcher.periodMs,
      log: this.#log,
    })
    this.#ca = new ClusterCA(this.clusterId, () => {
      const c = this.cluster()
      return c ? c.rootCA.joinTokens : { worker: '', manager: '' }
    })
    this.#roles = new RoleReconciler({
      store,
      raft,
      raftId: this.raftId,
      isLeader: () => this.isLeader,
      active: () => !this.#closed && this.#leading,
      closed: () => this.#closed,
      log: this.#log,
    })
  }

  static async start(options: ManagerOptions): Promise<Manager> {
    const { storage, store, raft, raftTransport } = await openReplication(options)
    const keys = options.keys
    const m = new Manager(options, store, raft, keys)
    m.#tlsTransports.add(raftTransport)
    raft.on('leader:change', (leader, term, stepDown) => m.#onLeader(leader, term, stepDown))
    m.#stalls = watchLoopStalls({ log: m.#log })
    raft.on('error', (err) => m.#log(`raft failed: ${err.message}`))
    raft.on('storage:full', (err) => m.#log(`raft: writes refused until space returns: ${err.message}`))
    raft.on('storage:writable', () => m.#log('raft: the disk takes writes again'))
    await raft.start()
    m.#duties.standby()
    void followRaftSettings(store, raft, storage, m.#stopWatch.signal)
    try {
      if (options.bootstrap) await m.#bootstrap()
      else await m.#caughtUp()
      if (options.forceNewCluster) {
        await m.#waitForLeader()
        await forgetOtherManagers(m.store, m.nodeId)
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
    m.#autolock = new AutolockFollower({
      store,
      keys: () => m.#keys,
      storage,
      applied: keys.autolock ? options.unlockKey : undefined,
      signal: m.#stopWatch.signal,
      closed: () => m.#closed,
      log: m.#log,
    })
    void m.#autolock.follow()
    options.observer?.started?.(m)
    return m
  }

  /** The unlock key this manager's key file is wrapped under (undefined without autolock). */
  get keyFileUnlockKey(): string | undefined {
    return this.#autolock?.applied
  }
  readonly #stopWatch = new AbortController()

  /** The cluster's unlock key while autolock is on. */
  unlockKey(): string | undefined {
    return clusterUnlockKey(this.cluster())
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
      tx.update('clusters', withAutolock(change(cur), autolock, rotateUnlockKey))
    })
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
    this.#roles.stop()
    this.#health.stop()
    this.dispatcher.close()
    this.#relay.close()
    await this.#leaderClient?.client.close()
    await Promise.all([...this.#managerClients.values()].map((c) => c.close()))
    await this.#stopLeading()
    this.#stalls?.close()
    await this.#duties.close()
    await this.#control?.close()
    await new Promise<void>((r) => (this.#joinServer ? this.#joinServer.close(() => r()) : r()))
    await this.raft.stop()
    this.store.close?.()
    this.#keys?.close()
    this.#keys = undefined
  }

  #onLeader(leader: string | null, term: number, stepDown?: StepDownInfo): void {
    if (this.#closed) return
    // Every manager's streams: when the first new work leaves after a change of leader (the failover's timeline).
    if (leader && leader !== this.#lastLeader) {
      this.dispatcher.traceFirstAssignment(`the leader change to ${leader} (term ${term})`)
      // A new leader hears at once which nodes this manager serves (it judges them by this manager's relays,
      // and places last on the nodes nobody has told it of: see Dispatcher.unheard).
      if (leader !== this.raftId) this.#relay.handOnRecent(3 * this.dispatcher.periodMs)
    }
    this.#lastLeader = leader ?? this.#lastLeader
    const leading = leader === this.raftId
    if (leading === this.#leading) return
    this.#leading = leading
    // A lost leadership says why (raft's CheckQuorum, a higher term, a transfer, a removal).
    const why = stepDown ? ` (stepped down from term ${stepDown.term}: ${stepDown.text})` : ''
    this.#log(leading ? 'became the leader' : `leader is ${leader ?? 'unknown'}${why}`)
    if (leading) void this.#startLeading(term)
    else {
      this.dispatcher.stopTracking()
      this.#health.stop()
      this.#roles.stop()
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
    const elected = performance.now()
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
    const readIndexMs = performance.now() - elected
    // The pair of an earlier leadership of this manager stands by once its last pass has ended.
    await this.#duties.steppedDown()
    if (!stillLeading()) return
    const { scheduler, orchestrator } = inDutyScope(term, () => this.#startDuties(term))
    // The takeover's timeline, for an operator reading why a failover took as long as it did.
    const since = (t: number) => Math.round(performance.now() - t)
    this.#log(
      `leader duties of term ${term} started after ${since(elected)} ms (read index ${Math.round(readIndexMs)} ms)`,
    )
    orchestrator.once('pass:done', (p) =>
      this.#log(
        `orchestrator's first pass of term ${term}: ${p.changes} changes, ${since(elected)} ms after the election (its own time ${Math.round(p.busyMs)} ms)`,
      ),
    )
    scheduler.once('pass:done', (p) =>
      this.#log(
        `scheduler's first pass of term ${term}: ${p.assigned} assigned, ${since(elected)} ms after the election`,
      ),
    )
    this.#traceTakeover(term, elected, scheduler)
  }

  /**
   * For the first 10 s of a leadership: where each scheduler pass placed its tasks (nodes whose agent is
   * connected here, nodes relayed by another manager, nodes not heard since the election, such as the dead
   * leader's before they move), so that a failover's wait for its first new assignment can be read.
   */
  #traceTakeover(term: number, elected: number, scheduler: Duties['scheduler']): void {
    const placed = new Map<string, number>()
    const watch = this.store.watch({
      table: 'tasks',
      filter: (e) => {
        if (e.action === 'update' && !e.oldObject.nodeId && e.object.nodeId) {
          const where = this.dispatcher.whereIs(e.object.nodeId).replace(/^relayed by .*/, 'relayed')
          placed.set(where, (placed.get(where) ?? 0) + 1)
        }
        return false
      },
    })
    const onPass = (p: { assigned: number }) => {
      const ms = Math.round(performance.now() - elected)
      if (p.assigned > 0) {
        const parts = [...placed].map(([where, n]) => `${n} ${where}`).join(', ')
        this.#log(
          `scheduler pass of term ${term}, ${ms} ms after the election: ${p.assigned} assigned (${parts})`,
        )
      }
      placed.clear()
      if (!this.#leading) end()
    }
    // Ended by time, not by a pass: a deposed leader's scheduler makes none, and its watch would stay.
    const end = () => {
      clearTimeout(timer)
      scheduler.off('pass:done', onPass)
      watch.close()
    }
    const timer = setTimeout(end, 10_000)
    timer.unref()
    scheduler.on('pass:done', onPass)
  }

  #startDuties(term: number): Duties {
    const duties = this.#duties.activate(term)
    this.#caTimer = setInterval(
      () =>
        void finishRootRotation(this.store, this.#log).catch((err: Error) =>
          this.#log(`root rotation not finished: ${err.message}`),
        ),
      this.#options.heartbeatPeriodMs ?? 5000,
    )
    this.#caTimer.unref()
    this.dispatcher.startTracking(term)
    this.#health.start()
    this.#roles.start()
    void this.#markLeader().catch((err) => this.#log(`leader status not recorded: ${err.message}`))
    return duties
  }

  /** Calls the leader's control server (each manager records its address in its node object). */
  async #callLeader(method: string, params: unknown, timeoutMs: number): Promise<void> {
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
    await this.#leaderClient.client.call(method, params, { timeoutMs })
  }

  #caTimer: ReturnType<typeof setInterval> | undefined

  /** This manager's TLS credentials now (renewals and root changes replace them). */
  get credentials(): pki.NodeCredentials {
    return this.#options.credentials
  }

  async #stopLeading(): Promise<void> {
    clearInterval(this.#caTimer)
    this.#caTimer = undefined
    await this.#duties.stepDown()
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

  async #bootstrap(): Promise<void> {
    await this.#waitForLeader()
    await this.store.update((tx) => createCluster(tx, this.#options, this.raftId))
  }

  async #listen(): Promise<void> {
    const o = this.#options
    const creds = o.credentials
    const authorize = pki.authorizer({ roles: ['swarm-manager', 'swarm-worker'], clusterId: this.clusterId })
    this.#control = rpcServer({
      transport: this.#tls(authorize),
      methods: controlMethods({
        dispatcher: this.dispatcher,
        store: this.store,
        cluster: () => this.cluster(),
        nodeLogs: (nodeId, taskIds, ask) => this.#nodeLogs(nodeId, taskIds, ask),
        renew: (nodeId, p, source) => answerRenewal(this.#context(), nodeId, p, source),
      }),
    })
    this.controlAddr = await this.#control.listen(`${o.host}:${o.controlPort ?? 0}`)
    const joined = await listenForJoins(o.listenAddr, creds, (m, source) =>
      answerJoin(this.#context(), m, source),
    )
    this.#joinServer = joined.server
    const port = joined.address.slice(joined.address.lastIndexOf(':') + 1)
    this.joinAddr = `${o.advertiseHost}:${port}`
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
    const addresses = { join: this.joinAddr, control: this.controlAddr, raft: this.#options.raftAddr }
    await this.store.update((tx) => recordAddresses(tx, this.nodeId, addresses))
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

  #nodeLogs(nodeId: unknown, taskIds: unknown, ask: boolean): Promise<Record<string, LogLine[]>> {
    return nodeLogs(this.#context(), nodeId, taskIds, ask)
  }

  /** What the modules under manager/ act with (each takes the part it needs). */
  #context() {
    return {
      nodeId: this.nodeId,
      raftId: this.raftId,
      raftAddr: this.#options.raftAddr,
      store: this.store,
      raft: this.raft,
      ca: this.#ca,
      joinCommits: this.#joinCommits,
      dispatcher: this.dispatcher,
      localLogs: this.localLogs,
      controlAddr: () => this.controlAddr,
      isLeader: () => this.isLeader,
      promote: (id: string) => this.#roles.promote(id),
      managerClient: (address: string) => this.#managerClient(address),
      log: this.#log,
    }
  }

  readonly #managerClients = new Map<string, RpcClient>()

  /**
   * Asks the other managers (the leader first) for a certificate for this node's desired role
   * (`ca.renew`): how a demoted manager gets its worker certificate. Returns the answer and the join
   * address of the manager that gave it.
   */
  renewElsewhere(request: { csr: string }): Promise<{ answer: RenewAnswer; joinAddr: string }> {
    return renewWithOtherManagers(this.#context(), request)
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
    const answer = await answerRenewal(
      this.#context(),
      this.nodeId,
      { csr: pki.createCSR(key.privateKey) },
      'self',
    )
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
}
