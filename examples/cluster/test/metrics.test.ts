import parse, { type PromFamily } from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, startNode } from '../src/index.js'
import { closeNodes, dumpTasks, joinSwarm, node, ok, stateDir, waitFor } from './helpers.js'

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
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'm',
      '--replicas',
      '3',
      'nginx',
    ])
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
})
