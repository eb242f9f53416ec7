// Orchestration that follows real outcomes, on real containers: a crashing container restarted by its
// restart policy, an update whose containers fail rolled back, a job run to completion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { buildImages, containersOf, IMAGES, removeContainers, testEngine } from './engine-helpers.js'
import { cleanup, dumpTasks, node, ok, waitFor } from './helpers.js'
import { waitServiceLs, waitUpdateState } from './service-waits.js'

const engine = await testEngine()

describe.skipIf(!engine)('orchestration on a Docker Engine', { timeout: 180_000 }, () => {
  const addr = engine!
  let n: ClusterNode
  let nodeIds: string[] = []
  beforeAll(async () => {
    await buildImages(addr)
    n = await node('orch-mgr', { engineAddr: addr })
    await ok(n, ['swarm', 'init'])
    nodeIds = [n.daemon.nodeId]
  }, 120_000)
  afterAll(async () => {
    await n?.close()
    if (engine) await removeContainers(addr, nodeIds)
    cleanup()
  })

  const ps = async (service: string) =>
    (
      await ok(n, [
        'service',
        'ps',
        service,
        '--no-trunc',
        '--format',
        '{{.Name}}|{{.Image}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}',
      ])
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|'))

  it('restarts a crashing container by its restart policy, up to max attempts', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'crash',
      '--restart-condition',
      'on-failure',
      '--restart-delay',
      '100ms',
      '--restart-max-attempts',
      '2',
      IMAGES.exit1,
    ])
    const rows = await waitFor(
      async () => {
        const r = await ps('crash')
        return r.length === 3 && r.every((x) => x[3]!.startsWith('Failed')) && r
      },
      'three failed attempts',
      90_000,
      () => dumpTasks(n),
    )
    for (const r of rows) expect(r[4]).toBe('"task: non-zero exit (1)"')
    expect(await ok(n, ['service', 'logs', 'crash'])).toContain('about to fail')
    // Three containers ran, all exited; no fourth comes.
    const containers = await containersOf(addr, nodeIds)
    expect(containers.filter((c) => c.startsWith('crash.1.'))).toHaveLength(3)
    expect(containers.every((c) => c.endsWith(' exited'))).toBe(true)
    await ok(n, ['service', 'rm', 'crash'])
  })

  it('rolls back an update whose new containers fail', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--replicas',
      '2',
      '--stop-grace-period',
      '2s',
      IMAGES.webV1,
    ])
    await waitServiceLs(n, 'web', '2/2', { ms: 60_000 })
    await ok(n, [
      'service',
      'update',
      '-d',
      '--image',
      IMAGES.exit1,
      '--update-failure-action',
      'rollback',
      '--update-monitor',
      '3s',
      '--update-parallelism',
      '1',
      'web',
    ])
    const status = await waitUpdateState(n, 'web', 'rollback_completed', { ms: 120_000 })
    expect(status).toBe('rollback_completed|rollback completed')
    expect(
      (
        await ok(n, ['service', 'inspect', 'web', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}'])
      ).trim(),
    ).toBe(IMAGES.webV1)
    await waitFor(
      async () => {
        const running = (await ps('web')).filter((r) => r[2] === 'Running' && r[3]!.startsWith('Running'))
        return running.length === 2 && running.every((r) => r[1] === IMAGES.webV1)
      },
      'two v1 containers running again',
      60_000,
      () => dumpTasks(n),
    )
    expect((await ps('web')).some((r) => r[1] === IMAGES.exit1 && r[4] === '"task: non-zero exit (1)"')).toBe(
      true,
    )
    await ok(n, ['service', 'rm', 'web'])
  })

  it('runs a replicated job to completion', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'batch',
      '--mode',
      'replicated-job',
      '--replicas',
      '3',
      '--max-concurrent',
      '2',
      IMAGES.job,
    ])
    await waitFor(
      async () =>
        (
          await ok(n, ['service', 'ls', '--filter', 'name=batch', '--format', '{{.Mode}} {{.Replicas}}'])
        ).trim() === 'replicated job 0/2 (3/3 completed)',
      'batch 3/3 completed',
      90_000,
      () => dumpTasks(n),
    )
    const rows = await ps('batch')
    expect(rows.filter((r) => r[3]!.startsWith('Complete'))).toHaveLength(3)
    expect(await ok(n, ['service', 'logs', 'batch'])).toContain('job done')
    await ok(n, ['service', 'rm', 'batch'])
    await waitFor(
      async () => (await containersOf(addr, nodeIds)).length === 0,
      'every container removed',
      60_000,
    )
  })
})
