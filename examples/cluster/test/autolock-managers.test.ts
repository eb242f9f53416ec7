import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, dumpTasks, node, ok, rows, waitFor } from './helpers.js'

// A manager of three that restarts locked misses everything the others commit meanwhile. Unlocking it must
// bring it back: its replica catches up before it writes, and nothing it writes is refused as stale.
describe('autolock with three managers: unlock after the others moved on', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let m3: ClusterNode
  beforeAll(async () => {
    ;[m1, m2, m3] = await Promise.all([node('mgr1'), node('mgr2'), node('mgr3')])
    await ok(m1, ['swarm', 'init', '--autolock'])
    const token = (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim()
    const addr = m1.daemon.manager!.joinAddr
    await ok(m2, ['swarm', 'join', '--token', token, addr])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 2, 'mgr2 a voter')
    await ok(m3, ['swarm', 'join', '--token', token, addr])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 3, 'mgr3 a voter')
  })
  afterAll(() => closeNodes(m1, m2, m3))

  it('unlocks a restarted manager that missed many commits, and it serves the current state', {
    timeout: 120_000,
  }, async () => {
    const key = (await ok(m1, ['swarm', 'unlock-key', '-q'])).trim()
    await ok(m1, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '6',
      'nginx:alpine',
    ])
    await waitFor(
      () => m2.daemon.manager?.keyFileUnlockKey === key,
      "mgr2's key file wrapped under the unlock key",
    )

    await m2.close()
    m2 = await node('mgr2')
    expect(await ok(m2, ['info'])).toMatch(/Swarm: locked/)
    // The other two keep committing: scale up and down, tasks move through their states.
    for (const replicas of [9, 3, 12, 5]) await ok(m1, ['service', 'scale', '-d', `web=${replicas}`])
    await waitFor(
      async () => (await ok(m1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '5/5',
      '5/5',
      30_000,
      () =>
        `${dumpTasks(m1)}\n${m1.daemon.manager!.store.view((tx) =>
          tx
            .find('nodes')
            .map(
              (x) =>
                `${x.id} ${x.description?.hostname} ${x.status.state} ${x.spec.availability} ${JSON.stringify(x.managerStatus)}`,
            )
            .join('\n'),
        )}`,
    )

    await ok(m2, ['swarm', 'unlock'], `${key}\n`)
    const table = await waitFor(async () => {
      const t = rows(await ok(m2, ['node', 'ls']))
      return t.length === 3 && t.every((r) => r[2] === 'Ready') && t
    }, 'three ready managers on the unlocked mgr2')
    expect(table.map((r) => r[1])).toEqual(['mgr1', 'mgr2', 'mgr3'])
    expect((await ok(m2, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])).trim()).toBe('web 5/5')
    // It takes writes again (forwarded to the leader).
    await ok(m2, ['service', 'scale', '-d', 'web=2'])
    await waitFor(
      async () => (await ok(m1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '2/2',
      '2/2',
    )
  })
})
