import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, docker, joinSwarm, node, ok, rows, stateDir, waitFor } from './helpers.js'

const run = promisify(execFile)

/** `docker <ls command> --format {{.Name}}`, as a sorted list. */
async function names(n: ClusterNode, args: string[]): Promise<string[]> {
  return (await ok(n, [...args, '--format', '{{.Name}}'])).trim().split('\n').filter(Boolean).sort()
}

describe('backing up a manager and restoring the swarm with docker swarm init --force-new-cluster', () => {
  const open = new Set<ClusterNode>()
  const start = async (name: string) => {
    const n = await node(name)
    open.add(n)
    return n
  }
  const stop = async (n: ClusterNode) => {
    open.delete(n)
    await n.close()
  }
  afterAll(async () => {
    await Promise.all([...open].map((n) => n.close()))
    cleanup()
  })

  it('restores networks and secrets from a tar of a stopped manager, then grows back', async () => {
    const m1 = await start('mgr1')
    const m2 = await start('mgr2')
    await ok(m1, ['swarm', 'init'])
    await joinSwarm(m2, m1, 'manager')
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 2, 'mgr2 a voter')
    await ok(m1, ['network', 'create', '-d', 'overlay', 'Unimatrix-01'])
    await ok(m1, ['secret', 'create', 'missing_drones', '-'], 'Seven of Nine')
    // Back up a non-leader (stopping the leader would start an election).
    const [leader, follower] = m1.daemon.manager!.isLeader ? [m1, m2] : [m2, m1]
    const name = follower.daemon.hostname
    const lost = leader.daemon.hostname
    const id = follower.daemon.nodeId
    // The follower has the objects in its replica before it stops.
    await waitFor(
      async () => (await names(follower, ['secret', 'ls'])).includes('missing_drones'),
      `the secret on ${name}`,
    )

    // 1-4. Stop the non-leader manager, tar its state directory, start it again.
    await stop(follower)
    const backup = join(stateDir(''), 'swarm.bkp')
    await run('tar', ['-czf', backup, '-C', stateDir(''), name])
    const again = await start(name)
    expect(again.daemon.nodeId).toBe(id)
    await waitFor(async () => {
      const t = rows(await ok(leader, ['node', 'ls']))
      return t.length === 2 && t.every((r) => r[2] === 'Ready')
    }, `${name} ready again after its restart`)
    // Something created after the backup is not in it.
    await ok(leader, ['secret', 'create', 'after_backup', '-'], 'later')

    // Disaster: every node stopped and its state deleted.
    await Promise.all([stop(leader), stop(again)])
    rmSync(stateDir('mgr1'), { recursive: true, force: true })
    rmSync(stateDir('mgr2'), { recursive: true, force: true })

    // Restore on the backed-up node's address: untar, start, force a new cluster. Until then it is a
    // manager of its old cluster without a quorum.
    await run('tar', ['-xzf', backup, '-C', stateDir('')])
    const restored = await start(name)
    expect(restored.daemon.nodeId).toBe(id)
    expect(restored.daemon.manager!.raft.members().voters).toHaveLength(2)
    const init = await ok(restored, ['swarm', 'init', '--force-new-cluster'])
    expect(init).toContain(`Swarm initialized: current node (${id}) is now a manager.`)
    expect(restored.daemon.manager!.isLeader).toBe(true)
    expect(restored.daemon.manager!.raft.members().voters).toEqual([id])
    expect(await names(restored, ['network', 'ls'])).toEqual(['Unimatrix-01', 'ingress'])
    expect(await names(restored, ['secret', 'ls'])).toEqual(['missing_drones'])
    // Writes work again.
    await ok(restored, ['secret', 'create', 'after_restore', '-'], 'new')

    // 5. Grow back: a new manager joins the restored swarm; the lost one is demoted and removed.
    const m3 = await start('mgr3')
    const token3 = (await ok(restored, ['swarm', 'join-token', '-q', 'manager'])).trim()
    expect(
      (await ok(m3, ['swarm', 'join', '--token', token3, restored.daemon.manager!.joinAddr])).trim(),
    ).toBe('This node joined a swarm as a manager.')
    await waitFor(() => restored.daemon.manager!.raft.members().voters.length === 2, 'mgr3 a voter')
    const table = await waitFor(async () => {
      const t = rows(await ok(m3, ['node', 'ls']))
      const by = Object.fromEntries(t.map((r) => [r[1], r]))
      return by[name]?.[4] === 'Leader' && by.mgr3?.[4] === 'Reachable' && by[lost]?.[2] === 'Down' && by
    }, `${name} leading, mgr3 reachable, the lost ${lost} down`)
    expect(table[lost]?.[4]).toBe('Unreachable')
    expect(await names(m3, ['secret', 'ls'])).toEqual(['after_restore', 'missing_drones'])
    const r = await docker(m3, ['network', 'create', '-d', 'overlay', 'Unimatrix-02'])
    expect(r.code, r.stderr).toBe(0)
    await ok(m3, ['node', 'demote', lost])
    await waitFor(
      async () => (await docker(m3, ['node', 'rm', lost])).code === 0,
      `the lost ${lost} demoted and removed`,
    )
    const hosts = await ok(m3, ['node', 'ls', '--format', '{{.Hostname}}'])
    expect(hosts.trim().split('\n').sort()).toEqual(['mgr3', name].sort())
  })
})
