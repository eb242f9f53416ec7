import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, node, ok, rows, swarmHost } from './helpers.js'

/** The nodes' swarm address (this file's own loopback), as a pattern. */
const hostPattern = swarmHost.replaceAll('.', '\\.')

describe('the docker CLI against one node', () => {
  let n: ClusterNode
  beforeAll(async () => {
    n = await node('mgr1')
  })
  afterAll(() => closeNodes(n))

  it('negotiates API 1.50 in docker version', async () => {
    const out = await ok(n, ['version'])
    expect(out).toMatch(/Server: swarmkit reference cluster/)
    expect(out).toMatch(/API version:\s+1\.50 \(minimum version 1\.24\)/)
    expect(out).toMatch(/Version:\s+28\.2\.2/)
  })

  it('reports an inactive swarm and refuses manager commands before init', async () => {
    expect(await ok(n, ['info'])).toMatch(/Swarm: inactive/)
    const r = await docker(n, ['node', 'ls'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(
      'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    )
  })

  it('initializes a swarm and prints the worker join command', async () => {
    const out = await ok(n, ['swarm', 'init'])
    const m = /current node \(([a-z0-9]{25})\) is now a manager/.exec(out)
    expect(m).not.toBeNull()
    expect(out).toMatch(
      new RegExp(`docker swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} ${hostPattern}:\\d+`),
    )
    expect(n.daemon.nodeId).toBe(m![1])
    const again = await docker(n, ['swarm', 'init'])
    expect(again.stderr).toContain('This node is already part of a swarm')
  })

  it('shows the swarm in docker info', async () => {
    const out = await ok(n, ['info'])
    expect(out).toMatch(/Swarm: active/)
    expect(out).toMatch(/Is Manager: true/)
    expect(out).toContain(`ClusterID: ${n.daemon.clusterId}`)
    expect(out).toMatch(/Managers: 1\n\s+Nodes: 1/)
  })

  it('lists the manager as the leader in docker node ls', async () => {
    const table = rows(await ok(n, ['node', 'ls']))
    expect(table).toEqual([[`${n.daemon.nodeId} *`, 'mgr1', 'Ready', 'Active', 'Leader', '28.2.2']])
  })

  it('inspects a node by name, by self and pretty', async () => {
    const id = (
      await ok(n, ['node', 'inspect', 'self', '--format', '{{.ID}} {{.Spec.Role}} {{.Status.State}}'])
    ).trim()
    expect(id).toBe(`${n.daemon.nodeId} manager ready`)
    const pretty = await ok(n, ['node', 'inspect', '--pretty', 'mgr1'])
    expect(pretty).toMatch(/Hostname:\s+mgr1/)
    expect(pretty).toMatch(
      new RegExp(
        `Manager Status:\\n\\s+Address:\\s+${hostPattern}:\\d+\\n\\s+Raft Status:\\s+Reachable\\n\\s+Leader:\\s+Yes`,
      ),
    )
    const missing = await docker(n, ['node', 'inspect', 'nosuchnode'])
    expect(missing.stderr).toContain('node nosuchnode not found')
  })

  it('prints the join tokens and rotates the worker token', async () => {
    const worker = (await ok(n, ['swarm', 'join-token', '-q', 'worker'])).trim()
    const manager = (await ok(n, ['swarm', 'join-token', '-q', 'manager'])).trim()
    expect(worker).toMatch(/^SWMTKN-1-/)
    expect(worker.length).toBe(85)
    expect(manager.slice(0, 60)).toBe(worker.slice(0, 60))
    expect(manager).not.toBe(worker)
    const full = await ok(n, ['swarm', 'join-token', 'worker'])
    expect(full).toContain(`docker swarm join --token ${worker} ${n.daemon.manager!.joinAddr}`)
    const rotated = await ok(n, ['swarm', 'join-token', '--rotate', 'worker'])
    expect(rotated).toContain('Successfully rotated worker join token.')
    const next = (await ok(n, ['swarm', 'join-token', '-q', 'worker'])).trim()
    expect(next).not.toBe(worker)
    expect(next.slice(0, 60)).toBe(worker.slice(0, 60))
  })
})
