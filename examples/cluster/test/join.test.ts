import * as pki from '@swarmkit/pki'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import {
  cleanup,
  docker,
  dockerSpawn,
  dumpTasks,
  node,
  ok,
  rows,
  runningTasksPerNode,
  swarmHost,
  waitFor,
} from './helpers.js'

describe('a worker joins with docker swarm join', () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  let other: ClusterNode
  beforeAll(async () => {
    ;[mgr, wrk, other] = await Promise.all([node('mgr1'), node('wrk1'), node('wrk2')])
    await ok(mgr, ['swarm', 'init'])
  })
  afterAll(async () => {
    await Promise.all([wrk?.close(), other?.close()])
    await mgr?.close()
    cleanup()
  })

  it('refuses a token of another cluster and a wrong secret', async () => {
    const addr = mgr.daemon.manager!.joinAddr
    const foreign = pki.generateJoinTokens(pki.createRootCA().pem).worker
    const r1 = await docker(other, ['swarm', 'join', '--token', foreign, addr])
    expect(r1.code).not.toBe(0)
    expect(r1.stderr).toContain('remote CA does not match fingerprint')
    const real = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    const r2 = await docker(other, ['swarm', 'join', '--token', pki.rotateJoinToken(real), addr])
    expect(r2.stderr).toContain('A valid join token is necessary to join this cluster')
    expect(await ok(other, ['info'])).toMatch(/Swarm: inactive/)
  })

  it('joins as a worker over TLS and shows up in docker node ls', async () => {
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    const out = await ok(wrk, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
    expect(out.trim()).toBe('This node joined a swarm as a worker.')
    const table = await waitFor(async () => {
      const t = rows(await ok(mgr, ['node', 'ls']))
      return t.length === 2 && t.every((r) => r.includes('Ready')) && t
    }, 'both nodes ready')
    expect(table).toEqual([
      [`${mgr.daemon.nodeId} *`, 'mgr1', 'Ready', 'Active', 'Leader', '28.2.2'],
      [wrk.daemon.nodeId, 'wrk1', 'Ready', 'Active', '28.2.2'],
    ])
    expect(await ok(mgr, ['node', 'inspect', 'wrk1', '--format', '{{.Spec.Role}} {{.Status.Addr}}'])).toBe(
      `worker ${swarmHost}\n`,
    )
  })

  it('answers manager commands on the worker with the daemon message', async () => {
    expect(await ok(wrk, ['info'])).toMatch(/Swarm: active\n\s+NodeID: [a-z0-9]{25}\n\s+Is Manager: false/)
    const r = await docker(wrk, ['node', 'ls'])
    expect(r.stderr).toContain("Worker nodes can't be used to view or modify cluster state.")
    const again = await docker(wrk, ['swarm', 'join', '--token', 'x', '127.0.0.1:1'])
    expect(again.stderr).toContain('This node is already part of a swarm')
  })

  it('spreads replicas and runs global services on the worker', async () => {
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '4',
      'nginx:alpine',
    ])
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'mon',
      '--mode',
      'global',
      'busybox',
    ])
    await waitFor(async () => {
      const p = await runningTasksPerNode(mgr, 'web')
      return p.mgr1 === 2 && p.wrk1 === 2
    }, 'web spread 2+2')
    await waitFor(async () => {
      const p = await runningTasksPerNode(mgr, 'mon')
      return p.mgr1 === 1 && p.wrk1 === 1
    }, 'mon on both nodes')
    expect(wrk.daemon.agent!.tasks().filter((t) => t.state === 'running')).toHaveLength(3)
  })

  it("shows the tasks' logs from the manager and the worker in docker service logs", async () => {
    const out = await ok(mgr, ['service', 'logs', 'web'])
    const lines = out.trim().split('\n')
    expect(lines).toHaveLength(8) // two lines from each of the four tasks
    for (const host of ['mgr1', 'wrk1']) {
      expect(out).toMatch(
        new RegExp(`web\\.\\d\\.[a-z0-9]{12,25}@${host}\\s+\\| starting nginx:alpine as web\\.\\d`),
      )
    }
    const tail = await ok(mgr, ['service', 'logs', '--tail', '1', '--no-task-ids', '-t', 'web'])
    const tailLines = tail.trim().split('\n')
    expect(tailLines).toHaveLength(4)
    for (const l of tailLines)
      expect(l).toMatch(
        /^\d{4}-\d\d-\d\dT[\d:.]+Z web\.\d@(mgr1|wrk1)\s+\| listening \(simulated task [a-z0-9]{25}\)$/,
      )
  })

  it('follows the logs: lines of new tasks appear while docker service logs -f runs', async () => {
    const follow = dockerSpawn(mgr, ['service', 'logs', '-f', '--no-task-ids', 'web'])
    try {
      await waitFor(() => follow.output().trim().split('\n').length >= 8, 'the first 8 lines')
      await ok(mgr, ['service', 'scale', '-d', 'web=5'])
      await waitFor(
        () => /web\.5@(mgr1|wrk1)\s+\| listening/.test(follow.output()),
        'web.5 in the followed logs',
      )
    } finally {
      follow.stop()
    }
    await ok(mgr, ['service', 'scale', '-d', 'web=4'])
    await waitFor(async () => (await runningTasksPerNode(mgr, 'web')).mgr1 === 2, 'web back to 2+2')
  })

  it('drains a node: its tasks move to the manager', async () => {
    expect((await ok(mgr, ['node', 'update', '--availability', 'drain', 'wrk1'])).trim()).toBe('wrk1')
    await waitFor(
      async () => {
        const p = await runningTasksPerNode(mgr, 'web')
        return p.mgr1 === 4 && !p.wrk1
      },
      'web all on mgr1',
      20_000,
      () => dumpTasks(mgr),
    )
    await waitFor(
      async () => (await runningTasksPerNode(mgr, 'mon')).wrk1 === undefined,
      'mon gone from wrk1',
    )
    const table = rows(await ok(mgr, ['node', 'ls']))
    expect(table[1]?.slice(1, 4)).toEqual(['wrk1', 'Ready', 'Drain'])
    const bad = await docker(mgr, ['node', 'update', '--availability', 'sideways', 'wrk1'])
    expect(bad.code).not.toBe(0)
    await ok(mgr, ['node', 'update', '--availability', 'active', 'wrk1'])
    await waitFor(async () => (await runningTasksPerNode(mgr, 'mon')).wrk1 === 1, 'mon back on wrk1')
  })

  it('lets the worker leave, then removes its node', async () => {
    const busy = await docker(mgr, ['node', 'rm', 'wrk1'])
    expect(busy.stderr).toContain(`node ${wrk.daemon.nodeId} is not down and can't be removed`)
    const last = await docker(mgr, ['swarm', 'leave'])
    expect(last.stderr).toContain(
      'You are attempting to leave the swarm on a node that is participating as a manager.',
    )
    const id = wrk.daemon.nodeId
    expect((await ok(wrk, ['swarm', 'leave'])).trim()).toBe('Node left the swarm.')
    expect(await ok(wrk, ['info'])).toMatch(/Swarm: inactive/)
    await waitFor(
      async () => rows(await ok(mgr, ['node', 'ls'])).find((r) => r[1] === 'wrk1')?.[2] === 'Down',
      'wrk1 down',
    )
    expect((await ok(mgr, ['node', 'rm', 'wrk1'])).trim()).toBe('wrk1')
    expect(rows(await ok(mgr, ['node', 'ls'])).map((r) => r[1])).toEqual(['mgr1'])
    expect(mgr.daemon.manager!.cluster()?.removedNodes?.[id]).toBeDefined()
    await waitFor(async () => (await runningTasksPerNode(mgr, 'mon')).mgr1 === 1, 'mon on mgr1 only')
  })
})
