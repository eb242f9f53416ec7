import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, dumpTasks, initSwarm, ok, rows, waitFor } from './helpers.js'

/** `docker service ls` as { name: [mode, replicas, image, ports] }. */
async function services(n: ClusterNode): Promise<Record<string, string[]>> {
  const out = await ok(n, [
    'service',
    'ls',
    '--format',
    '{{.Name}}|{{.Mode}}|{{.Replicas}}|{{.Image}}|{{.Ports}}',
  ])
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name, ...rest] = l.split('|')
        return [name!, rest]
      }),
  )
}

describe('services, networks and secrets through the docker CLI', () => {
  let n: ClusterNode
  beforeAll(async () => {
    n = await initSwarm('mgr1')
  })
  afterAll(() => closeNodes(n))

  it('creates and lists overlay networks next to ingress', async () => {
    const id = (await ok(n, ['network', 'create', '-d', 'overlay', 'appnet'])).trim()
    expect(id).toMatch(/^[a-z0-9]{25}$/)
    const table = rows(await ok(n, ['network', 'ls']))
    expect(table).toEqual([
      [id.slice(0, 12), 'appnet', 'overlay', 'swarm'],
      [expect.stringMatching(/^[a-z0-9]{12}$/), 'ingress', 'overlay', 'swarm'],
    ])
    const subnet = (
      await ok(n, ['network', 'inspect', 'appnet', '--format', '{{range .IPAM.Config}}{{.Subnet}}{{end}}'])
    ).trim()
    expect(subnet).toBe('10.0.1.0/24')
    const dup = await docker(n, ['network', 'create', '-d', 'overlay', 'appnet'])
    expect(dup.code).not.toBe(0)
  })

  it('creates secrets from stdin and lists them without their data', async () => {
    const id = (await ok(n, ['secret', 'create', 'db_pass', '-'], 's3cr3t')).trim()
    expect(id).toMatch(/^[a-z0-9]{25}$/)
    const table = rows(await ok(n, ['secret', 'ls']))
    expect(table).toEqual([
      [id, 'db_pass', expect.stringMatching(/seconds? ago/), expect.stringMatching(/seconds? ago/)],
    ])
    const inspect = await ok(n, ['secret', 'inspect', 'db_pass'])
    expect(inspect).not.toContain(Buffer.from('s3cr3t').toString('base64'))
    const dup = await docker(n, ['secret', 'create', 'db_pass', '-'], 'x')
    expect(dup.stderr).toMatch(/Error response from daemon: .*db_pass/)
  })

  it('creates configs, hands them to a service and removes them', async () => {
    const id = (await ok(n, ['config', 'create', 'app_cfg', '-'], 'x=1\n')).trim()
    expect(id).toMatch(/^[a-z0-9]{25}$/)
    expect(rows(await ok(n, ['config', 'ls'])).map((r) => r.slice(0, 2))).toEqual([[id, 'app_cfg']])
    expect(await ok(n, ['config', 'inspect', '--pretty', 'app_cfg'])).toMatch(/Data:\nx=1/)
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'cfg',
      '--config',
      'source=app_cfg,target=/etc/app.conf',
      '--no-resolve-image',
      'busybox',
    ])
    const target = await ok(n, [
      'service',
      'inspect',
      'cfg',
      '--format',
      '{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}}:{{.File.Name}}{{end}}',
    ])
    expect(target.trim()).toBe('app_cfg:/etc/app.conf')
    const inUse = await docker(n, ['config', 'rm', 'app_cfg'])
    expect(inUse.code).not.toBe(0)
    await ok(n, ['service', 'rm', 'cfg'])
    await waitFor(async () => (await docker(n, ['config', 'rm', 'app_cfg'])).code === 0, 'app_cfg removed')
    expect((await ok(n, ['config', 'ls', '-q'])).trim()).toBe('')
  })

  it('creates a replicated service and waits until it converged', async () => {
    const r = await docker(n, [
      'service',
      'create',
      '--name',
      'web',
      '--replicas',
      '3',
      '-p',
      '8080:80',
      '--network',
      'appnet',
      '--secret',
      'db_pass',
      '--update-monitor',
      '300ms',
      '--rollback-monitor',
      '300ms',
      'nginx:alpine',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^[a-z0-9]{25}\n/)
    expect(r.stdout).toMatch(/verify: Service [a-z0-9]{25} converged/)
    // There is no registry: the CLI warns and keeps the tag.
    expect(r.stderr).toContain('could not be accessed on a registry')
    expect((await services(n)).web).toEqual(['replicated', '3/3', 'nginx:alpine', '*:8080->80/tcp'])
  })

  it('shows the tasks in docker service ps and the spec in service inspect', async () => {
    const ps = rows(await ok(n, ['service', 'ps', 'web']))
    expect(ps.map((r) => r.slice(1, 5))).toEqual([
      ['web.1', 'nginx:alpine', 'mgr1', 'Running'],
      ['web.2', 'nginx:alpine', 'mgr1', 'Running'],
      ['web.3', 'nginx:alpine', 'mgr1', 'Running'],
    ])
    for (const row of ps) expect(row[5]).toMatch(/^Running (\d+|less than a) seconds? ago$/)
    const pretty = await ok(n, ['service', 'inspect', '--pretty', 'web'])
    expect(pretty).toMatch(/Service Mode:\s+Replicated\n\s+Replicas:\s+3/)
    expect(pretty).toMatch(/Networks: appnet/)
    expect(pretty).toMatch(/Secrets:\n\s+Target:\s+db_pass/)
    expect(pretty).toMatch(/PublishedPort = 8080/)
    // Swarm's defaults appear where the spec left them out (insertDefaults), and are not stored.
    expect(pretty).toMatch(
      /UpdateConfig:\n\s+Parallelism:\s+1\n\s+On failure:\s+pause\n\s+Monitoring Period: 300ms\n\s+Max failure ratio: 0\n\s+Update order:\s+stop-first/,
    )
    expect(pretty).toMatch(/RollbackConfig:\n\s+Parallelism:\s+1/)
    const restart = await ok(n, [
      'service',
      'inspect',
      'web',
      '--format',
      '{{json .Spec.TaskTemplate.RestartPolicy}}',
    ])
    expect(JSON.parse(restart)).toEqual({ Condition: 'any', Delay: 5_000_000_000 })
    // Without insertDefaults (what `service update` and `scale` read and send back) the stored spec comes back.
    const raw = (await (
      await fetch(`${n.dockerHost.replace('tcp://', 'http://')}/v1.50/services/web`)
    ).json()) as {
      Spec: { TaskTemplate: Record<string, unknown> }
    }
    expect(raw.Spec.TaskTemplate.RestartPolicy).toBeUndefined()
    const vip = await ok(n, [
      'service',
      'inspect',
      'web',
      '--format',
      '{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}',
    ])
    expect(vip.trim().split(' ').sort()).toEqual(['10.0.0.2/24', '10.0.1.2/24'])
  })

  it('shows host-mode ports on the tasks in docker service ps', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'edge',
      '--publish',
      'published=8081,target=80,mode=host',
      '--no-resolve-image',
      'nginx:alpine',
    ])
    const row = await waitFor(async () => {
      const r = rows(await ok(n, ['service', 'ps', 'edge']))[0]
      return r?.[5]?.startsWith('Running') && r
    }, 'edge running')
    expect(row.at(-1)).toBe('*:8081->80/tcp')
    // Host-mode ports are not shown by service ls (only ingress ones are).
    expect((await services(n)).edge?.slice(1)).toEqual(['1/1', 'nginx:alpine', ''])
    await ok(n, ['service', 'rm', 'edge'])
  })

  it('refuses an ingress port another service publishes, with the daemon message and no stack trace', async () => {
    const publish = (name: string) =>
      docker(n, [
        'service',
        'create',
        '-d',
        '--name',
        name,
        '-p',
        '8089:80',
        '--no-resolve-image',
        'nginx:alpine',
      ])
    expect((await publish('first')).code).toBe(0)
    const second = await publish('second')
    expect(second.code).not.toBe(0)
    // moby: "port '8089' is already in use by service 'first' (ID) as an ingress port" (InvalidArgument).
    expect(second.stderr).toMatch(
      /Error response from daemon: .*port 8089\/tcp is already in use by service \w+ as an ingress port/,
    )
    expect(second.stderr).not.toMatch(/\n\s+at /)
    expect((await services(n)).second).toBeUndefined()
    // A client's mistake: 400, as moby answers InvalidArgument.
    const res = await fetch(`${n.dockerHost.replace('tcp://', 'http://')}/v1.50/services/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        Name: 'third',
        TaskTemplate: { ContainerSpec: { Image: 'nginx:alpine' } },
        EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8089 }] },
      }),
    })
    expect(res.status).toBe(400)
    await ok(n, ['service', 'rm', 'first'])
  })

  it('scales a service up and down', async () => {
    expect(await ok(n, ['service', 'scale', '-d', 'web=5'])).toContain('web scaled to 5')
    await waitFor(async () => (await services(n)).web?.[1] === '5/5', 'web at 5/5')
    await ok(n, ['service', 'scale', '-d', 'web=2'])
    await waitFor(async () => (await services(n)).web?.[1] === '2/2', 'web at 2/2')
    const running = rows(await ok(n, ['service', 'ps', '-f', 'desired-state=running', 'web']))
    expect(running.map((r) => r[1]).sort()).toEqual(['web.1', 'web.2'])
  })

  it('runs a global service on every node', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--mode',
      'global',
      '--name',
      'monitor',
      '--no-resolve-image',
      'busybox',
    ])
    await waitFor(async () => (await services(n)).monitor?.[1] === '1/1', 'monitor at 1/1')
    expect((await services(n)).monitor?.slice(0, 3)).toEqual(['global', '1/1', 'busybox:latest'])
    const scale = await docker(n, ['service', 'scale', 'monitor=3'])
    expect(scale.stderr).toContain('scale can only be used with replicated or replicated-job mode')
  })

  it('rolls out a new image and keeps the old tasks as history', async () => {
    const r = await docker(n, ['service', 'update', '--image', 'nginx:1.27', 'web'])
    expect(r.code, `${r.stderr}\n${dumpTasks(n)}`).toBe(0)
    expect(r.stdout).toMatch(/verify: Service web converged/)
    expect((await services(n)).web?.slice(1, 3)).toEqual(['2/2', 'nginx:1.27'])
    const ps = rows(await ok(n, ['service', 'ps', 'web']))
    const current = ps.filter((r) => r[1] === 'web.1' || r[1] === 'web.2')
    expect(current.map((r) => [r[2], r[4]])).toEqual([
      ['nginx:1.27', 'Running'],
      ['nginx:1.27', 'Running'],
    ])
    const history = ps.filter((r) => r[1]?.startsWith('\\_'))
    expect(history.length).toBeGreaterThanOrEqual(2)
    for (const h of history) expect([h[2], h[4]]).toEqual(['nginx:alpine', 'Shutdown'])
    const state = await ok(n, [
      'service',
      'inspect',
      'web',
      '--format',
      '{{.UpdateStatus.State}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}',
    ])
    expect(state.trim()).toBe('completed nginx:alpine')
  })

  it('rolls back to the previous spec', async () => {
    const r = await docker(n, ['service', 'rollback', 'web'])
    expect(r.code, `${r.stderr}\n${dumpTasks(n)}`).toBe(0)
    expect(r.stdout).toContain('rollback: manually requested rollback')
    expect(r.stdout).toMatch(/verify: Service web converged/)
    expect((await services(n)).web?.slice(1, 3)).toEqual(['2/2', 'nginx:alpine'])
  })

  it('refuses a stale update version with the daemon message', async () => {
    const url = n.dockerHost.replace('tcp://', 'http://')
    const svc = (await (await fetch(`${url}/v1.50/services/web`)).json()) as {
      ID: string
      Version: { Index: number }
      Spec: unknown
    }
    const res = await fetch(`${url}/v1.50/services/${svc.ID}/update?version=${svc.Version.Index - 1}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(svc.Spec),
    })
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ message: 'rpc error: code = Unknown desc = update out of sequence' })
  })

  it('filters lists by label, inspects any object by name, and lists no stacks', async () => {
    await ok(n, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'labelled',
      '--label',
      'tier=front',
      'nginx:alpine',
    ])
    await ok(n, ['secret', 'create', '--label', 'tier=back', 'labelled_secret', '-'], 'x')
    const names = async (args: string[]) => (await ok(n, args)).trim().split('\n').filter(Boolean).sort()
    expect(await names(['service', 'ls', '--filter', 'label=tier=front', '--format', '{{.Name}}'])).toEqual([
      'labelled',
    ])
    expect(await names(['service', 'ls', '--filter', 'label=tier', '--format', '{{.Name}}'])).toEqual([
      'labelled',
    ])
    expect(await names(['service', 'ls', '--filter', 'label=tier=back', '--format', '{{.Name}}'])).toEqual([])
    expect(await names(['secret', 'ls', '--filter', 'label=tier=back', '--format', '{{.Name}}'])).toEqual([
      'labelled_secret',
    ])
    // `docker stack ls` asks for the services labelled with a stack namespace: none here.
    expect((await ok(n, ['stack', 'ls'])).trim()).toBe('NAME      SERVICES')
    // The generic inspect finds a service, a node and a network by name.
    expect(
      (await ok(n, ['inspect', 'labelled', '--format', '{{.Spec.Name}} {{.Spec.Labels.tier}}'])).trim(),
    ).toBe('labelled front')
    expect((await ok(n, ['inspect', 'mgr1', '--format', '{{.Description.Hostname}}'])).trim()).toBe('mgr1')
    expect((await ok(n, ['inspect', 'ingress', '--format', '{{.Name}}'])).trim()).toBe('ingress')
    await ok(n, ['service', 'rm', 'labelled'])
    await ok(n, ['secret', 'rm', 'labelled_secret'])
  })

  it('deploys, lists and removes a stack from a compose file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmkit-stack-'))
    try {
      const file = join(dir, 'stack.yml')
      writeFileSync(
        file,
        [
          'version: "3.8"',
          'services:',
          '  front:',
          '    image: nginx:alpine',
          '    deploy: { replicas: 3 }',
          '    networks: [back]',
          '  cache:',
          '    image: redis:alpine',
          '    networks: [back]',
          'networks:',
          '  back: { driver: overlay }',
          '',
        ].join('\n'),
      )
      // The CLI parses the file; the daemon gets labelled networks and services, the networks by name.
      const out = await ok(n, ['stack', 'deploy', '-d', '-c', file, 'shop'])
      expect(out).toContain('Creating network shop_back')
      expect(rows(await ok(n, ['stack', 'ls']))).toEqual([['shop', '2']])
      await waitFor(async () => {
        const s = await ok(n, ['stack', 'services', 'shop', '--format', '{{.Name}} {{.Replicas}}'])
        return s.trim().split('\n').sort().join(',') === 'shop_cache 1/1,shop_front 3/3'
      }, 'the stack converged')
      const ps = await ok(n, ['stack', 'ps', 'shop', '-f', 'desired-state=running', '--format', '{{.Name}}'])
      expect(ps.trim().split('\n').sort()).toEqual([
        'shop_cache.1',
        'shop_front.1',
        'shop_front.2',
        'shop_front.3',
      ])
      const net = await ok(n, [
        'network',
        'inspect',
        'shop_back',
        '--format',
        '{{index .Labels "com.docker.stack.namespace"}}',
      ])
      expect(net.trim()).toBe('shop')
      // Removing the stack removes its services; its network goes once their tasks have stopped.
      await docker(n, ['stack', 'rm', 'shop'])
      await waitFor(
        async () => (await ok(n, ['stack', 'ls'])).trim() === 'NAME      SERVICES',
        'no stack left',
      )
      await waitFor(async () => {
        if (!(await ok(n, ['network', 'ls', '--format', '{{.Name}}'])).includes('shop_back')) return true
        await docker(n, ['network', 'rm', 'shop_back'])
        return false
      }, 'the stack network removed')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('removes services, then their network', async () => {
    const inUse = await docker(n, ['network', 'rm', 'appnet'])
    expect(inUse.code).not.toBe(0)
    expect(inUse.stderr).toContain('is in use by service')
    expect((await ok(n, ['service', 'rm', 'web', 'monitor'])).trim().split('\n')).toEqual(['web', 'monitor'])
    expect(await services(n)).toEqual({})
    expect((await ok(n, ['network', 'rm', 'appnet'])).trim()).toBe('appnet')
    expect(rows(await ok(n, ['network', 'ls'])).map((r) => r[1])).toEqual(['ingress'])
    const missing = await docker(n, ['service', 'rm', 'web'])
    expect(missing.stderr).toContain('service web not found')
  })
})
