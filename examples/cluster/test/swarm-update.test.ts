import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
// Test-only view of a raft node's in-memory log (as the raft package's own simulations read it).
import { coreOf } from '../../../packages/raft/src/internal/inspect.js'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, dumpTasks, joinSwarm, node, ok, stateDir, waitFor } from './helpers.js'
import { createService } from './service-waits.js'

/** A raw Engine API call (for settings the CLI has no flag for). */
async function api(n: ClusterNode, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${n.dockerHost.replace('tcp://', 'http://')}/v1.50${path}`, {
    method,
    ...(body ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}),
  })
}

const snapshots = (name: string) =>
  readdirSync(join(stateDir(name), 'raft')).filter((f) => f.startsWith('snap-'))

describe('docker swarm update settings take effect', () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  /** The cluster object's version right after `swarm init` returned, and whether it had its overlay keys. */
  let atInit: { version: number; keys: number }
  const clusterNow = () =>
    mgr.daemon.manager!.store.view((tx) => {
      const c = tx.find('clusters')[0]!
      return { version: c.meta.version, keys: c.networkBootstrapKeys?.length ?? 0 }
    })
  beforeAll(async () => {
    ;[mgr, wrk] = await Promise.all([node('umgr'), node('uwrk')])
    await ok(mgr, ['swarm', 'init'])
    atInit = clusterNow()
    await joinSwarm(wrk, mgr, 'worker')
  }, 60_000)
  afterAll(() => closeNodes(wrk, mgr))

  it('leaves the swarm object of a new swarm alone after init, so a first update is not out of sequence', () => {
    // The overlay keys are made with the swarm, not by the leader a moment later: a `docker swarm update` or
    // `swarm ca --rotate` right after init read the version that write then made stale.
    expect(atInit.keys).toBeGreaterThan(0)
    expect(clusterNow().version).toBe(atInit.version)
  })

  it('shows the settings in docker info and swarm inspect', async () => {
    const out = await ok(mgr, [
      'swarm',
      'update',
      '--task-history-limit',
      '1',
      '--dispatcher-heartbeat',
      '2s',
      '--snapshot-interval',
      '20',
      '--max-snapshots',
      '2',
    ])
    expect(out.trim()).toBe('Swarm updated.')
    const info = await ok(mgr, ['info'])
    expect(info).toContain('Task History Retention Limit: 1')
    expect(info).toMatch(/Snapshot Interval: 20\n/)
    expect(info).toContain('Number of Old Snapshots to Retain: 2')
    expect(info).toContain('Heartbeat Period: 2 seconds')
    const swarm = async () => (await (await api(mgr, 'GET', '/swarm')).json()) as { Spec: any; Version: any }
    const { Spec: spec, Version: version } = await swarm()
    expect(spec.Raft).toMatchObject({
      SnapshotInterval: 20,
      KeepOldSnapshots: 2,
      LogEntriesForSlowFollowers: 500,
    })
    expect(spec.Dispatcher.HeartbeatPeriod).toBe(2e9)
    // Log entries for slow followers has no CLI flag: the API takes it with the rest of the spec.
    const r = await api(mgr, 'POST', `/swarm/update?version=${version.Index}`, {
      ...spec,
      Raft: { ...spec.Raft, LogEntriesForSlowFollowers: 5 },
    })
    expect(r.status).toBe(200)
    expect((await swarm()).Spec.Raft.LogEntriesForSlowFollowers).toBe(5)
    const bad = await docker(mgr, ['swarm', 'update', '--dispatcher-heartbeat', '-1s'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain('heartbeat time period cannot be a negative duration')
  })

  it('sends the heartbeat period to the agents', async () => {
    const answer = await mgr.daemon.manager!.dispatcher.heartbeat(wrk.daemon.nodeId)
    expect(answer.periodMs).toBe(2000)
    await ok(mgr, ['swarm', 'update', '--dispatcher-heartbeat', '1s'])
    expect((await mgr.daemon.manager!.dispatcher.heartbeat(wrk.daemon.nodeId)).periodMs).toBe(1000)
  })

  /** Updates service hist to image nginx:TAG and waits for its task to run. */
  const updateHist = async (tag: string) => {
    await ok(mgr, ['service', 'update', '-d', '--no-resolve-image', '--image', `nginx:${tag}`, 'hist'])
    await waitFor(
      async () =>
        (await ok(mgr, ['service', 'ps', 'hist', '--format', '{{.Image}} {{.CurrentState}}'])).includes(
          `nginx:${tag} Running`,
        ),
      `nginx:${tag} running`,
      30_000,
      () => dumpTasks(mgr),
    )
  }

  it('reaps task history to the limit', async () => {
    await ok(mgr, ['service', 'create', '-d', '--no-resolve-image', '--name', 'hist', 'nginx:1'])
    const tasks = async () =>
      (await ok(mgr, ['service', 'ps', 'hist', '-q'])).trim().split('\n').filter(Boolean)
    for (const tag of ['2', '3', '4']) await updateHist(tag)
    // One running task and one finished one kept (the default would keep five).
    await waitFor(
      async () => (await tasks()).length === 2,
      'history reaped to 1',
      20_000,
      () => dumpTasks(mgr),
    )
  })

  it('keeps all task history with a negative limit, and max attempts + 1 tasks of a slot with a restart limit', async () => {
    // -1: never reap (swarm's meaning of a negative limit).
    await ok(mgr, ['swarm', 'update', '--task-history-limit', '-1'])
    expect(await ok(mgr, ['info'])).toContain('Task History Retention Limit: -1')
    for (const tag of ['5', '6']) await updateHist(tag)
    const histTasks = async () => (await ok(mgr, ['service', 'ps', 'hist', '-q'])).trim().split('\n')
    // The two kept at the limit of 1, and the two replaced since.
    await waitFor(
      async () => (await histTasks()).length === 4,
      'four tasks of hist',
      20_000,
      () => dumpTasks(mgr),
    )
    // A restart limit keeps max attempts + 1 tasks of the slot (the restart history), over a lower limit.
    await ok(mgr, ['swarm', 'update', '--task-history-limit', '1'])
    await createService(
      mgr,
      'crashy',
      '--restart-condition',
      'on-failure',
      '--restart-max-attempts',
      '2',
      '--restart-delay',
      '100ms',
      '--container-label',
      'com.swarmkit.simulate.exit-code=1',
      '--container-label',
      'com.swarmkit.simulate.exit-after=20',
      '--constraint',
      'node.role==manager',
      'busybox',
    )
    const crashy = async () =>
      (await ok(mgr, ['service', 'ps', 'crashy', '--format', '{{.DesiredState}} {{.CurrentState}}']))
        .trim()
        .split('\n')
    await waitFor(
      async () => {
        const t = await crashy()
        return t.length === 3 && t.every((l) => l.startsWith('Shutdown Failed'))
      },
      'three failed attempts kept',
      30_000,
      () => dumpTasks(mgr),
    )
    // hist is reaped to the limit again; crashy keeps its three.
    await waitFor(
      async () => (await histTasks()).length === 2,
      'hist reaped to 1',
      20_000,
      () => dumpTasks(mgr),
    )
    expect(await crashy()).toHaveLength(3)
    await ok(mgr, ['service', 'rm', 'crashy'])
    // Longer than its waits together (70 s): on a loaded machine a slow step then fails with its own
    // explanation and the task dump, not the run's 30 s test timeout with none.
  }, 120_000)

  it('takes raft snapshots at the interval and keeps the old ones asked for', async () => {
    for (let i = 0; i < 90; i++) {
      const r = await api(mgr, 'POST', '/configs/create', {
        Name: `c${i}`,
        Data: Buffer.from('x').toString('base64'),
      })
      expect(r.status).toBe(201)
    }
    // 90 entries with an interval of 20: four snapshots or more, of which the latest and two old ones stay.
    await waitFor(
      () => snapshots('umgr').length === 3,
      'three snapshot files',
      20_000,
      () => snapshots('umgr').join(),
    )
    for (let i = 0; i < 25; i++) await api(mgr, 'DELETE', `/configs/c${i}`)
    // A snapshot is written beside the apply pipeline, and the oldest file goes once the new one is durable:
    // for a moment there may be one more; then three again.
    await waitFor(
      () => snapshots('umgr').length === 3,
      'three snapshot files after more writes',
      20_000,
      () => snapshots('umgr').join(),
    )
    // Fewer kept: the old ones go with the next write.
    await ok(mgr, ['swarm', 'update', '--max-snapshots', '0', '--snapshot-interval', '10000'])
    await api(mgr, 'DELETE', '/configs/c25')
    await waitFor(() => snapshots('umgr').length === 1, 'only the latest snapshot', 20_000)
  })
  it('keeps the log entries for slow followers behind each snapshot (LogEntriesForSlowFollowers)', async () => {
    const log = () => coreOf.get(mgr.daemon.manager!.raft)!()!.log
    /** Entries the leader still holds in its log, for a follower that lags. */
    const held = () => log().lastIndex() - log().snapIndex
    const setRaft = async (raft: Record<string, number>) => {
      const { Spec: spec, Version: version } = (await (await api(mgr, 'GET', '/swarm')).json()) as {
        Spec: any
        Version: { Index: number }
      }
      const r = await api(mgr, 'POST', `/swarm/update?version=${version.Index}`, {
        ...spec,
        Raft: { ...spec.Raft, ...raft },
      })
      expect(r.status).toBe(200)
    }
    const writes = async (prefix: string, n: number) => {
      for (let i = 0; i < n; i++)
        expect(
          (await api(mgr, 'POST', '/configs/create', { Name: `${prefix}${i}`, Data: 'eA==' })).status,
        ).toBe(201)
    }
    // Few kept: after a snapshot (every 20 entries) the log holds at most those 5 and the entries since.
    await setRaft({ SnapshotInterval: 20, LogEntriesForSlowFollowers: 5 })
    await writes('few', 45)
    await waitFor(
      () => log().snapIndex > 0 && held() <= 5 + 20,
      'the log compacted to 5 behind',
      20_000,
      () => String(held()),
    )
    // Many kept: the log is no longer compacted past the last 300 entries, snapshots or not.
    await setRaft({ LogEntriesForSlowFollowers: 300 })
    const before = snapshots('umgr').join()
    await writes('many', 70)
    await waitFor(() => snapshots('umgr').join() !== before, 'a snapshot taken since', 20_000)
    expect(held()).toBeGreaterThanOrEqual(70)
  })
})
