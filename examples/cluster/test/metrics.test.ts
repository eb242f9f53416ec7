import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import parse, { type PromFamily } from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, startNode } from '../src/index.js'
import { closeNodes, dumpTasks, joinSwarm, node, ok, stateDir, waitFor } from './helpers.js'
import { createService } from './service-waits.js'

/** Scrapes `GET /metrics` and parses it with a Prometheus text-format parser. */
async function scrape(n: ClusterNode): Promise<Map<string, PromFamily>> {
  const r = await fetch(n.metricsUrl!)
  expect(r.status).toBe(200)
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return new Map(parse(await r.text()).map((f) => [f.name, f]))
}

/** The value of `name` (with `labels`, if given): a gauge's or counter's value, a histogram's count. */
function value(m: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = m.get(name)
  if (!family) throw new Error(`no metric ${name}`)
  const sample = family.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  if (!sample) return 0
  return Number(sample.value ?? sample.count)
}

describe('Prometheus metrics on --metrics-addr', () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  beforeAll(async () => {
    ;[mgr, wrk] = await Promise.all([
      startNode({
        stateDir: stateDir('pmgr'),
        apiAddress: '127.0.0.1:0',
        hostname: 'pmgr',
        listenAddr: '127.0.0.1:0',
        heartbeatPeriodMs: 1000,
        taskStepMs: 20,
        routingMesh: false,
        metricsAddress: '127.0.0.1:0',
      }),
      node('pwrk'),
    ])
    await ok(mgr, ['swarm', 'init'])
    await joinSwarm(wrk, mgr, 'worker')
  }, 60_000)
  afterAll(() => closeNodes(wrk, mgr))

  it('covers raft, store, dispatcher, scheduler, tasks and API requests', async () => {
    await ok(mgr, ['swarm', 'update', '--snapshot-interval', '10'])
    await createService(mgr, 'm', '--replicas', '3', 'nginx')
    await waitFor(
      async () => value(await scrape(mgr), 'swarm_tasks', { state: 'running' }) === 3,
      'three running tasks',
      30_000,
      () => dumpTasks(mgr),
    )
    // Enough writes for a snapshot at the interval of 10.
    for (let i = 0; i < 12; i++) await ok(mgr, ['config', 'create', `pc${i}`, '-'], 'x')
    const m = await waitFor(async () => {
      const s = await scrape(mgr)
      return (
        value(s, 'swarm_raft_snapshots_total') >= 1 && value(s, 'swarm_dispatcher_heartbeats_total') > 0 && s
      )
    }, 'a snapshot and heartbeats')

    // raft
    expect(value(m, 'swarm_raft_term')).toBeGreaterThanOrEqual(1)
    expect(value(m, 'swarm_raft_leader')).toBe(1)
    expect(value(m, 'swarm_raft_leader_changes_total')).toBeGreaterThanOrEqual(1)
    expect(value(m, 'swarm_raft_commit_index')).toBeGreaterThan(10)
    expect(value(m, 'swarm_raft_apply_index')).toBeGreaterThan(10)
    expect(m.get('swarm_raft_proposal_duration_seconds')!.type).toBe('HISTOGRAM')
    expect(value(m, 'swarm_raft_proposal_duration_seconds')).toBeGreaterThan(10)
    expect(value(m, 'swarm_raft_proposals_failed_total')).toBe(0)
    expect(value(m, 'swarm_raft_apply_duration_seconds')).toBeGreaterThan(10)
    expect(value(m, 'swarm_raft_snapshot_size_bytes')).toBeGreaterThan(100)
    expect(value(m, 'swarm_raft_wal_fsync_duration_seconds')).toBeGreaterThan(0)
    // store
    expect(value(m, 'swarm_store_objects', { table: 'services' })).toBe(1)
    expect(value(m, 'swarm_store_objects', { table: 'tasks' })).toBe(3)
    expect(value(m, 'swarm_store_objects', { table: 'configs' })).toBe(12)
    expect(value(m, 'swarm_store_transaction_duration_seconds')).toBeGreaterThan(10)
    // dispatcher
    expect(value(m, 'swarm_dispatcher_sessions')).toBe(1)
    expect(value(m, 'swarm_dispatcher_status_updates_total')).toBeGreaterThanOrEqual(3 * 4)
    expect(value(m, 'swarm_dispatcher_status_batch_size')).toBeGreaterThan(0)
    // scheduler, orchestrators, tasks
    expect(value(m, 'swarm_scheduler_pending_tasks')).toBe(0)
    expect(value(m, 'swarm_scheduler_scheduling_latency_seconds')).toBeGreaterThanOrEqual(3)
    expect(value(m, 'swarm_tasks', { state: 'running' })).toBe(3)
    expect(value(m, 'swarm_nodes', { state: 'ready' })).toBe(2)
    expect(value(m, 'swarm_services', { mode: 'replicated' })).toBe(1)
    // API
    expect(
      value(m, 'engine_api_requests_total', { method: 'POST', route: '/services/create', status: '201' }),
    ).toBe(1)
    expect(
      value(m, 'engine_api_requests_total', { method: 'POST', route: '/configs/create', status: '201' }),
    ).toBe(12)
    // (The parser folds the series of a labelled histogram into one: only its buckets are read back.)
    const latency = m.get('engine_api_request_duration_seconds')!
    expect(latency.type).toBe('HISTOGRAM')
    expect(Object.keys(latency.metrics[0]!.buckets!)).toContain('+Inf')
    // and the process
    expect(value(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
    const miss = await fetch(mgr.metricsUrl!.replace('/metrics', '/other'))
    expect(miss.status).toBe(404)
  })
  it('moves every family between two scrapes around activity, a leader change included', async () => {
    const a = await scrape(mgr)
    // A task no node can take waits in the scheduler.
    await createService(mgr, 'stuck', '--constraint', 'node.labels.nowhere==1', 'nginx')
    await waitFor(
      async () => value(await scrape(mgr), 'swarm_scheduler_pending_tasks') === 1,
      'one pending task',
      20_000,
    )
    await ok(mgr, ['service', 'rm', 'stuck'])
    await ok(mgr, ['service', 'scale', '-d', 'm=5'])
    for (let i = 0; i < 12; i++) await ok(mgr, ['config', 'create', `pm${i}`, '-'], 'x')
    await waitFor(
      async () => {
        const s = await scrape(mgr)
        return (
          value(s, 'swarm_tasks', { state: 'running' }) === 5 &&
          value(s, 'swarm_raft_snapshots_total') > value(a, 'swarm_raft_snapshots_total')
        )
      },
      'five running tasks and another snapshot',
      30_000,
      () => dumpTasks(mgr),
    )
    // A second manager, and leadership moves to it.
    await ok(mgr, ['node', 'promote', 'pwrk'])
    await waitFor(
      () => mgr.daemon.manager!.raft.members().voters.length === 2 && wrk.daemon.manager !== undefined,
      'pwrk a voter',
      30_000,
    )
    await mgr.daemon.manager!.raft.transferLeadership()
    await waitFor(() => wrk.daemon.manager!.isLeader, 'pwrk the leader', 20_000)
    const b = await waitFor(async () => {
      const s = await scrape(mgr)
      return value(s, 'swarm_raft_leader') === 0 && s
    }, 'the leader gauge down')

    const grew = (name: string, labels: Record<string, string> = {}) => [
      name,
      value(b, name, labels) > value(a, name, labels),
    ]
    for (const name of [
      'swarm_raft_term',
      'swarm_raft_leader_changes_total',
      'swarm_raft_commit_index',
      'swarm_raft_apply_index',
      'swarm_raft_proposal_duration_seconds',
      'swarm_raft_apply_duration_seconds',
      'swarm_raft_snapshots_total',
      'swarm_raft_snapshot_size_bytes',
      'swarm_raft_wal_fsync_duration_seconds',
      'swarm_raft_wal_written_bytes_total',
      'swarm_store_transaction_duration_seconds',
      'swarm_dispatcher_heartbeats_total',
      'swarm_dispatcher_status_updates_total',
      'swarm_dispatcher_status_batch_size',
      'swarm_scheduler_scheduling_latency_seconds',
    ])
      expect(grew(name)).toEqual([name, true])
    expect(grew('swarm_store_objects', { table: 'configs' })).toEqual(['swarm_store_objects', true])
    expect(grew('swarm_tasks', { state: 'running' })).toEqual(['swarm_tasks', true])
    expect(grew('swarm_nodes', { state: 'ready' })).toEqual(['swarm_nodes', false])
    expect(
      value(b, 'engine_api_requests_total', { method: 'POST', route: '/configs/create', status: '201' }) -
        value(a, 'engine_api_requests_total', { method: 'POST', route: '/configs/create', status: '201' }),
    ).toBe(12)
    expect(value(a, 'swarm_raft_leader')).toBe(1)
    expect(value(b, 'swarm_raft_leader')).toBe(0)
    expect(value(b, 'swarm_scheduler_pending_tasks')).toBe(0)
  })
  it('keeps prom-client out of the packages: they report through hooks, the example exports', () => {
    const packages = fileURLToPath(new URL('../../../packages/', import.meta.url))
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      )
    for (const name of readdirSync(packages)) {
      const pkg = readFileSync(join(packages, name, 'package.json'), 'utf8')
      expect([name, pkg.includes('prom-client')]).toEqual([name, false])
      for (const file of sources(join(packages, name, 'src')))
        expect([file, readFileSync(file, 'utf8').includes('prom-client')]).toEqual([file, false])
    }
  })
})
