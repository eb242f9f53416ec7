import { afterEach, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, dumpTasks, node, ok, waitFor } from './helpers.js'

/** Starts three managers (mgr1 leads) with the given heartbeat period. */
async function threeManagers(prefix: string, heartbeatPeriodMs = 1000): Promise<ClusterNode[]> {
  const names = [1, 2, 3].map((i) => `${prefix}${i}`)
  const nodes = await Promise.all(names.map((n) => node(n, { heartbeatPeriodMs })))
  const [m1] = nodes
  await ok(m1!, ['swarm', 'init'])
  const token = (await ok(m1!, ['swarm', 'join-token', '-q', 'manager'])).trim()
  for (const [i, m] of nodes.slice(1).entries()) {
    await ok(m, ['swarm', 'join', '--token', token, m1!.daemon.manager!.joinAddr])
    await waitFor(
      () => m1!.daemon.manager!.raft.members().voters.length === i + 2,
      `${m.daemon.hostname} a voter`,
    )
  }
  return nodes
}

/** MANAGER STATUS and STATUS per host name, as `docker node ls` shows them on `n`. */
async function nodeTable(n: ClusterNode): Promise<Record<string, { status: string; manager: string }>> {
  const out = await ok(n, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'])
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([host, status, manager]) => [host!, { status: status!, manager: manager ?? '' }]),
  )
}

// Issue 13, items 2 and 6: a manager's reachability follows raft's own view of its member, and a manager raft
// has lost is down for the scheduler at once.
describe("managers' reachability follows raft", () => {
  let nodes: ClusterNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()))
    nodes = []
    cleanup()
  })

  it('makes a manager that was down longer than the grace period reachable again, and demote then works', {
    timeout: 120_000,
  }, async () => {
    nodes = await threeManagers('reach')
    const [m1] = nodes as [ClusterNode, ClusterNode, ClusterNode]
    await nodes[2]!.close()
    const stoppedAt = Date.now()
    await waitFor(async () => (await nodeTable(m1)).reach3?.status === 'Down', 'reach3 down', 30_000)
    // The fault itself: down for longer than the heartbeat grace period (three periods of 1 s).
    await waitFor(() => Date.now() - stoppedAt > 4000, 'reach3 down for longer than the grace period')
    expect((await nodeTable(m1)).reach3?.manager).toBe('Unreachable')
    nodes[2] = await node('reach3')
    const table = await waitFor(
      async () => {
        const t = await nodeTable(m1)
        return Object.values(t).every((r) => r.status === 'Ready' && r.manager !== 'Unreachable') && t
      },
      'every manager ready and reachable again',
      30_000,
      () => JSON.stringify(m1.daemon.manager!.store.view((tx) => tx.find('nodes'))),
    )
    expect(Object.values(table).map((r) => r.manager)).toEqual(['Leader', 'Reachable', 'Reachable'])
    // A healthy three-manager cluster: demoting one keeps the quorum, so it is allowed.
    await ok(m1, ['node', 'demote', 'reach2'])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 2, 'reach2 out of raft', 30_000)
    await waitFor(
      async () => (await nodeTable(m1)).reach2?.manager === '',
      'reach2 listed as a worker',
      30_000,
    )
  })

  it('places nothing on a killed leader: the new leader knows from raft that it is gone', {
    timeout: 120_000,
  }, async () => {
    // A long heartbeat period (grace 3 × 10 s): only raft's view can mark the old leader down in time.
    nodes = await threeManagers('kill', 10_000)
    const [m1, m2, m3] = nodes as [ClusterNode, ClusterNode, ClusterNode]
    const deadId = m1.daemon.nodeId
    await m1.close()
    const survivors = [m2, m3]
    const leader = await waitFor(() => survivors.find((n) => n.daemon.manager?.isLeader), 'a new leader')
    await ok(leader, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'after',
      '--replicas',
      '6',
      'nginx:alpine',
    ])
    await waitFor(
      async () => (await ok(leader, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6',
      'after 6/6 on the survivors, well within the heartbeat grace period',
      20_000,
      () => dumpTasks(leader),
    )
    const table = await nodeTable(leader)
    expect(table.kill1).toEqual({ status: 'Down', manager: 'Unreachable' })
    const running = leader.daemon.manager!.store.view((tx) =>
      tx.find('tasks').filter((t) => t.desiredState === 'running' && t.nodeId === deadId),
    )
    expect(running).toEqual([])
  })
})
