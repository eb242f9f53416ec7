import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { MESSAGES } from '../src/index.js'
import { closeNodes, docker, node, ok, waitFor } from './helpers.js'

const ATTEMPTING = 'You are attempting to leave the swarm on a node that is participating as a manager. '
const RESTORE =
  'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.'

// Issue 13, item 7: around a lost quorum the daemon answers as moby's does (daemon/cluster/swarm.go Leave,
// and swarmkit's raft proxy with no leader).
describe('answers around the quorum', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let m3: ClusterNode
  beforeAll(async () => {
    ;[m1, m2, m3] = await Promise.all([node('q1'), node('q2'), node('q3')])
    await ok(m1, ['swarm', 'init'])
  })
  afterAll(() => closeNodes(m1, m2, m3))

  it('warns that leaving one of two managers costs the quorum, not that it is the last manager', async () => {
    const lone = await docker(m1, ['swarm', 'leave'])
    expect(lone.code).not.toBe(0)
    expect(lone.stderr).toContain(
      `${ATTEMPTING}Removing the last manager erases all current state of the swarm. Use \`--force\` to ignore this message.`,
    )
    const token = (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim()
    await ok(m2, ['swarm', 'join', '--token', token, m1.daemon.manager!.joinAddr])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 2, 'q2 a voter')
    await waitFor(
      async () => (await ok(m1, ['node', 'ls', '--format', '{{.ManagerStatus}}'])).includes('Reachable'),
      'q2 reachable',
    )
    const r = await docker(m2, ['swarm', 'leave'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain(
      `${ATTEMPTING}Removing this node leaves 1 managers out of 2. Without a Raft quorum your swarm will be inaccessible. ${RESTORE}`,
    )
    expect(r.stderr).not.toContain('last manager')
    expect(m2.daemon.manager).toBeDefined()

    await ok(m3, ['swarm', 'join', '--token', token, m1.daemon.manager!.joinAddr])
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 3, 'q3 a voter')
    // Three reachable managers: leaving one keeps the quorum, the warning is only the general one.
    await waitFor(
      async () =>
        (await ok(m1, ['node', 'ls', '--format', '{{.ManagerStatus}}'])).match(/Reachable/g)?.length === 2,
      'q2 and q3 reachable',
    )
    const three = await docker(m3, ['swarm', 'leave'])
    expect(three.stderr).toContain(`Error response from daemon: ${ATTEMPTING}${RESTORE}`)
  })

  it('answers docker node ls with "no leader" once the quorum is lost, and shows no leader', {
    timeout: 60_000,
  }, async () => {
    await Promise.all([m2.close(), m3.close()])
    const r = await waitFor(
      async () => {
        const x = await docker(m1, ['node', 'ls'])
        return x.code !== 0 && x
      },
      'node ls refused without a quorum',
      30_000,
    )
    expect(r.stderr).toContain(`Error response from daemon: ${MESSAGES.noLeader}`)
    expect(MESSAGES.noLeader).toBe(
      "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
    )
    expect(r.stdout).not.toContain('Leader')
    for (const args of [
      ['service', 'ls'],
      ['node', 'inspect', 'self'],
    ]) {
      const x = await docker(m1, args)
      expect(x.stderr, args.join(' ')).toContain(MESSAGES.noLeader)
    }
    // Without a leader the manager cannot count its peers: the general warning.
    const leave = await docker(m1, ['swarm', 'leave'])
    expect(leave.stderr).toContain(`Error response from daemon: ${ATTEMPTING}${RESTORE}`)
    // docker info is the node's own: it still answers.
    expect(await ok(m1, ['info'])).toMatch(/Swarm: active/)
  })
})
