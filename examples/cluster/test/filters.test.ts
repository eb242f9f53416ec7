import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, docker, dumpTasks, joinSwarm, node, ok, waitFor } from './helpers.js'
import { createService } from './service-waits.js'

const lines = (s: string) => s.trim().split('\n').filter(Boolean).sort()

describe('list filters, secret and config updates, stack redeploys through the docker CLI', () => {
  let mgr: ClusterNode
  let wrk: ClusterNode | undefined
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swarmkit-filters-'))
    mgr = await node('fmgr')
    await ok(mgr, ['swarm', 'init'])
    wrk = await node('fwrk')
    await joinSwarm(wrk, mgr, 'worker')
    await waitFor(
      async () => (await ok(mgr, ['node', 'ls', '-q'])).trim().split('\n').length === 2,
      '2 nodes',
    )
  }, 60_000)
  afterAll(async () => {
    await Promise.all([wrk?.close(), mgr?.close()])
    rmSync(dir, { recursive: true, force: true })
    cleanup()
  })

  /** A stack file with one service using secret `token` and config `settings` (files secret.txt and conf.txt). */
  const writeStack = (file: string, service: string, ...extra: string[]) => {
    writeFileSync(join(dir, 'secret.txt'), 'one')
    writeFileSync(join(dir, 'conf.txt'), 'a=1')
    writeFileSync(
      file,
      [
        'version: "3.8"',
        'services:',
        `  ${service}:`,
        '    image: nginx:alpine',
        '    secrets: [token]',
        '    configs: [settings]',
        ...extra,
        'secrets:',
        '  token: { file: ./secret.txt }',
        'configs:',
        '  settings: { file: ./conf.txt }',
        '',
      ].join('\n'),
    )
  }

  it('filters nodes by node label, role, name and membership; refuses unknown keys in moby words', async () => {
    await ok(mgr, ['node', 'update', '--label-add', 'zone=b', 'fwrk'])
    const names = async (...f: string[]) =>
      lines(await ok(mgr, ['node', 'ls', ...f.flatMap((x) => ['-f', x]), '--format', '{{.Hostname}}']))
    expect(await names('node.label=zone=b')).toEqual(['fwrk'])
    expect(await names('node.label=zone=a')).toEqual([])
    expect(await names('node.label=zone')).toEqual(['fwrk'])
    expect(await names('role=manager')).toEqual(['fmgr'])
    expect(await names('role=worker')).toEqual(['fwrk'])
    expect(await names('name=fw')).toEqual(['fwrk'])
    expect(await names('membership=accepted')).toEqual(['fmgr', 'fwrk'])
    const bad = await docker(mgr, ['node', 'ls', '-f', 'colour=red'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain("Error response from daemon: invalid filter 'colour'")
    const role = await docker(mgr, ['node', 'ls', '-f', 'role=boss'])
    expect(role.stderr).toContain("Invalid role filter: 'boss'")
  })

  it('filters tasks by name (service.slot), desired state and node', async () => {
    await createService(mgr, 'web', '--replicas', '4', 'nginx')
    await waitFor(
      async () => lines(await ok(mgr, ['service', 'ps', 'web', '-q'])).length === 4,
      'four tasks',
      30_000,
      () => dumpTasks(mgr),
    )
    const three = await ok(mgr, ['service', 'ps', '-f', 'name=web.3', 'web', '--format', '{{.Name}}'])
    expect(lines(three)).toEqual(['web.3'])
    const running = await ok(mgr, ['service', 'ps', '-f', 'desired-state=running', 'web', '-q'])
    expect(lines(running)).toHaveLength(4)
    const shutdown = await ok(mgr, ['service', 'ps', '-f', 'desired-state=shutdown', 'web', '-q'])
    expect(lines(shutdown)).toEqual([])
    const onWorker = lines(await ok(mgr, ['node', 'ps', 'fwrk', '-q']))
    const onManager = lines(await ok(mgr, ['node', 'ps', 'self', '-q']))
    expect(onWorker.length + onManager.length).toBe(4)
    const bad = await docker(mgr, ['service', 'ps', '-f', 'desired-state=sleeping', 'web'])
    expect(bad.stderr).toContain("Invalid desired-state filter: 'sleeping'")
    const unknown = await docker(mgr, ['service', 'ps', '-f', 'colour=red', 'web'])
    expect(unknown.stderr).toContain("invalid filter 'colour'")
  })

  it('filters services by mode and name, networks by type and dangling, secrets and configs by name', async () => {
    await createService(mgr, 'agent', '--mode', 'global', 'busybox')
    expect(lines(await ok(mgr, ['service', 'ls', '-f', 'mode=global', '--format', '{{.Name}}']))).toEqual([
      'agent',
    ])
    expect(lines(await ok(mgr, ['service', 'ls', '-f', 'mode=replicated', '--format', '{{.Name}}']))).toEqual(
      ['web'],
    )
    expect(lines(await ok(mgr, ['service', 'ls', '-f', 'name=ag', '--format', '{{.Name}}']))).toEqual([
      'agent',
    ])
    expect((await docker(mgr, ['service', 'ls', '-f', 'colour=red'])).stderr).toContain(
      "invalid filter 'colour'",
    )

    await ok(mgr, ['network', 'create', '-d', 'overlay', 'spare'])
    const nets = async (...f: string[]) =>
      lines(await ok(mgr, ['network', 'ls', ...f.flatMap((x) => ['-f', x]), '--format', '{{.Name}}']))
    expect(await nets('type=custom')).toEqual(['spare'])
    expect(await nets('type=builtin')).toEqual(['ingress'])
    expect(await nets('dangling=true')).toEqual(['spare'])
    expect(await nets('scope=swarm')).toEqual(['ingress', 'spare'])
    expect(await nets('name=^sp')).toEqual(['spare'])
    expect((await docker(mgr, ['network', 'ls', '-f', 'type=odd'])).stderr).toContain(
      "invalid filter: 'type'='odd'",
    )

    await ok(mgr, ['secret', 'create', 'db_pass', '-'], 'pw')
    await ok(mgr, ['config', 'create', 'app_conf', '-'], 'x=1')
    expect(lines(await ok(mgr, ['secret', 'ls', '-f', 'name=db', '--format', '{{.Name}}']))).toEqual([
      'db_pass',
    ])
    expect(lines(await ok(mgr, ['config', 'ls', '-f', 'name=app', '--format', '{{.Name}}']))).toEqual([
      'app_conf',
    ])
    expect((await docker(mgr, ['config', 'ls', '-f', 'names=app_conf'])).stderr).toContain(
      "invalid filter 'names'",
    )
    await ok(mgr, ['service', 'rm', 'agent', 'web'])
  })

  it('filters by id and label on every list, tasks by node and id; unknown keys are a 400', async () => {
    await createService(mgr, 'lab', '--label', 'tier=front', '--replicas', '2', 'nginx')
    await ok(mgr, ['service', 'create', '-d', '--no-resolve-image', '--name', 'plain', 'nginx'])
    const q = async (args: string[]) => lines(await ok(mgr, args))
    const id = async (kind: string, name: string) =>
      (await ok(mgr, [kind, 'inspect', '-f', '{{.ID}}', name])).trim()
    // nodes: id prefix; label (the engine's labels: none here) and node.label
    const wid = await id('node', 'fwrk')
    expect(await q(['node', 'ls', '-f', `id=${wid.slice(0, 5)}`, '--format', '{{.Hostname}}'])).toEqual([
      'fwrk',
    ])
    expect(await q(['node', 'ls', '-f', 'label=zone', '--format', '{{.Hostname}}'])).toEqual([])
    // services: id prefix, label key or key=value
    const sid = await id('service', 'lab')
    expect(await q(['service', 'ls', '-f', `id=${sid.slice(0, 6)}`, '--format', '{{.Name}}'])).toEqual([
      'lab',
    ])
    expect(await q(['service', 'ls', '-f', 'label=tier', '--format', '{{.Name}}'])).toEqual(['lab'])
    expect(await q(['service', 'ls', '-f', 'label=tier=front', '--format', '{{.Name}}'])).toEqual(['lab'])
    expect(await q(['service', 'ls', '-f', 'label=tier=back', '--format', '{{.Name}}'])).toEqual([])
    // tasks: by node (name or ID), id prefix, the service's labels
    await waitFor(
      async () => (await q(['service', 'ps', 'lab', 'plain', '-q'])).length === 3,
      'three tasks',
      30_000,
      () => dumpTasks(mgr),
    )
    const all = await q(['service', 'ps', 'lab', 'plain', '--no-trunc', '--format', '{{.ID}} {{.Node}}'])
    const onWorker = all.filter((l) => l.endsWith(' fwrk')).map((l) => l.split(' ')[0]!)
    expect(await q(['service', 'ps', 'lab', 'plain', '-f', 'node=fwrk', '-q'])).toEqual(onWorker.sort())
    expect(await q(['service', 'ps', 'lab', 'plain', '-f', `node=${wid}`, '-q'])).toEqual(onWorker.sort())
    const [first] = all[0]!.split(' ')
    expect(await q(['service', 'ps', 'lab', 'plain', '-f', `id=${first!.slice(0, 8)}`, '-q'])).toEqual([
      first,
    ])
    expect(
      await q(['service', 'ps', 'lab', 'plain', '-f', 'label=tier=front', '--format', '{{.Name}}']),
    ).toEqual(['lab.1', 'lab.2'])
    expect((await docker(mgr, ['service', 'ps', '-f', 'node=nowhere', 'lab'])).stderr).toContain('nowhere')
    // networks: driver, id, label, dangling=false (the ingress network and the ones services use)
    await ok(mgr, ['network', 'create', '-d', 'overlay', '--label', 'team=a', 'labelled'])
    await ok(mgr, ['service', 'update', '-d', '--network-add', 'labelled', 'plain'])
    const nid = await id('network', 'labelled')
    const nets = (...f: string[]) =>
      q(['network', 'ls', ...f.flatMap((x) => ['-f', x]), '--format', '{{.Name}}'])
    expect(await nets(`id=${nid.slice(0, 6)}`)).toEqual(['labelled'])
    expect(await nets('label=team=a')).toEqual(['labelled'])
    expect(await nets('label=team=b')).toEqual([])
    expect(await nets('driver=overlay')).toEqual(expect.arrayContaining(['ingress', 'labelled']))
    expect(await nets('driver=bridge')).toEqual([])
    expect(
      await waitFor(
        async () => (await nets('dangling=false')).length === 2 && nets('dangling=false'),
        'used networks',
      ),
    ).toEqual(['ingress', 'labelled'])
    // secrets and configs: id prefix, label
    await ok(mgr, ['secret', 'create', '--label', 'env=prod', 'prod_pass', '-'], 'pw')
    await ok(mgr, ['config', 'create', '--label', 'env=prod', 'prod_conf', '-'], 'x=2')
    const secId = await id('secret', 'prod_pass')
    const cfgId = await id('config', 'prod_conf')
    expect(await q(['secret', 'ls', '-f', `id=${secId.slice(0, 6)}`, '--format', '{{.Name}}'])).toEqual([
      'prod_pass',
    ])
    expect(await q(['secret', 'ls', '-f', 'label=env=prod', '--format', '{{.Name}}'])).toEqual(['prod_pass'])
    expect(await q(['secret', 'ls', '-f', 'label=env=dev', '--format', '{{.Name}}'])).toEqual([])
    expect(await q(['config', 'ls', '-f', `id=${cfgId.slice(0, 6)}`, '--format', '{{.Name}}'])).toEqual([
      'prod_conf',
    ])
    expect(await q(['config', 'ls', '-f', 'label=env', '--format', '{{.Name}}'])).toEqual(['prod_conf'])
    // Unknown keys: 400 with moby's words, on every list.
    const filters = encodeURIComponent(JSON.stringify({ colour: { red: true } }))
    for (const path of ['nodes', 'services', 'tasks', 'networks', 'secrets', 'configs']) {
      const r = await fetch(`${mgr.dockerHost.replace('tcp://', 'http://')}/v1.47/${path}?filters=${filters}`)
      expect([path, r.status]).toEqual([path, 400])
      expect(await r.json()).toEqual({ message: "invalid filter 'colour'" })
    }
    const names = encodeURIComponent(JSON.stringify({ names: { prod_pass: true } }))
    const exact = await fetch(`${mgr.dockerHost.replace('tcp://', 'http://')}/v1.47/secrets?filters=${names}`)
    expect(((await exact.json()) as { Spec: { Name: string } }[]).map((x) => x.Spec.Name)).toEqual([
      'prod_pass',
    ])
    await ok(mgr, ['service', 'rm', 'lab', 'plain'])
  })

  it('redeploys a stack with secrets and configs; refuses changed data in moby words', async () => {
    const file = join(dir, 'stack.yml')
    writeStack(file, 'api')
    await ok(mgr, ['stack', 'deploy', '-d', '-c', file, 'app'])
    // The usual CI redeploy: the same file again updates the secret and config (labels) and the service.
    const again = await ok(mgr, ['stack', 'deploy', '-d', '-c', file, 'app'])
    expect(again).toContain('Updating service app_api')
    // Changed data: refused as swarm refuses it.
    writeFileSync(join(dir, 'secret.txt'), 'two')
    const changed = await docker(mgr, ['stack', 'deploy', '-d', '-c', file, 'app'])
    expect(changed.code).not.toBe(0)
    expect(changed.stderr).toContain('only updates to Labels are allowed')
    writeFileSync(join(dir, 'secret.txt'), 'one')
    // Straight through the API: labels change, a rename is refused, a stale version is out of sequence.
    const base = `${mgr.dockerHost.replace('tcp://', 'http://')}/v1.47`
    for (const [kind, name] of [
      ['secrets', 'app_token'],
      ['configs', 'app_settings'],
    ] as const) {
      const get = async () =>
        (await (await fetch(`${base}/${kind}/${name}`)).json()) as {
          ID: string
          Version: { Index: number }
          Spec: Record<string, unknown> & { Labels: Record<string, string> }
        }
      const cur = await get()
      const post = (version: number, spec: unknown) =>
        fetch(`${base}/${kind}/${cur.ID}/update?version=${version}`, {
          method: 'POST',
          body: JSON.stringify(spec),
          headers: { 'Content-Type': 'application/json' },
        })
      const relabel = await post(cur.Version.Index, {
        ...cur.Spec,
        Labels: { ...cur.Spec.Labels, team: 'b' },
      })
      expect([kind, relabel.status]).toEqual([kind, 200])
      expect((await get()).Spec.Labels).toEqual({ ...cur.Spec.Labels, team: 'b' })
      const stale = await post(cur.Version.Index, cur.Spec)
      expect(await stale.json()).toEqual({
        message: 'rpc error: code = Unknown desc = update out of sequence',
      })
      const now = await get()
      const renamed = await post(now.Version.Index, { ...now.Spec, Name: `${name}_2` })
      expect([kind, renamed.status]).toEqual([kind, 400])
      expect(await renamed.json()).toEqual({
        message: 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed',
      })
      const redata = await post(now.Version.Index, {
        ...now.Spec,
        Data: Buffer.from('other').toString('base64'),
      })
      expect([kind, redata.status]).toEqual([kind, 400])
      expect(await redata.json()).toEqual({
        message: 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed',
      })
    }
    // The network may wait for the tasks to stop (as in moby); the secret and config go at once.
    await docker(mgr, ['stack', 'rm', 'app'])
    expect((await ok(mgr, ['secret', 'ls', '-q', '-f', 'name=app_token'])).trim()).toBe('')
    expect((await ok(mgr, ['config', 'ls', '-q', '-f', 'name=app_settings'])).trim()).toBe('')
  })

  it('removes a stack with its secrets and configs while a task lingers on a down node', async () => {
    const file = join(dir, 'pinned.yml')
    writeStack(file, 'job', '    deploy: { placement: { constraints: [node.role==worker] } }')
    await ok(mgr, ['stack', 'deploy', '-d', '-c', file, 'pin'])
    await waitFor(
      async () =>
        (await ok(mgr, ['stack', 'ps', 'pin', '--format', '{{.CurrentState}}'])).startsWith('Running'),
      'the task running on the worker',
      30_000,
      () => dumpTasks(mgr),
    )
    await wrk!.close()
    wrk = undefined
    await waitFor(
      async () =>
        (await ok(mgr, ['node', 'inspect', 'fwrk', '--format', '{{.Status.State}}'])).trim() === 'down',
      'the worker down',
      30_000,
    )
    // docker events told of the node going down.
    const down = await ok(mgr, [
      'events',
      '--since',
      String(Math.floor(Date.now() / 1000) - 120),
      '--until',
      String(Date.now() / 1000),
      '--filter',
      'node=fwrk',
      '--format',
      '{{.Action}} {{index .Actor.Attributes "state.old"}}->{{index .Actor.Attributes "state.new"}}',
    ])
    expect(down).toContain('update ready->down')
    // The network stays while the task on the down node is not known to have stopped (as in swarm).
    const rm = await docker(mgr, ['stack', 'rm', 'pin'])
    expect(rm.stderr).not.toContain('secret')
    expect(rm.stderr).not.toContain('config')
    expect(rm.stdout).toContain('Removing secret pin_token')
    expect(rm.stdout).toContain('Removing config pin_settings')
    expect((await ok(mgr, ['secret', 'ls', '-q', '-f', 'name=pin_'])).trim()).toBe('')
    expect((await ok(mgr, ['config', 'ls', '-q', '-f', 'name=pin_'])).trim()).toBe('')
  })
})
