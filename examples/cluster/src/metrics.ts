// Prometheus metrics of a node (`--metrics-addr`, `GET /metrics`), with prom-client: raft, store, dispatcher,
// scheduler, tasks and the Engine API. The packages stay free of it: raft, the store and the dispatcher report
// through the manager's observer hooks (src/observer.ts); the rest is read from the manager at scrape time.
// One registry per node, so that several nodes in one process (the tests) keep their own.

import { createServer, type Server } from 'node:http'
import type { Task } from '@swarmkit/store'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Daemon } from './daemon.js'
import type { Manager } from './manager.js'
import type { ManagerObserver } from './observer.js'
import { followStore } from './store-follow.js'
import { type StoreTallies, storeTallies } from './store-tallies.js'

const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const TABLES = ['nodes', 'services', 'tasks', 'networks', 'clusters', 'secrets', 'configs'] as const

export interface ClusterMetrics {
  readonly registry: Registry
  /** Hand this to the daemon (`DaemonOptions.observer`): the managers it runs report through it. */
  readonly observer: ManagerObserver
  /** An Engine API request answered: method, route pattern, status, seconds. */
  apiRequest(method: string, route: string, status: number, seconds: number): void
  /** The node whose managers' state (term, indexes, objects, tasks) is read at scrape time. */
  bind(daemon: Daemon): void
  /** The Prometheus text exposition of everything. */
  text(): Promise<string>
}

/** The metrics of one node. */
export function clusterMetrics(): ClusterMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  let daemon: Daemon | undefined
  const manager = (): Manager | undefined => daemon?.manager
  // Counts kept at commit per manager store, not walked at each scrape (store-tallies.ts).
  const talliesOf = new WeakMap<Manager['store'], StoreTallies>()
  const tallies = (m: Manager): StoreTallies => {
    let t = talliesOf.get(m.store)
    if (!t) talliesOf.set(m.store, (t = storeTallies(m.store)))
    return t
  }
  const reg = [registry]

  /** A gauge read from the manager at scrape time (none without a manager). */
  const gaugeOf = (name: string, help: string, read: (m: Manager) => number) =>
    new Gauge({
      name,
      help,
      registers: reg,
      collect() {
        const m = manager()
        if (m) this.set(read(m))
        else this.reset()
      },
    })
  const counter = (name: string, help: string) => new Counter({ name, help, registers: reg })
  const histogram = (name: string, help: string, buckets: number[]) =>
    new Histogram({ name, help, buckets, registers: reg })
  /** A gauge with one label, its values counted from the manager's state at scrape time. */
  const countGauge = (
    name: string,
    help: string,
    label: string,
    count: (m: Manager) => Iterable<readonly [string, number]>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: reg,
      collect() {
        this.reset()
        const m = manager()
        if (!m) return
        for (const [key, n] of count(m)) this.set({ [label]: key }, n)
      },
    })
  const countBy = (keys: readonly string[]) => {
    const out = new Map<string, number>()
    for (const key of keys) out.set(key, (out.get(key) ?? 0) + 1)
    return out
  }

  // ---- raft
  gaugeOf('swarm_raft_term', 'Current raft term of this manager.', (m) => m.raft.term)
  gaugeOf('swarm_raft_leader', '1 if this manager is the raft leader, else 0.', (m) => (m.isLeader ? 1 : 0))
  gaugeOf('swarm_raft_commit_index', 'Highest raft log index known committed.', (m) => m.raft.commitIndex)
  gaugeOf(
    'swarm_raft_apply_index',
    'Highest raft log index applied to the store.',
    (m) => m.raft.appliedIndex,
  )
  const leaderChanges = counter('swarm_raft_leader_changes_total', 'Leader changes seen by this manager.')
  const proposals = histogram(
    'swarm_raft_proposal_duration_seconds',
    'Time from a raft proposal to its commit and application on this manager.',
    LATENCY,
  )
  const failedProposals = counter(
    'swarm_raft_proposals_failed_total',
    'Raft proposals that failed (no leader, leadership lost, refused).',
  )
  const applies = histogram(
    'swarm_raft_apply_duration_seconds',
    'Time to apply one committed entry to the store.',
    [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
  )
  const snapshots = counter('swarm_raft_snapshots_total', 'Raft snapshots taken by this manager.')
  const snapshotBytes = new Gauge({
    name: 'swarm_raft_snapshot_size_bytes',
    help: 'Size of the latest raft snapshot taken.',
    registers: reg,
  })
  const walSync = histogram(
    'swarm_raft_wal_fsync_duration_seconds',
    'Duration of durable raft log writes (O_DSYNC: the WAL fsync).',
    LATENCY,
  )
  const walBytes = counter('swarm_raft_wal_written_bytes_total', 'Raft log bytes written durably.')

  // ---- store
  countGauge('swarm_store_objects', 'Objects per table of this manager replica.', 'table', (m) =>
    TABLES.map((t) => [t, tallies(m).objects(t)] as const),
  )
  const commits = histogram(
    'swarm_store_transaction_duration_seconds',
    'Time from a store transaction to its commit (through raft) on this manager.',
    LATENCY,
  )

  // ---- dispatcher
  gaugeOf(
    'swarm_dispatcher_sessions',
    'Worker sessions connected to this manager.',
    (m) => m.dispatcher.sessions.size,
  )
  const heartbeats = counter('swarm_dispatcher_heartbeats_total', 'Heartbeats received by this manager.')
  const statusUpdates = counter(
    'swarm_dispatcher_status_updates_total',
    'Task status changes reported to this manager.',
  )
  const statusBatches = histogram(
    'swarm_dispatcher_status_batch_size',
    'Task status changes per report.',
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  )

  // ---- scheduler, orchestrators, tasks, nodes
  gaugeOf(
    'swarm_scheduler_pending_tasks',
    'Tasks waiting for the scheduler to place them.',
    (m) => tallies(m).tasksByState().get('pending') ?? 0,
  )
  const scheduling = histogram(
    'swarm_scheduler_scheduling_latency_seconds',
    'Time from a task being created to its assignment to a node (observed on the leader).',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  )
  countGauge('swarm_tasks', 'Tasks by current state.', 'state', (m) => tallies(m).tasksByState())
  countGauge('swarm_nodes', 'Nodes by state.', 'state', (m) =>
    m.store.view((tx) => countBy(tx.find('nodes').map((n) => n.status.state))),
  )
  countGauge('swarm_services', 'Services by mode (what the orchestrators keep running).', 'mode', (m) =>
    m.store.view((tx) => countBy(tx.find('services').map((s) => Object.keys(s.spec.mode)[0]!))),
  )

  // ---- Engine API
  const requests = new Counter({
    name: 'engine_api_requests_total',
    help: 'Engine API requests by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    registers: reg,
  })
  const requestSeconds = new Histogram({
    name: 'engine_api_request_duration_seconds',
    help: 'Engine API request latency by method and route.',
    labelNames: ['method', 'route'],
    buckets: LATENCY,
    registers: reg,
  })

  /** Scheduling latency: a task moving from pending to assigned, on the manager that schedules (the leader). */
  const followScheduling = (m: Manager) => {
    // Ends when the manager closes its store.
    void followStore(
      m.store,
      { table: 'tasks', action: 'update' },
      (e) => {
        if (e.action !== 'update' || !m.isLeader) return
        const was = (e.oldObject as Task).status.state
        const t = e.object as Task
        if (was === 'pending' && t.status.state === 'assigned')
          scheduling.observe(Math.max(0, (t.status.timestamp - t.meta.createdAt) / 1000))
      },
      new AbortController().signal,
    )
  }

  const observer: ManagerObserver = {
    raftProposal: (ms, ok) => (ok ? proposals.observe(ms / 1000) : failedProposals.inc()),
    raftApply: (ms) => applies.observe(ms / 1000),
    raftSnapshot: (bytes) => {
      snapshots.inc()
      snapshotBytes.set(bytes)
    },
    walSync: (ms, bytes) => {
      walSync.observe(ms / 1000)
      walBytes.inc(bytes)
    },
    storeCommit: (ms) => commits.observe(ms / 1000),
    heartbeat: () => heartbeats.inc(),
    statusUpdates: (_node, count) => {
      statusUpdates.inc(count)
      statusBatches.observe(count)
    },
    started: (m) => {
      // The first leader is usually known by the time the manager has started: it counts as a change.
      if (m.raft.leaderId) leaderChanges.inc()
      m.raft.on('leader:change', () => leaderChanges.inc())
      followScheduling(m)
    },
  }

  return {
    registry,
    observer,
    apiRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) })
      requestSeconds.observe({ method, route }, seconds)
    },
    bind(d) {
      daemon = d
    },
    text: () => registry.metrics(),
  }
}

/** Serves `GET /metrics` for `metrics` at `address` (`host:port`, port 0 picks one); resolves with the server. */
export async function serveMetrics(
  metrics: ClusterMetrics,
  address: string,
): Promise<{ server: Server; url: string }> {
  const cut = address.lastIndexOf(':')
  const host = address.slice(0, cut).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(cut + 1))
  if (cut <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError(`--metrics-addr must be host:port, not ${address}`)
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://x').pathname !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n')
      return
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body),
      (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const bound = (server.address() as { port: number }).port
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics` }
}
