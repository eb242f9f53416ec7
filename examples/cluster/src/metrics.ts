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
  const reg = [registry]

  // ---- raft
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
  gaugeOf('swarm_raft_term', 'Current raft term of this manager.', (m) => m.raft.term)
  gaugeOf('swarm_raft_leader', '1 if this manager is the raft leader, else 0.', (m) => (m.isLeader ? 1 : 0))
  gaugeOf('swarm_raft_commit_index', 'Highest raft log index known committed.', (m) => m.raft.commitIndex)
  gaugeOf(
    'swarm_raft_apply_index',
    'Highest raft log index applied to the store.',
    (m) => m.raft.appliedIndex,
  )
  const leaderChanges = new Counter({
    name: 'swarm_raft_leader_changes_total',
    help: 'Leader changes seen by this manager.',
    registers: reg,
  })
  const proposals = new Histogram({
    name: 'swarm_raft_proposal_duration_seconds',
    help: 'Time from a raft proposal to its commit and application on this manager.',
    buckets: LATENCY,
    registers: reg,
  })
  const failedProposals = new Counter({
    name: 'swarm_raft_proposals_failed_total',
    help: 'Raft proposals that failed (no leader, leadership lost, refused).',
    registers: reg,
  })
  const applies = new Histogram({
    name: 'swarm_raft_apply_duration_seconds',
    help: 'Time to apply one committed entry to the store.',
    buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
    registers: reg,
  })
  const snapshots = new Counter({
    name: 'swarm_raft_snapshots_total',
    help: 'Raft snapshots taken by this manager.',
    registers: reg,
  })
  const snapshotBytes = new Gauge({
    name: 'swarm_raft_snapshot_size_bytes',
    help: 'Size of the latest raft snapshot taken.',
    registers: reg,
  })
  const walSync = new Histogram({
    name: 'swarm_raft_wal_fsync_duration_seconds',
    help: 'Duration of durable raft log writes (O_DSYNC: the WAL fsync).',
    buckets: LATENCY,
    registers: reg,
  })
  const walBytes = new Counter({
    name: 'swarm_raft_wal_written_bytes_total',
    help: 'Raft log bytes written durably.',
    registers: reg,
  })

  // ---- store
  new Gauge({
    name: 'swarm_store_objects',
    help: 'Objects per table of this manager replica.',
    labelNames: ['table'],
    registers: reg,
    collect() {
      this.reset()
      const m = manager()
      if (!m) return
      m.store.view((tx) => {
        for (const t of TABLES) this.set({ table: t }, tx.find(t).length)
      })
    },
  })
  const commits = new Histogram({
    name: 'swarm_store_transaction_duration_seconds',
    help: 'Time from a store transaction to its commit (through raft) on this manager.',
    buckets: LATENCY,
    registers: reg,
  })

  // ---- dispatcher
  gaugeOf(
    'swarm_dispatcher_sessions',
    'Worker sessions connected to this manager.',
    (m) => m.dispatcher.sessions.size,
  )
  const heartbeats = new Counter({
    name: 'swarm_dispatcher_heartbeats_total',
    help: 'Heartbeats received by this manager.',
    registers: reg,
  })
  const statusUpdates = new Counter({
    name: 'swarm_dispatcher_status_updates_total',
    help: 'Task status changes reported to this manager.',
    registers: reg,
  })
  const statusBatches = new Histogram({
    name: 'swarm_dispatcher_status_batch_size',
    help: 'Task status changes per report.',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: reg,
  })

  // ---- scheduler, orchestrators, tasks, nodes
  const countBy = <K extends string>(items: readonly { key: K }[]) => {
    const out = new Map<K, number>()
    for (const { key } of items) out.set(key, (out.get(key) ?? 0) + 1)
    return out
  }
  gaugeOf('swarm_scheduler_pending_tasks', 'Tasks waiting for the scheduler to place them.', (m) =>
    m.store.view((tx) => tx.find('tasks', undefined, (t) => t.status.state === 'pending').length),
  )
  const scheduling = new Histogram({
    name: 'swarm_scheduler_scheduling_latency_seconds',
    help: 'Time from a task being created to its assignment to a node (observed on the leader).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: reg,
  })
  new Gauge({
    name: 'swarm_tasks',
    help: 'Tasks by current state.',
    labelNames: ['state'],
    registers: reg,
    collect() {
      this.reset()
      const m = manager()
      if (!m) return
      const byState = m.store.view((tx) => countBy(tx.find('tasks').map((t) => ({ key: t.status.state }))))
      for (const [state, n] of byState) this.set({ state }, n)
    },
  })
  new Gauge({
    name: 'swarm_nodes',
    help: 'Nodes by state.',
    labelNames: ['state'],
    registers: reg,
    collect() {
      this.reset()
      const m = manager()
      if (!m) return
      const byState = m.store.view((tx) => countBy(tx.find('nodes').map((n) => ({ key: n.status.state }))))
      for (const [state, n] of byState) this.set({ state }, n)
    },
  })
  new Gauge({
    name: 'swarm_services',
    help: 'Services by mode (what the orchestrators keep running).',
    labelNames: ['mode'],
    registers: reg,
    collect() {
      this.reset()
      const m = manager()
      if (!m) return
      const byMode = m.store.view((tx) =>
        countBy(tx.find('services').map((s) => ({ key: Object.keys(s.spec.mode)[0]! }))),
      )
      for (const [mode, n] of byMode) this.set({ mode }, n)
    },
  })

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
