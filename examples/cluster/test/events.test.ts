import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode, EventMessage } from '../src/index.js'
import { closeNodes, docker, dockerSpawn, joinSwarm, node, ok, waitFor } from './helpers.js'

/** `docker events` takes seconds since the epoch (with a fraction) for --since and --until. */
const stamp = (ms: number) => (ms / 1000).toFixed(3)

describe('docker events', () => {
  let m1: ClusterNode
  let m2: ClusterNode
  let start: number
  beforeAll(async () => {
    ;[m1, m2] = await Promise.all([node('emgr1'), node('emgr2')])
    start = Date.now() - 1000
    await ok(m1, ['swarm', 'init'])
    await joinSwarm(m2, m1, 'manager')
  }, 60_000)
  afterAll(() => closeNodes(m2, m1))

  it('replays past events with --since/--until on every manager, in the CLI format', async () => {
    await ok(m1, ['network', 'create', '-d', 'overlay', 'evnet'])
    await ok(m1, ['secret', 'create', 'evsecret', '-'], 'x')
    await ok(m1, ['config', 'create', 'evconf', '-'], 'y')
    const until = stamp(Date.now() + 1)
    for (const n of [m1, m2]) {
      // The second manager learns of the changes through raft: wait until its replica has them.
      const out = await waitFor(async () => {
        const r = await ok(n, ['events', '--since', stamp(start), '--until', until])
        return r.includes('config create') ? r : ''
      }, 'the config event on both managers')
      expect(out).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z network create [a-z0-9]{25} \(name=evnet\)$/m,
      )
      expect(out).toMatch(/ secret create [a-z0-9]{25} \(name=evsecret\)$/m)
      expect(out).toMatch(/ config create [a-z0-9]{25} \(name=evconf\)$/m)
      // The managers' node objects, created and then brought up.
      expect(out).toMatch(/ node create [a-z0-9]{25} \(name=emgr1\)$/m)
      const typed = await ok(n, [
        'events',
        '--since',
        stamp(start),
        '--until',
        until,
        '--filter',
        'type=secret',
        '--format',
        '{{json .}}',
      ])
      const msgs = typed
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as EventMessage)
      expect(msgs.map((m) => [m.Type, m.Action, m.Actor.Attributes.name, m.scope])).toEqual([
        ['secret', 'create', 'evsecret', 'swarm'],
      ])
    }
    const bad = await docker(m1, [
      'events',
      '--since',
      stamp(Date.now()),
      '--until',
      stamp(Date.now() - 60_000),
    ])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain('cannot be after `until` time')
  })

  it('follows live events: service create, scale, update state and remove; node availability', async () => {
    const follow = dockerSpawn(m2, [
      'events',
      '--filter',
      'type=service',
      '--filter',
      'type=node',
      '--format',
      '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "replicas.new"}}{{index .Actor.Attributes "availability.new"}}',
    ])
    try {
      // The stream is open once the CLI is connected: a first change then shows up.
      await waitFor(async () => {
        await ok(m1, ['node', 'update', '--availability', 'pause', 'emgr2'])
        await ok(m1, ['node', 'update', '--availability', 'active', 'emgr2'])
        return follow.output().includes('node update emgr2 active')
      }, 'the node update event')
      // The stream may have connected between the two updates above: pause again, now surely followed.
      await ok(m1, ['node', 'update', '--availability', 'pause', 'emgr2'])
      await ok(m1, ['node', 'update', '--availability', 'active', 'emgr2'])
      await ok(m1, ['service', 'create', '-d', '--no-resolve-image', '--name', 'evweb', 'nginx'])
      await ok(m1, ['service', 'scale', '-d', 'evweb=3'])
      await ok(m1, ['service', 'update', '-d', '--image', 'nginx:2', 'evweb'])
      // The rolling update reports its state in the service's events.
      const updates = async () =>
        (
          await ok(m1, [
            'events',
            '--since',
            stamp(start),
            '--until',
            stamp(Date.now()),
            '--filter',
            'service=evweb',
            '--filter',
            'event=update',
            '--format',
            '{{json .Actor.Attributes}}',
          ])
        )
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, string>)
      const attrs = await waitFor(async () => {
        const a = await updates()
        return a.some((x) => x['updatestate.new'] === 'completed') && a
      }, 'the update completed')
      expect(attrs).toContainEqual(
        expect.objectContaining({ 'image.old': 'nginx:latest', 'image.new': 'nginx:2' }),
      )
      expect(attrs).toContainEqual(expect.objectContaining({ 'updatestate.new': 'updating' }))
      expect(attrs).toContainEqual(
        expect.objectContaining({ 'updatestate.old': 'updating', 'updatestate.new': 'completed' }),
      )
      await ok(m1, ['service', 'rm', 'evweb'])
      await waitFor(
        () => follow.output().includes('service remove evweb'),
        'the remove event',
        20_000,
        follow.output,
      )
      const out = follow.output()
      expect(out).toContain('node update emgr2 pause')
      expect(out).toContain('service create evweb')
      expect(out).toContain('service update evweb 3')
      expect(out).not.toContain('network')
    } finally {
      follow.stop()
    }
  })
})
