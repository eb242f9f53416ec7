// Orchestration that follows what tasks really do, driven through the docker CLI and the simulated
// executor's labels (a task that exits non-zero, turns unhealthy, or cannot be prepared).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, SIMULATE_LABELS } from '../src/index.js'
import { closeNodes, dumpTasks, initSwarm, ok, waitFor } from './helpers.js'
import { createService, waitServiceLs, waitUpdateState } from './service-waits.js'

describe('orchestration follows task outcomes', () => {
  let n: ClusterNode
  beforeAll(async () => {
    n = await initSwarm('mgr1')
  })
  afterAll(() => closeNodes(n))

  /** `docker service ps` rows: name|desired|current state|error (which the CLI quotes with --no-trunc). */
  const ps = async (name: string) =>
    (
      await ok(n, [
        'service',
        'ps',
        name,
        '--no-trunc',
        '--format',
        '{{.Name}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}',
      ])
    )
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|'))

  /** `service update` flags that make the new tasks exit 1 soon after they start. */
  const failingTasks = [
    '--container-label-add',
    `${SIMULATE_LABELS.exitCode}=1`,
    '--container-label-add',
    `${SIMULATE_LABELS.exitAfter}=50`,
  ]

  const create = (name: string, args: string[]) => createService(n, name, ...args)

  it('restarts a failing task by its restart policy and stops at max attempts', async () => {
    await create('crash', [
      '--container-label',
      `${SIMULATE_LABELS.exitCode}=1`,
      '--container-label',
      `${SIMULATE_LABELS.exitAfter}=20`,
      '--restart-condition',
      'on-failure',
      '--restart-delay',
      '100ms',
      '--restart-max-attempts',
      '2',
      'busybox',
    ])
    // The first run and two restarts fail; then nothing is desired running any more.
    const rows = await waitFor(
      async () => {
        const r = await ps('crash')
        return r.length === 3 && r.every((x) => x[1] === 'Shutdown' && x[2]!.startsWith('Failed')) && r
      },
      'three failed attempts, none desired running',
      30_000,
      () => dumpTasks(n),
    )
    for (const r of rows) expect(r[3]).toBe('"task: non-zero exit (1)"')
    expect(rows.map((r) => r[0])).toEqual(['crash.1', 'crash.1', 'crash.1'])
  })

  it('replaces a task that turns unhealthy', async () => {
    await create('sick', [
      '--health-cmd',
      'true',
      '--health-interval',
      '1s',
      '--container-label',
      `${SIMULATE_LABELS.health}=unhealthy`,
      '--container-label',
      `${SIMULATE_LABELS.healthAfter}=100`,
      '--restart-delay',
      '100ms',
      '--restart-max-attempts',
      '1',
      'busybox',
    ])
    const rows = await waitFor(
      async () => {
        const r = await ps('sick')
        return r.length === 2 && r.every((x) => x[1] === 'Shutdown' && x[2]!.startsWith('Failed')) && r
      },
      'the unhealthy task and its replacement failed',
      30_000,
      () => dumpTasks(n),
    )
    for (const r of rows) expect(r[3]).toBe('"unhealthy container"')
  })

  it('shows a task whose prepare failed as rejected', async () => {
    await create('bad', [
      '--container-label',
      `${SIMULATE_LABELS.prepareError}=No such image: nope:latest`,
      '--restart-max-attempts',
      '1',
      '--restart-delay',
      '100ms',
      'nope',
    ])
    const rows = await waitFor(
      async () => {
        const r = await ps('bad')
        return r.length === 2 && r.every((x) => x[2]!.startsWith('Rejected')) && r
      },
      'two rejected attempts',
      30_000,
      () => dumpTasks(n),
    )
    expect(rows[0]![3]).toBe('"No such image: nope:latest"')
  })

  it('rolls back an update whose tasks fail (--update-failure-action rollback)', async () => {
    await create('web', ['--replicas', '2', 'nginx:alpine'])
    await waitServiceLs(n, 'web', '2/2')
    await ok(n, [
      'service',
      'update',
      '-d',
      ...failingTasks,
      '--update-failure-action',
      'rollback',
      '--update-monitor',
      '2s',
      'web',
    ])
    const status = await waitUpdateState(n, 'web', 'rollback_completed')
    expect(status).toBe('rollback_completed|rollback completed')
    const labels = (
      await ok(n, [
        'service',
        'inspect',
        'web',
        '--format',
        '{{json .Spec.TaskTemplate.ContainerSpec.Labels}}',
      ])
    ).trim()
    expect(labels).not.toContain(SIMULATE_LABELS.exitCode)
    await waitServiceLs(n, 'web', '2/2')
  })

  it('pauses an update whose tasks fail (the default failure action)', async () => {
    await create('api', ['--replicas', '2', 'nginx:alpine'])
    await waitServiceLs(n, 'api', '2/2')
    await ok(n, ['service', 'update', '-d', ...failingTasks, 'api'])
    const status = await waitUpdateState(n, 'api', 'paused')
    expect(status).toMatch(/^paused\|update paused due to failure or early termination of task [a-z0-9]{25}$/)
  })
})
