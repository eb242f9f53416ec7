import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, docker, node, ok, waitFor } from './helpers.js'

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

describe('docker node promote and demote', () => {
  let mgr1: ClusterNode
  let wrk1: ClusterNode
  let wrk2: ClusterNode
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
  afterAll(async () => {
    await Promise.all([wrk1?.close(), wrk2?.close(), mgr1?.close()])
    cleanup()
  })

  it('promotes a worker: it becomes a raft learner, then a voter, and serves manager commands', async () => {
    await waitFor(async () => (await managerStatus(mgr1)).wrk1 === 'Ready', 'wrk1 ready')
    expect((await ok(mgr1, ['node', 'promote', 'wrk1'])).trim()).toBe(
      'Node wrk1 promoted to a manager in the swarm.',
    )
    await waitFor(() => voters(mgr1) === 2, 'wrk1 a raft voter')
    await waitFor(() => wrk1.daemon.manager, 'wrk1 running a manager')
    expect(await ok(wrk1, ['info'])).toMatch(/Is Manager: true/)
    expect(wrk1.daemon.manager!.raftId).not.toBe(wrk1.daemon.nodeId)
    const status = await waitFor(async () => {
      const s = await managerStatus(wrk1)
      return s.wrk1 === 'Ready Reachable' && s
    }, 'wrk1 reachable, seen from wrk1')
    expect(status).toEqual({ mgr1: 'Ready Leader', wrk1: 'Ready Reachable', wrk2: 'Ready' })
    // The CLI checks the role itself and names the node by ID.
    expect((await ok(wrk1, ['node', 'promote', 'wrk1'])).trim()).toBe(
      `Node ${wrk1.daemon.nodeId} is already a manager.`,
    )
    // Writes through the promoted manager (forwarded to the leader).
    await ok(wrk1, ['network', 'create', '-d', 'overlay', 'through-wrk1'])
    expect(await ok(mgr1, ['network', 'ls', '--format', '{{.Name}}'])).toContain('through-wrk1')
  })

  it('demotes the leader: leadership moves, it leaves raft and keeps running as a worker', async () => {
    expect((await ok(wrk1, ['node', 'demote', 'mgr1'])).trim()).toBe('Manager mgr1 demoted in the swarm.')
    await waitFor(() => wrk1.daemon.manager?.isLeader, 'wrk1 the leader')
    await waitFor(() => mgr1.daemon.role === 'worker' && mgr1.daemon.agent, 'mgr1 running as a worker')
    expect(voters(wrk1)).toBe(1)
    const r = await docker(mgr1, ['node', 'ls'])
    expect(r.stderr).toContain("Worker nodes can't be used to view or modify cluster state.")
    await waitFor(async () => {
      const s = await managerStatus(wrk1)
      return s.mgr1 === 'Ready' && s.wrk1 === 'Ready Leader' && s.wrk2 === 'Ready'
    }, 'mgr1 a ready worker, wrk1 the leader')
    expect(await ok(mgr1, ['info'])).toMatch(/Is Manager: false/)
    // wrk2 was connected to mgr1's dispatcher, which stopped: it fails over to the remaining manager.
    await waitFor(() => wrk2.daemon.remoteManager === wrk1.daemon.manager!.joinAddr, 'wrk2 following wrk1')
  })

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
    await ok(wrk1, ['node', 'promote', 'mgr1'])
    await waitFor(() => voters(wrk1) === 2 && mgr1.daemon.manager, 'mgr1 a voter again')
    await waitFor(async () => (await managerStatus(wrk1)).mgr1 === 'Ready Reachable', 'mgr1 reachable again')
    await ok(wrk1, ['node', 'demote', 'mgr1'])
    await waitFor(() => mgr1.daemon.role === 'worker' && voters(wrk1) === 1, 'mgr1 a worker again')
    expect((await ok(mgr1, ['swarm', 'leave'])).trim()).toBe('Node left the swarm.')
    await waitFor(async () => (await managerStatus(wrk1)).mgr1 === 'Down', 'mgr1 down')
    expect((await ok(wrk1, ['node', 'rm', 'mgr1'])).trim()).toBe('mgr1')
    // wrk2 stayed ready through it all (it heartbeats to wrk1 now).
    expect(await managerStatus(wrk1)).toEqual({ wrk1: 'Ready Leader', wrk2: 'Ready' })
    // The service ran through every change.
    await waitFor(
      async () => (await ok(wrk1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '3/3',
      'web 3/3',
    )
  })
})
