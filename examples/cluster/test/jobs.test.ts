import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, initSwarm, ok } from './helpers.js'
import { createService, waitServiceLs } from './service-waits.js'

describe('jobs and restart/update policies through the docker CLI', () => {
  let n: ClusterNode
  beforeAll(async () => {
    n = await initSwarm('mgr1')
  })
  afterAll(() => closeNodes(n))

  const inspect = async (name: string, format: string) =>
    (await ok(n, ['service', 'inspect', name, '--format', format])).trim()

  it('runs a replicated job to its completions, max concurrent at a time', async () => {
    await createService(
      n,
      'batch',
      '--mode',
      'replicated-job',
      '--replicas',
      '4',
      '--max-concurrent',
      '2',
      'busybox',
    )
    expect(await inspect('batch', '{{json .Spec.Mode}}')).toBe(
      '{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":4}}',
    )
    expect(await inspect('batch', '{{.JobStatus.JobIteration.Index}}')).toBe('0')
    await waitServiceLs(n, 'batch', 'replicated job 0/2 (4/4 completed)', {
      format: '{{.Mode}} {{.Replicas}}',
    })
    const ps = (
      await ok(n, ['service', 'ps', 'batch', '--format', '{{.Name}} {{.DesiredState}} {{.CurrentState}}'])
    )
      .trim()
      .split('\n')
    expect(ps).toHaveLength(4)
    for (const line of ps) expect(line).toMatch(/^batch\.[1-4] Complete Complete /)
    // An update runs the job again, as its next iteration.
    await ok(n, ['service', 'update', '-d', '--env-add', 'RUN=2', 'batch'])
    expect(await inspect('batch', '{{.JobStatus.JobIteration.Index}}')).toBe('1')
    await waitServiceLs(n, 'batch', '0/2 (4/4 completed)')
  })

  it('runs a global job once per node', async () => {
    await createService(n, 'once', '--mode', 'global-job', 'busybox')
    await waitServiceLs(n, 'once', 'global job 0/0 (1/1 completed)', { format: '{{.Mode}} {{.Replicas}}' })
  })

  it('keeps restart, update and rollback policies as given', async () => {
    await createService(
      n,
      'pol',
      '--restart-condition',
      'on-failure',
      '--restart-delay',
      '2s',
      '--restart-max-attempts',
      '3',
      '--restart-window',
      '1m',
      '--update-failure-action',
      'rollback',
      '--update-monitor',
      '7s',
      '--update-max-failure-ratio',
      '0.25',
      '--rollback-parallelism',
      '2',
      '--rollback-failure-action',
      'continue',
      'nginx:alpine',
    )
    expect(await inspect('pol', '{{json .Spec.TaskTemplate.RestartPolicy}}')).toBe(
      '{"Condition":"on-failure","Delay":2000000000,"MaxAttempts":3,"Window":60000000000}',
    )
    expect(await inspect('pol', '{{json .Spec.UpdateConfig}}')).toBe(
      '{"Parallelism":1,"FailureAction":"rollback","Monitor":7000000000,"MaxFailureRatio":0.25,"Order":"stop-first"}',
    )
    expect(
      await inspect('pol', '{{.Spec.RollbackConfig.Parallelism}} {{.Spec.RollbackConfig.FailureAction}}'),
    ).toBe('2 continue')
    const bad = await docker(n, ['service', 'update', '-d', '--update-max-failure-ratio', '2', 'pol'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/maxFailureRatio cannot be less than 0 or bigger than 1/)
  })
})
