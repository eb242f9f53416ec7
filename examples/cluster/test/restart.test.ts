import { afterAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, joinSwarm, node, ok, rows, waitFor } from './helpers.js'

describe('nodes restarted from their state directories', () => {
  const open: ClusterNode[] = []
  const start = async (name: string) => {
    const n = await node(name)
    open.push(n)
    return n
  }
  afterAll(async () => {
    await Promise.all(open.map((n) => n.close()))
    cleanup()
  })

  it('keeps the swarm: the manager replays its raft log, the worker rejoins with its certificate', async () => {
    let mgr = await start('mgr1')
    let wrk = await start('wrk1')
    await ok(mgr, ['swarm', 'init'])
    await joinSwarm(wrk, mgr, 'worker')
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '2',
      'nginx:alpine',
    ])
    const replicas = async (n: ClusterNode) =>
      (await ok(n, ['service', 'ls', '--format', '{{.Replicas}}'])).trim()
    await waitFor(async () => (await replicas(mgr)) === '2/2', 'web 2/2')
    const ids = [mgr.daemon.nodeId, wrk.daemon.nodeId]
    const joinAddr = mgr.daemon.manager!.joinAddr

    await Promise.all([mgr.close(), wrk.close()])
    open.length = 0
    mgr = await start('mgr1')
    wrk = await start('wrk1')

    expect([mgr.daemon.nodeId, wrk.daemon.nodeId]).toEqual(ids)
    expect(mgr.daemon.manager!.joinAddr).toBe(joinAddr)
    expect(await ok(wrk, ['info'])).toMatch(/Swarm: active\n\s+NodeID: [a-z0-9]{25}\n\s+Is Manager: false/)
    const table = await waitFor(async () => {
      const t = rows(await ok(mgr, ['node', 'ls']))
      return t.length === 2 && t.every((r) => r[2] === 'Ready') && t
    }, 'both nodes ready again')
    expect(table.map((r) => r[1])).toEqual(['mgr1', 'wrk1'])
    expect(await replicas(mgr)).toBe('2/2')
    await ok(mgr, ['service', 'scale', '-d', 'web=4'])
    await waitFor(async () => (await replicas(mgr)) === '4/4', 'web 4/4 after the restart')
  })
})
