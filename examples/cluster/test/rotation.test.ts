import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, node, ok, rows, waitFor } from './helpers.js'

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/

/** Whether a listener's certificate verifies under `ca` alone (the join port takes clients without one). */
function verifiesUnder(address: string, ca: string): Promise<boolean> {
  const i = address.lastIndexOf(':')
  return new Promise((resolve) => {
    const socket = connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      ca,
      checkServerIdentity: () => undefined,
    })
    socket.once('secureConnect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

describe('root CA rotation: docker swarm ca --rotate', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let w1: ClusterNode
  let w2: ClusterNode
  beforeAll(async () => {
    ;[m1, m2, w1, w2] = await Promise.all([node('mgr1'), node('mgr2'), node('wrk1'), node('wrk2')])
    await ok(m1, ['swarm', 'init'])
    const addr = m1.daemon.manager!.joinAddr
    await ok(m2, [
      'swarm',
      'join',
      '--token',
      (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim(),
      addr,
    ])
    await ok(w1, [
      'swarm',
      'join',
      '--token',
      (await ok(m1, ['swarm', 'join-token', '-q', 'worker'])).trim(),
      addr,
    ])
    await waitFor(
      async () => rows(await ok(m1, ['node', 'ls'])).filter((r) => r[2] === 'Ready').length === 3,
      '3 ready',
    )
    await ok(m1, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '3',
      'nginx:alpine',
    ])
    await waitFor(
      async () => (await ok(m1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '3/3',
      '3/3',
    )
  })
  afterAll(() => closeNodes(m1, m2, w1, w2))

  it('rotates to a new root: every node renews, then trusts only the new root; tokens change', async () => {
    const oldRoot = (await ok(m1, ['swarm', 'ca'])).trim()
    expect(oldRoot).toMatch(PEM)
    const oldToken = (await ok(m1, ['swarm', 'join-token', '-q', 'worker'])).trim()

    // The CLI waits until every node has a certificate from the new key and trusts the new root, then prints it.
    const out = await ok(m1, ['swarm', 'ca', '--rotate'])
    const newRoot = PEM.exec(out)?.[0]
    expect(newRoot).toBeDefined()
    expect(newRoot).not.toBe(oldRoot)
    expect((await ok(m2, ['swarm', 'ca'])).trim()).toBe(newRoot)
    expect(await ok(m1, ['info', '--format', '{{.Swarm.Cluster.RootRotationInProgress}}'])).toMatch(/false/)
    for (const name of ['mgr1', 'mgr2', 'wrk1'])
      expect(
        (await ok(m1, ['node', 'inspect', name, '--format', '{{.Description.TLSInfo.TrustRoot}}'])).trim(),
      ).toBe(newRoot)
    // The managers' listeners show certificates from the new key.
    expect(await verifiesUnder(m1.daemon.manager!.joinAddr, newRoot!)).toBe(true)
    expect(await verifiesUnder(m2.daemon.manager!.joinAddr, newRoot!)).toBe(true)

    // Join tokens carry the root's digest: the old one is refused, the new one works.
    const newToken = (await ok(m1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    expect(newToken).not.toBe(oldToken)
    const refused = await docker(w2, ['swarm', 'join', '--token', oldToken, m1.daemon.manager!.joinAddr])
    expect(refused.code).not.toBe(0)
    await ok(w2, ['swarm', 'join', '--token', newToken, m1.daemon.manager!.joinAddr])
  })

  it('keeps running on the new root: scaling, raft between the managers, a restarted worker', async () => {
    await ok(m2, ['service', 'scale', '-d', 'web=6']) // a follower: forwarded to the leader over raft
    await waitFor(
      async () => (await ok(m1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6',
      '6/6',
    )
    await w1.close()
    w1 = await node('wrk1')
    await waitFor(async () => {
      const t = rows(await ok(m1, ['node', 'ls']))
      return t.length === 4 && t.every((r) => r[2] === 'Ready')
    }, 'all four nodes ready after wrk1 restarted')
  })
})
