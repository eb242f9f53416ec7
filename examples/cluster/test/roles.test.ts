import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, node, ok, waitFor } from './helpers.js'

/** HOSTNAME -> MANAGER STATUS ('' for workers) and STATUS, from `docker node ls` on `n`. */
async function managerStatus(n: ClusterNode): Promise<Record<string, string>> {
  const out = await ok(n, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'])
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => {
        const [host, status, manager] = l.split(' ')
        return [host!, `${status} ${manager ?? ''}`.trim()]
      }),
  )
}

const voters = (n: ClusterNode) => n.daemon.manager?.raft.members().voters.length ?? 0

/**
 * Runs a node update the way a user would: again when the daemon answers "update out of sequence" (the
 * node object changed between the CLI's read and its write, as it does while a role change settles).
 */
function update(n: ClusterNode, args: string[]): Promise<string> {
  return waitFor(
    async () => {
      const r = await docker(n, args)
      if (r.code === 0) return r.stdout
      if (r.stderr.includes('update out of sequence')) return ''
      throw new Error(`docker ${args.join(' ')} failed: ${r.stderr}`)
    },
    `docker ${args.join(' ')}`,
  )
}

/** A role change takes several steps (heartbeat, certificate, raft): generous bounds on a loaded machine. */
const SLOW = 40_000

describe('docker node promote and demote', () => {
  let mgr1: ClusterNode
  let wrk1: ClusterNode
  let wrk2: ClusterNode
  /** Each node's role and raft view, and the node objects of a manager: printed when a wait times out. */
  const state = () =>
    [mgr1, wrk1, wrk2]
      .map((n) => {
        const m = n.daemon.manager
        const raft = m ? `${JSON.stringify(m.raft.members())} leader=${m.raft.leaderId}` : '-'
        const nodes = m
          ? m.store.view((tx) =>
              tx
                .find('nodes')
                .map(
                  (x) =>
                    `${x.description?.hostname}:${x.role}/${x.spec.role}/${x.status.state}/${x.managerStatus?.raftId ?? ''}`,
                )
                .join(' '),
            )
          : ''
        return `${n.daemon.hostname} ${n.daemon.state} ${n.daemon.role} raft=${raft} ${nodes}`
      })
      .join('\n')
  beforeAll(async () => {
    ;[mgr1, wrk1, wrk2] = await Promise.all([node('mgr1'), node('wrk1'), node('wrk2')])
    await ok(mgr1, ['swarm', 'init'])
    const token = (await ok(mgr1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk1, ['swarm', 'join', '--token', token, mgr1.daemon.manager!.joinAddr])
    await ok(wrk2, ['swarm', 'join', '--token', token, mgr1.daemon.manager!.joinAddr])
    await ok(mgr1, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '3',
      'nginx',
    ])
  })
  afterAll(() => closeNodes(wrk1, wrk2, mgr1))

  it('promotes a worker: it becomes a raft learner, then a voter, and serves manager commands', async () => {
    await waitFor(async () => (await managerStatus(mgr1)).wrk1 === 'Ready', 'wrk1 ready')
    const running = () =>
      mgr1.daemon.manager!.store.view((tx) =>
        tx
          .find('tasks', undefined, (t) => t.desiredState === 'running' && t.status.state === 'running')
          .map((t) => t.id)
          .sort(),
      )
    const before = await waitFor(() => running().length === 3 && running(), 'three running tasks')
    expect((await ok(mgr1, ['node', 'promote', 'wrk1'])).trim()).toBe(
      'Node wrk1 promoted to a manager in the swarm.',
    )
    await waitFor(() => voters(mgr1) === 2, 'wrk1 a raft voter', SLOW, state)
    await waitFor(() => wrk1.daemon.manager, 'wrk1 running a manager', SLOW, state)
    expect(await ok(wrk1, ['info'])).toMatch(/Is Manager: true/)
    // The other worker hears of the new manager from its heartbeats (docker info: Manager Addresses).
    await waitFor(
      async () => (await ok(wrk2, ['info', '--format', '{{len .Swarm.RemoteManagers}}'])).trim() === '2',
      'wrk2 knowing both managers',
    )
    expect(wrk1.daemon.manager!.raftId).not.toBe(wrk1.daemon.nodeId)
    const status = await waitFor(async () => {
      const s = await managerStatus(wrk1)
      return s.wrk1 === 'Ready Reachable' && s
    }, 'wrk1 reachable, seen from wrk1')
    expect(status).toEqual({ mgr1: 'Ready Leader', wrk1: 'Ready Reachable', wrk2: 'Ready' })
    // Its tasks were left alone: a promotion is no reason to move them (the node was never down).
    expect(running()).toEqual(before)
    // The CLI checks the role itself and names the node by ID.
    expect((await ok(wrk1, ['node', 'promote', 'wrk1'])).trim()).toBe(
      `Node ${wrk1.daemon.nodeId} is already a manager.`,
    )
    // Writes through the promoted manager (forwarded to the leader).
    await ok(wrk1, ['network', 'create', '-d', 'overlay', 'through-wrk1'])
    expect(await ok(mgr1, ['network', 'ls', '--format', '{{.Name}}'])).toContain('through-wrk1')
  }, 120_000)

  it('restarts the promoted manager from its state directory under its raft ID', async () => {
    const raftId = wrk1.daemon.manager!.raftId
    await wrk1.close()
    wrk1 = await node('wrk1')
    expect(wrk1.daemon.manager?.raftId).toBe(raftId)
    await waitFor(async () => {
      const s = await managerStatus(mgr1)
      return s.wrk1 === 'Ready Reachable' && voters(mgr1) === 2
    }, 'wrk1 back as a reachable voter')
    await ok(wrk1, ['network', 'create', '-d', 'overlay', 'after-restart'])
    expect(await ok(mgr1, ['network', 'ls', '--format', '{{.Name}}'])).toContain('after-restart')
  }, 120_000)

  it('demotes the leader: leadership moves, it leaves raft and keeps running as a worker', async () => {
    expect((await update(wrk1, ['node', 'demote', 'mgr1'])).trim()).toBe('Manager mgr1 demoted in the swarm.')
    await waitFor(() => wrk1.daemon.manager?.isLeader, 'wrk1 the leader', SLOW, state)
    await waitFor(
      () => mgr1.daemon.role === 'worker' && mgr1.daemon.agent,
      'mgr1 running as a worker',
      SLOW,
      state,
    )
    expect(voters(wrk1)).toBe(1)
    const r = await docker(mgr1, ['node', 'ls'])
    expect(r.stderr).toContain("Worker nodes can't be used to view or modify cluster state.")
    await waitFor(async () => {
      const s = await managerStatus(wrk1)
      return s.mgr1 === 'Ready' && s.wrk1 === 'Ready Leader' && s.wrk2 === 'Ready'
    }, 'mgr1 a ready worker, wrk1 the leader')
    expect(await ok(mgr1, ['info'])).toMatch(/Is Manager: false/)
    // wrk2 was connected to mgr1's dispatcher, which stopped: it fails over to the remaining manager.
    await waitFor(
      () => wrk2.daemon.remoteManager === wrk1.daemon.manager!.joinAddr,
      'wrk2 following wrk1',
      SLOW,
      state,
    )
  }, 120_000)

  it('refuses to demote the last manager with the daemon message', async () => {
    const r = await docker(wrk1, ['node', 'demote', 'wrk1'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(
      'Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm',
    )
    const rm = await docker(wrk1, ['node', 'rm', '--force', 'wrk1'])
    expect(rm.stderr).toContain('is a cluster manager and is a member of the raft cluster')
  })

  it('promotes the demoted node again under a new raft ID, demotes it, and removes it after it left', async () => {
    await update(wrk1, ['node', 'promote', 'mgr1'])
    await waitFor(() => voters(wrk1) === 2 && mgr1.daemon.manager, 'mgr1 a voter again', SLOW, state)
    await waitFor(
      async () => (await managerStatus(wrk1)).mgr1 === 'Ready Reachable',
      'mgr1 reachable again',
      SLOW,
      state,
    )
    await update(wrk1, ['node', 'demote', 'mgr1'])
    await waitFor(
      () => mgr1.daemon.role === 'worker' && voters(wrk1) === 1,
      'mgr1 a worker again',
      SLOW,
      state,
    )
    expect((await ok(mgr1, ['swarm', 'leave'])).trim()).toBe('Node left the swarm.')
    await waitFor(async () => (await managerStatus(wrk1)).mgr1 === 'Down', 'mgr1 down', SLOW, state)
    expect((await ok(wrk1, ['node', 'rm', 'mgr1'])).trim()).toBe('mgr1')
    // wrk2 is ready (it heartbeats to wrk1 now).
    await waitFor(
      async () => JSON.stringify(await managerStatus(wrk1)) === '{"wrk1":"Ready Leader","wrk2":"Ready"}',
      'wrk1 leading, wrk2 a ready worker',
      SLOW,
      state,
    )
    // The service ran through every change.
    await waitFor(
      async () => (await ok(wrk1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '3/3',
      'web 3/3',
    )
  }, 120_000)
})
