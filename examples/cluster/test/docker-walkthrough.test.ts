// The seed walkthrough on real containers: a three-node swarm whose nodes share one Docker Engine, each
// giving its containers a network of its own; create, scale, a rolling update whose page changes through
// the routing mesh, logs, drain, and a killed worker's tasks rescheduled.
import { randomInt } from 'node:crypto'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, taskNetworkingSupported } from '../src/index.js'
import { buildImages, containersOf, IMAGES, removeContainers, testEngine } from './engine-helpers.js'
import { cleanup, dumpTasks, node, ok, waitFor } from './helpers.js'

const engine = await testEngine()
const canNetwork = await taskNetworkingSupported()
if (engine && !canNetwork && process.env.SWARMKIT_CI)
  throw new Error('task networking needs root and iproute2 in CI')

const prefix = `127.${randomInt(1, 255)}.${randomInt(0, 256)}`
const hosts = { mgr: `${prefix}.1`, w1: `${prefix}.2`, w2: `${prefix}.3` }

function get(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => {
        body += d
      })
      res.on('end', () => resolve(body.trim()))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

/** The pages `count` connections in a row get from host:port. */
async function pages(host: string, port: number, count: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push(await get(host, port).catch((err) => `error: ${err.message}`))
  return out
}

async function running(n: ClusterNode, service: string): Promise<string[]> {
  const out = await ok(n, [
    'service',
    'ps',
    '--no-trunc',
    '-f',
    'desired-state=running',
    '--format',
    '{{.Name}}|{{.Node}}|{{.CurrentState}}',
    service,
  ])
  return out.split('\n').filter((l) => l.includes('|Running'))
}

describe.skipIf(!engine || !canNetwork)(
  'the seed walkthrough on a Docker Engine',
  { timeout: 240_000 },
  () => {
    const addr = engine!
    let mgr: ClusterNode
    let w1: ClusterNode
    let w2: ClusterNode | undefined
    let nodeIds: string[] = []
    const port = randomInt(20_000, 29_000)

    beforeAll(async () => {
      await buildImages(addr)
      const start = (name: keyof typeof hosts) =>
        node(name, { host: hosts[name], routingMesh: true, engineAddr: addr })
      ;[mgr, w1, w2] = await Promise.all([start('mgr'), start('w1'), start('w2')])
      await ok(mgr, ['swarm', 'init'])
      const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
      await ok(w1, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
      await ok(w2, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
      nodeIds = [mgr.daemon.nodeId, w1.daemon.nodeId, w2.daemon.nodeId]
      await waitFor(
        async () =>
          (await ok(mgr, ['node', 'ls', '--format', '{{.Status}}'])).trim() === 'Ready\nReady\nReady',
        'three ready nodes',
      )
    }, 120_000)
    afterAll(async () => {
      await Promise.all([w1?.close(), w2?.close(), mgr?.close()])
      if (engine) await removeContainers(addr, nodeIds)
      cleanup()
    })

    it('creates, scales and rolls out a web service whose page changes through the mesh', async () => {
      await ok(mgr, [
        'service',
        'create',
        '-d',
        '--name',
        'web',
        '-p',
        `${port}:80`,
        '--replicas',
        '3',
        '--hostname',
        '{{.Task.Name}}',
        '--stop-grace-period',
        '2s',
        '--update-parallelism',
        '1',
        '--update-delay',
        '0s',
        IMAGES.webV1,
      ])
      await waitFor(
        async () => (await running(mgr, 'web')).length === 3,
        'web at 3',
        60_000,
        () => dumpTasks(mgr),
      )
      // Every node answers on the published port with pages from the three containers.
      for (const host of Object.values(hosts)) {
        const seen = await waitFor(
          async () => {
            const got = new Set(await pages(host, port, 6))
            return got.size === 3 && [...got].every((p) => /^web v1 on web\.[123]\.\w+$/.test(p)) && got
          },
          `three v1 pages through ${host}`,
          30_000,
        )
        expect(seen.size).toBe(3)
      }
      await ok(mgr, ['service', 'scale', '-d', 'web=5'])
      await waitFor(async () => (await running(mgr, 'web')).length === 5, 'web at 5', 60_000)
      await waitFor(async () => new Set(await pages(hosts.w1, port, 10)).size === 5, 'five pages', 30_000)

      await ok(mgr, ['service', 'update', '-d', '--image', IMAGES.webV2, 'web'])
      await waitFor(
        async () => {
          const got = await pages(hosts.mgr, port, 10)
          return got.every((p) => p.startsWith('web v2 on web.'))
        },
        'every page from v2',
        120_000,
        () => dumpTasks(mgr),
      )
      const logs = await ok(mgr, ['service', 'logs', 'web'])
      expect(logs).toContain('web v2 listening as web.')
      expect(logs).toContain('web v1 stopping')
    })

    it('drains a node: its containers stop, the service keeps its replicas elsewhere', async () => {
      await ok(mgr, ['node', 'update', '--availability', 'drain', 'w1'])
      // Its containers stop (kept, exited, as swarm keeps a task's container until the task leaves history).
      await waitFor(
        async () => (await containersOf(addr, [w1.daemon.nodeId])).every((l) => !l.endsWith(' running')),
        'nothing running on w1',
        60_000,
      )
      await waitFor(
        async () => {
          const r = await running(mgr, 'web')
          return r.length === 5 && r.every((l) => !l.includes('|w1|'))
        },
        'five replicas off w1',
        60_000,
        () => dumpTasks(mgr),
      )
      await waitFor(
        async () => new Set(await pages(hosts.w1, port, 10)).size === 5,
        'five pages after the drain',
        30_000,
      )
    })

    it("reschedules a killed worker's tasks", async () => {
      const gone = w2!.daemon.nodeId
      await w2!.close()
      w2 = undefined
      await waitFor(
        async () => {
          const r = await running(mgr, 'web')
          return r.length === 5 && r.every((l) => l.includes('|mgr|')) && r
        },
        'five replicas on the manager (w1 drained, w2 down)',
        90_000,
        () => dumpTasks(mgr),
      )
      await waitFor(
        async () => new Set(await pages(hosts.mgr, port, 10)).size === 5,
        'five pages from the manager',
        30_000,
      )
      await removeContainers(addr, [gone])
      await ok(mgr, ['service', 'rm', 'web'])
      await waitFor(
        async () => (await containersOf(addr, nodeIds)).length === 0,
        'all containers removed',
        60_000,
      )
    })
  },
)
