import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import {
  buildImages,
  containersOf,
  engineDocker,
  IMAGES,
  removeContainers,
  testEngine,
} from './engine-helpers.js'
import { cleanup, docker, dumpTasks, node, ok, stateDir, waitFor } from './helpers.js'

const run = promisify(execFile)
const engine = await testEngine()

/** `docker service ps` rows as `name|desired|current|error`. */
async function ps(n: ClusterNode, service: string): Promise<string[]> {
  const out = await ok(n, [
    'service',
    'ps',
    service,
    '--no-trunc',
    '--format',
    '{{.Name}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}',
  ])
  return out.split('\n').filter(Boolean)
}

describe.skipIf(!engine)('the Docker Engine executor', { timeout: 180_000 }, () => {
  const addr = engine!
  let mgr: ClusterNode
  let nodeIds: string[] = []
  beforeAll(async () => {
    await buildImages(addr)
    mgr = await node('dk-mgr', {
      engineAddr: addr,
      genericResources: [
        { namedResourceSpec: { kind: 'gpu', value: 'GPU-0' } },
        { discreteResourceSpec: { kind: 'ssd', value: 2 } },
      ],
    })
    await ok(mgr, ['swarm', 'init'])
    nodeIds = [mgr.daemon.nodeId]
  }, 120_000)
  afterAll(async () => {
    await mgr?.close()
    if (engine) await removeContainers(addr, nodeIds)
    cleanup()
  })

  it('runs tasks as containers named and labelled as swarm does, and docker service logs shows their output', async () => {
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'web',
      '--replicas',
      '2',
      '--hostname',
      '{{.Task.Name}}',
      '--stop-grace-period',
      '2s',
      IMAGES.webV1,
    ])
    await waitFor(
      async () => (await ps(mgr, 'web')).filter((l) => l.includes('|Running|Running')).length === 2,
      'two running tasks',
      60_000,
      () => dumpTasks(mgr),
    )
    const lines = (
      await engineDocker(addr, [
        'ps',
        '--filter',
        'label=com.docker.swarm.service.name=web',
        '--filter',
        `label=com.docker.swarm.node.id=${mgr.daemon.nodeId}`,
        '--format',
        '{{.Names}} {{.Label "com.docker.swarm.task.name"}} {{.Label "com.docker.swarm.task.id"}}',
      ])
    )
      .split('\n')
      .filter(Boolean)
      .sort()
    expect(lines).toHaveLength(2)
    for (const [i, l] of lines.entries()) {
      const [name, taskName, taskId] = l.split(' ')
      expect(name).toBe(`web.${i + 1}.${taskId}`)
      expect(taskName).toBe(name)
    }
    const logs = await waitFor(
      async () => {
        const out = await ok(mgr, ['service', 'logs', 'web'])
        return out.includes('web v1 listening as web.1.') && out.includes('web v1 listening as web.2.') && out
      },
      "the containers' output in docker service logs",
      30_000,
    )
    expect(logs).toMatch(/^web\.1\.\w+@dk-mgr +\| web v1 listening as web\.1\.\w+$/m)
    await ok(mgr, ['service', 'rm', 'web'])
    await waitFor(async () => (await containersOf(addr, nodeIds)).length === 0, 'containers removed', 60_000)
  })

  it('mounts secrets and configs as files from a tmpfs, never on disk, and removes them with the task', async () => {
    const value = `pw-${Math.random().toString(36).slice(2)}-${Date.now()}`
    await ok(mgr, ['secret', 'create', 'db_pass', '-'], value)
    await ok(mgr, ['config', 'create', 'app_conf', '-'], 'setting=1\n')
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'sec',
      '--secret',
      'db_pass',
      '--config',
      'source=app_conf,target=/etc/app.conf,mode=0440',
      '--stop-grace-period',
      '2s',
      IMAGES.webV1,
    ])
    await waitFor(
      async () => (await ps(mgr, 'sec')).some((l) => l.includes('|Running|Running')),
      'sec running',
      60_000,
    )
    const name = (await containersOf(addr, nodeIds))
      .find((l) => l.startsWith('sec.1.') && l.endsWith(' running'))
      ?.split(' ')[0]
    expect(name, (await containersOf(addr, nodeIds)).join('\n')).toBeDefined()
    expect((await engineDocker(addr, ['exec', name!, 'cat', '/run/secrets/db_pass'])).trim()).toBe(value)
    expect(await engineDocker(addr, ['exec', name!, 'cat', '/etc/app.conf'])).toBe('setting=1\n')
    expect((await engineDocker(addr, ['exec', name!, 'stat', '-c', '%a', '/etc/app.conf'])).trim()).toBe(
      '440',
    )
    // Nowhere on disk: not in the node's state, not in the engine's data root (only on the tmpfs).
    const mounts = await engineDocker(addr, [
      'inspect',
      name!,
      '--format',
      '{{range .Mounts}}{{.Source}} {{end}}',
    ])
    const source = mounts.split(' ').find((s) => s.includes('secret-'))!
    expect(source.startsWith('/dev/shm/')).toBe(true)
    const dataRoot = (await engineDocker(addr, ['info', '--format', '{{.DockerRootDir}}'])).trim()
    for (const dir of [stateDir(''), dataRoot]) {
      // Exit 1: no match. Exit 2: a file vanished while grep read the tree (other tests' containers and nodes
      // come and go under these directories); what it did match is still in stdout.
      const found = await run('grep', ['-rls', '--binary-files=text', value, dir]).then(
        (r) => r.stdout,
        (err) => (err.code === 1 || err.code === 2 ? String(err.stdout ?? '') : Promise.reject(err)),
      )
      expect(found, `secret found in ${dir}`).toBe('')
    }
    await ok(mgr, ['service', 'rm', 'sec'])
    await waitFor(async () => (await containersOf(addr, nodeIds)).length === 0, 'container removed', 60_000)
    // The secrets directory goes with the task, just after its container.
    await waitFor(async () => !existsSync(source), 'secret files removed', 30_000)
  })

  it("reports failures with Docker's error text and leaks nothing", async () => {
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'crash',
      '--restart-max-attempts',
      '0',
      IMAGES.exit1,
    ])
    await ok(mgr, ['service', 'create', '--detach', '--name', 'noimage', 'swarmkit-test/does-not-exist:1'])
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'nomount',
      '--mount',
      'type=bind,source=/nonexistent/swarmkit-test,target=/data',
      IMAGES.webV1,
    ])
    await waitFor(
      async () => (await ps(mgr, 'crash')).some((l) => /\|Failed .*\|"?task: non-zero exit \(1\)"?$/.test(l)),
      'crash: non-zero exit',
      60_000,
      () => dumpTasks(mgr),
    )
    await waitFor(
      async () =>
        (await ps(mgr, 'noimage')).some((l) =>
          /\|Rejected .*\|"?No such image: swarmkit-test\/does-not-exist:1"?$/.test(l),
        ),
      'noimage: rejected, no such image',
      60_000,
      () => dumpTasks(mgr),
    )
    await waitFor(
      async () =>
        (await ps(mgr, 'nomount')).some((l) =>
          l.includes('bind source path does not exist: /nonexistent/swarmkit-test'),
        ),
      "nomount: rejected with the engine's mount error",
      60_000,
      () => dumpTasks(mgr),
    )
    const logs = await ok(mgr, ['service', 'logs', 'crash'])
    expect(logs).toContain('about to fail')
    for (const s of ['crash', 'noimage', 'nomount']) await ok(mgr, ['service', 'rm', s])
    await waitFor(async () => (await containersOf(addr, nodeIds)).length === 0, 'containers removed', 60_000)
    // Nothing leaked: no sandbox (network namespace) of any task, no secrets directory of any task.
    const taskIds = mgr.daemon.manager!.store.view((tx) => tx.find('tasks').map((t) => t.id))
    const namespaces = (await run('ip', ['netns', 'list'])).stdout
    expect(taskIds.filter((id) => namespaces.includes(id))).toEqual([])
    const shm = readdirSync('/dev/shm').filter((d) => d.endsWith('-dk-mgr'))
    for (const d of shm) expect(readdirSync(`/dev/shm/${d}`)).toEqual([])
    // The node keeps working.
    expect((await docker(mgr, ['node', 'ls'])).code).toBe(0)
  })

  it('kills a container that ignores SIGTERM after its grace period', async () => {
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'stubborn',
      '--stop-grace-period',
      '1s',
      IMAGES.stubborn,
    ])
    await waitFor(
      async () => (await ps(mgr, 'stubborn')).some((l) => l.includes('|Running|Running')),
      'stubborn running',
      60_000,
    )
    const started = Date.now()
    await ok(mgr, ['service', 'rm', 'stubborn'])
    await waitFor(
      async () => (await containersOf(addr, nodeIds)).length === 0,
      'stubborn killed and removed',
      60_000,
    )
    // It ignored SIGTERM: it went only when killed, after its 1 s grace period.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
  })

  it('says which executor runs the tasks in docker info', async () => {
    const info = await ok(mgr, ['info', '--format', '{{.OperatingSystem}}|{{.Driver}}'])
    expect(info.trim()).toBe('swarmkit reference cluster (docker executor)|docker')
    const version = (await engineDocker(addr, ['version', '--format', '{{.Server.Version}}'])).trim()
    expect(
      await ok(mgr, ['node', 'inspect', 'self', '--format', '{{.Description.Engine.EngineVersion}}']),
    ).toBe(`${version}\n`)
  })

  it('forwards containers, exec (hijacked), logs, images and load to the engine: one address for everything', async () => {
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'px',
      '--stop-grace-period',
      '2s',
      IMAGES.webV1,
    ])
    await waitFor(
      async () => (await ps(mgr, 'px')).some((l) => l.includes('|Running|Running')),
      'px running',
      60_000,
    )
    const listed = await ok(mgr, [
      'ps',
      '--filter',
      'label=com.docker.swarm.service.name=px',
      '--format',
      '{{.Names}}',
    ])
    const name = listed.trim()
    expect(name).toMatch(/^px\.1\.\w{25}$/)
    expect(await ok(mgr, ['logs', name])).toContain('web v1 listening as')
    expect(await ok(mgr, ['exec', name, 'cat', '/etc/passwd'])).toContain('root:x:0:0')
    // Standard input through the hijacked connection, both ways.
    expect(await ok(mgr, ['exec', '-i', name, 'tr', 'a-z', 'A-Z'], 'through the node\n')).toBe(
      'THROUGH THE NODE\n',
    )
    // With a terminal (script gives the CLI one), as `docker exec -it` is used.
    const tty = await run(
      'script',
      ['-qec', `docker exec -it ${name} sh -c 'echo tty-ok; tty'`, '/dev/null'],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          DOCKER_HOST: mgr.dockerHost,
          DOCKER_CONFIG: '/tmp/swarmkit-px-config',
        },
        timeout: 30_000,
      },
    )
    expect(tty.stdout).toContain('tty-ok')
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/)
    expect(await ok(mgr, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).toContain(IMAGES.webV1)
    // docker load through the node: an image saved from the engine comes back under a new name.
    const tar = await run('docker', ['-H', addr, 'save', IMAGES.job], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    })
    await engineDocker(addr, ['rmi', IMAGES.job])
    const loaded = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'docker',
        ['load'],
        {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            DOCKER_HOST: mgr.dockerHost,
            DOCKER_CONFIG: '/tmp/swarmkit-px-config',
          },
        },
        (err, stdout) => (err ? reject(err) : resolve(String(stdout))),
      )
      child.stdin?.end(tar.stdout)
    })
    expect(loaded).toContain(`Loaded image: ${IMAGES.job}`)
    await ok(mgr, ['service', 'rm', 'px'])
    await waitFor(async () => (await containersOf(addr, nodeIds)).length === 0, 'px removed', 60_000)
  })

  it('follows health and completion: running only once healthy, failed when unhealthy, complete on exit 0', async () => {
    await ok(mgr, ['service', 'create', '--detach', '--name', 'sick', IMAGES.unhealthy])
    await ok(mgr, [
      'service',
      'create',
      '--detach',
      '--name',
      'never',
      '--health-cmd',
      'test -f /nonexistent',
      '--health-interval',
      '500ms',
      '--health-retries',
      '1',
      '--stop-grace-period',
      '1s',
      IMAGES.webV1,
    ])
    await ok(mgr, ['service', 'create', '--detach', '--name', 'once', IMAGES.job])
    // The image's own healthcheck passes first (running), then fails.
    await waitFor(
      async () => (await ps(mgr, 'sick')).some((l) => /\|Failed .*\|"?unhealthy container"?$/.test(l)),
      'sick: failed, unhealthy',
      60_000,
      () => dumpTasks(mgr),
    )
    const sick = mgr.daemon.manager!.store.view((tx) =>
      tx.find('tasks').filter((t) => t.serviceAnnotations.name === 'sick' && t.status.state === 'failed'),
    )
    expect(sick.length).toBeGreaterThan(0)
    // --health-cmd reaches the container: it never becomes healthy, so it never runs.
    await waitFor(
      async () => (await ps(mgr, 'never')).some((l) => /\|Failed .*\|"?unhealthy container"?$/.test(l)),
      'never: failed, unhealthy',
      60_000,
      () => dumpTasks(mgr),
    )
    const never = mgr.daemon.manager!.store.view((tx) =>
      tx.find('tasks').filter((t) => t.serviceAnnotations.name === 'never'),
    )
    expect(never.every((t) => t.status.state !== 'running' && t.status.message !== 'started')).toBe(true)
    await waitFor(
      async () => (await ps(mgr, 'once')).some((l) => l.includes('|Complete ')),
      'once: complete',
      60_000,
      () => dumpTasks(mgr),
    )
    for (const s of ['sick', 'never', 'once']) await ok(mgr, ['service', 'rm', s])
    await waitFor(async () => (await containersOf(addr, nodeIds)).length === 0, 'containers removed', 60_000)
  })
})
