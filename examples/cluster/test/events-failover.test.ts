import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode, EventMessage } from '../src/index.js'
import { closeNodes, dockerSpawn, joinSwarm, node, ok, waitFor } from './helpers.js'

/** A `docker events --format '{{json .}}'` follower: the messages it printed so far. */
function follow(n: ClusterNode, ...filters: string[]) {
  const f = dockerSpawn(n, ['events', ...filters.flatMap((x) => ['--filter', x]), '--format', '{{json .}}'])
  const messages = () =>
    f
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as EventMessage)
  return { ...f, messages }
}

type Follower = ReturnType<typeof follow>

/** Waits until every stream has printed a message `seen` accepts. */
async function onEvery(streams: Follower[], what: string, seen: (m: EventMessage) => boolean) {
  for (const s of streams) await waitFor(() => s.messages().some(seen), what, 40_000, s.output)
}

const nodeUpdate = (m: EventMessage, name: string, attr: string, from: string, to: string) =>
  m.Type === 'node' &&
  m.Action === 'update' &&
  m.Actor.Attributes.name === name &&
  m.Actor.Attributes[`${attr}.old`] === from &&
  m.Actor.Attributes[`${attr}.new`] === to

describe('docker events on every manager, through node state changes and a leader change', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let m3: ClusterNode
  let w: ClusterNode | undefined
  beforeAll(async () => {
    ;[m1, m2, m3, w] = await Promise.all([node('efo1'), node('efo2'), node('efo3'), node('efow')])
    await ok(m1, ['swarm', 'init'])
    await joinSwarm(m2, m1, 'manager')
    await joinSwarm(m3, m1, 'manager')
    await joinSwarm(w, m1, 'worker')
    await waitFor(() => m1.daemon.manager!.raft.members().voters.length === 3, 'three voters', 30_000)
  }, 90_000)
  afterAll(() => closeNodes(w, m3, m2, m1))

  it('streams node down/ready and a leader change on the followers, and keeps following after it', async () => {
    const streams = [follow(m2), follow(m3)]
    try {
      // Both streams connected: a label change on the worker shows on each.
      await waitFor(
        async () => {
          await ok(m1, ['node', 'update', '--label-add', `probe=${Date.now()}`, 'efow'])
          return streams.every((s) => s.messages().some((m) => m.Actor.Attributes.name === 'efow'))
        },
        'both followers connected',
        30_000,
      )
      // The worker goes away and comes back: ready -> down, then down -> ready, on both managers.
      await w!.close()
      w = undefined
      await onEvery(streams, 'efow ready -> down', (m) => nodeUpdate(m, 'efow', 'state', 'ready', 'down'))
      w = await node('efow')
      await onEvery(streams, 'efow down -> ready', (m) => nodeUpdate(m, 'efow', 'state', 'down', 'ready'))

      // The leader goes: the followers' streams go on, and tell of it.
      await m1.close()
      const leader = await waitFor(
        () => [m2, m3].find((n) => n.daemon.manager!.isLeader),
        'a new leader',
        30_000,
      )
      await onEvery(streams, 'efo1 unreachable', (m) =>
        nodeUpdate(m, 'efo1', 'reachability', 'reachable', 'unreachable'),
      )
      await onEvery(streams, 'the new leader', (m) =>
        nodeUpdate(m, leader.daemon.hostname, 'leader', 'false', 'true'),
      )
      // A change made after the leader change reaches both streams: they kept following.
      await ok(m2, ['secret', 'create', 'after-failover', '-'], 'x')
      await onEvery(
        streams,
        'the secret created after the failover',
        (m) => m.Type === 'secret' && m.Action === 'create' && m.Actor.Attributes.name === 'after-failover',
      )
      // The messages carry moby's fields: scope swarm, time in seconds and nanoseconds.
      for (const m of streams[0]!.messages()) {
        expect(Object.keys(m)).toEqual(['Type', 'Action', 'Actor', 'scope', 'time', 'timeNano'])
        expect(m.scope).toBe('swarm')
        expect(m.Actor.ID).toMatch(/^[a-z0-9]{25}$/)
        expect(m.time).toBe(Math.floor(Number(m.timeNano) / 1e9))
      }
    } finally {
      for (const s of streams) s.stop()
    }
  })
})
