import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode, EventMessage } from '../src/index.js'
import { closeNodes, docker, dockerSpawn, dumpTasks, joinSwarm, node, ok, waitFor } from './helpers.js'
import { createService, waitServiceLs } from './service-waits.js'

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
      // The stream may have connected between the two updates above: pause again, now surely followed. (On
      // a loaded machine the leader may rewrite the node between the CLI's read and its write: "update out
      // of sequence", as swarm says too; the CLI's update is then simply made again.)
      for (const availability of ['pause', 'active'])
        await waitFor(
          () => ok(m1, ['node', 'update', '--availability', availability, 'emgr2']).then(() => true),
          `emgr2 ${availability}`,
        )
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
  it('filters by network, secret, config, scope and label; takes relative and RFC 3339 --since', async () => {
    const t0 = Date.now()
    await ok(m1, ['network', 'create', '-d', 'overlay', 'fnet'])
    await ok(m1, ['secret', 'create', 'fsecret', '-'], 'x')
    await ok(m1, ['config', 'create', 'fconf', '-'], 'y')
    const until = stamp(Date.now() + 1)
    const names = async (...args: string[]) =>
      (
        await waitFor(
          async () =>
            (await ok(m2, ['events', ...args, '--format', '{{.Type}} {{.Actor.Attributes.name}}'])) || '',
          'events',
        )
      )
        .trim()
        .split('\n')
    const since = ['--since', stamp(t0 - 1), '--until', until]
    await waitFor(
      async () => (await ok(m2, ['events', ...since])).includes('(name=fconf)'),
      'the config event on m2',
    )
    expect(await names(...since, '--filter', 'network=fnet')).toEqual(['network fnet'])
    expect(await names(...since, '--filter', 'secret=fsec')).toEqual(['secret fsecret'])
    expect(await names(...since, '--filter', 'config=fconf')).toEqual(['config fconf'])
    const secretId = (await ok(m1, ['secret', 'inspect', '-f', '{{.ID}}', 'fsecret'])).trim()
    expect(await names(...since, '--filter', `secret=${secretId.slice(0, 6)}`)).toEqual(['secret fsecret'])
    expect(await names(...since, '--filter', 'type=network', '--filter', 'type=config')).toEqual([
      'network fnet',
      'config fconf',
    ])
    expect(await names(...since, '--filter', 'scope=swarm', '--filter', 'type=secret')).toEqual([
      'secret fsecret',
    ])
    // Swarm's events carry no labels (as moby's): a label filter matches none; scope local none either.
    expect((await ok(m2, ['events', ...since, '--filter', 'label=a'])).trim()).toBe('')
    expect((await ok(m2, ['events', ...since, '--filter', 'scope=local'])).trim()).toBe('')
    // The CLI turns relative and RFC 3339 times into seconds since the epoch; both reach back here.
    // (A relative time is whole seconds: `--until 0s` would leave out the events of the current second.)
    const rel = await ok(m2, ['events', '--since', '10m', '--until', until, '--filter', 'type=config'])
    expect(rel).toMatch(/ config create [a-z0-9]{25} \(name=fconf\)$/m)
    const iso = new Date(t0 - 1000).toISOString().replace(/\.\d+Z$/, 'Z')
    const abs = await ok(m2, ['events', '--since', iso, '--until', until, '--filter', 'type=secret'])
    expect(abs).toMatch(/ secret create [a-z0-9]{25} \(name=fsecret\)$/m)
  })

  it('tells of a paused update and of a rollback (updatestate paused, rollback_started, rollback_completed)', async () => {
    await createService(m1, 'evroll', '--replicas', '2', 'nginx:1')
    await waitServiceLs(m1, 'evroll', '2/2')
    const from = stamp(Date.now() - 1000)
    // The new tasks exit with an error at once: the update pauses.
    await ok(m1, [
      'service',
      'update',
      '-d',
      '--no-resolve-image',
      '--image',
      'nginx:2',
      '--update-failure-action',
      'pause',
      '--update-monitor',
      '5s',
      '--container-label-add',
      'com.swarmkit.simulate.exit-code=1',
      '--container-label-add',
      'com.swarmkit.simulate.exit-after=50',
      'evroll',
    ])
    const states = async () =>
      (
        await ok(m2, [
          'events',
          '--since',
          from,
          '--until',
          stamp(Date.now()),
          '--filter',
          'service=evroll',
          '--format',
          '{{index .Actor.Attributes "updatestate.old"}}>{{index .Actor.Attributes "updatestate.new"}}',
        ])
      )
        .trim()
        .split('\n')
        .filter((l) => l !== '>')
    await waitFor(
      async () => (await states()).includes('updating>paused'),
      'the update paused',
      40_000,
      () => dumpTasks(m1),
    )
    await ok(m1, ['service', 'rollback', '-d', 'evroll'])
    const seen = await waitFor(
      async () => {
        const s = await states()
        return s.includes('rollback_started>rollback_completed') && s
      },
      'the rollback completed',
      40_000,
      () => dumpTasks(m1),
    )
    expect(seen).toContain('paused>rollback_started')
    await ok(m1, ['service', 'rm', 'evroll'])
  })
})
