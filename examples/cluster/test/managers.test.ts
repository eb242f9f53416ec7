import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, node, ok, rows, runningTasksPerNode, waitFor } from './helpers.js'

describe('three managers: raft between them, writes through any of them, failover', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let m3: ClusterNode
  beforeAll(async () => {
    ;[m1, m2, m3] = await Promise.all([node('mgr1'), node('mgr2'), node('mgr3')])
    await ok(m1, ['swarm', 'init'])
  })
  afterAll(() => closeNodes(m1, m2, m3))

  it('joins two managers with the manager token', async () => {
    const token = (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim()
    const addr = m1.daemon.manager!.joinAddr
    expect((await ok(m2, ['swarm', 'join', '--token', token, addr])).trim()).toBe(
      'This node joined a swarm as a manager.',
    )
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 2, 'mgr2 a voter')
    expect((await ok(m3, ['swarm', 'join', '--token', token, addr])).trim()).toBe(
      'This node joined a swarm as a manager.',
    )
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 3, 'mgr3 a voter')
    // A follower answers from its replica; it marks itself with '*'.
    const table = await waitFor(async () => {
      const t = rows(await ok(m2, ['node', 'ls']))
      // Reachability follows raft's view of each member: a member that has just joined (or that a loaded
      // machine kept from answering a heartbeat round) may show Unreachable for a moment.
      const reachable = (r: string[]) => r[4] === 'Leader' || r[4] === 'Reachable'
      return t.length === 3 && t.every((r) => r[2] === 'Ready' && reachable(r)) && t
    }, 'three ready, reachable managers on mgr2')
    expect(table.map((r) => [r[1], r[4]])).toEqual([
      ['mgr1', 'Leader'],
      ['mgr2', 'Reachable'],
      ['mgr3', 'Reachable'],
    ])
    expect(table[1]![0]).toBe(`${m2.daemon.nodeId} *`)
    expect(await ok(m3, ['info'])).toMatch(/Is Manager: true[\s\S]*Managers: 3\n\s+Nodes: 3/)
  })

  it('takes writes on a follower (forwarded to the leader) and runs tasks on every manager', async () => {
    expect(m3.daemon.manager!.isLeader).toBe(false)
    await ok(m3, [
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
    await waitFor(async () => {
      const p = await runningTasksPerNode(m1, 'web')
      return p.mgr1 === 2 && p.mgr2 === 2 && p.mgr3 === 2
    }, 'web spread 2+2+2')
    const ls = await ok(m2, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])
    expect(ls.trim()).toBe('web 6/6')
    // Logs of tasks on the other managers come through their control servers.
    const logs = await ok(m2, ['service', 'logs', '--no-task-ids', 'web'])
    for (const host of ['mgr1', 'mgr2', 'mgr3']) expect(logs).toContain(`@${host}`)
    expect(logs.trim().split('\n')).toHaveLength(12)
  })

  it('survives the loss of the leader: a new leader, mgr1 marked down, its tasks rescheduled', async () => {
    await m1.close()
    const survivors = [m2, m3]
    const leader = await waitFor(() => survivors.find((n) => n.daemon.manager!.isLeader), 'a new leader')
    const follower = survivors.find((n) => n !== leader)!
    await waitFor(async () => {
      const t = rows(await ok(follower, ['node', 'ls']))
      return t.find((r) => r[1] === 'mgr1')?.[2] === 'Down'
    }, 'mgr1 down')
    const t = rows(await ok(follower, ['node', 'ls']))
    const status = Object.fromEntries(t.map((r) => [r[1], r[4]]))
    expect(status.mgr1).toBe('Unreachable')
    expect(status[leader.daemon.hostname]).toBe('Leader')
    await waitFor(async () => {
      const p = await runningTasksPerNode(follower, 'web')
      return p.mgr2 === 3 && p.mgr3 === 3
    }, 'web rescheduled on mgr2 and mgr3')
    // Writes still go through either survivor.
    await ok(follower, ['service', 'scale', '-d', 'web=4'])
    await waitFor(
      async () => (await ok(leader, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '4/4',
      'web 4/4',
    )
    const r = await docker(follower, ['network', 'create', '-d', 'overlay', 'after-failover'])
    expect(r.code, r.stderr).toBe(0)
  })
})
