import { randomInt } from 'node:crypto'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, node, ok, waitFor } from './helpers.js'

// Each node on its own loopback address of a /24 drawn at random, so that the nodes share port numbers
// and nothing collides with other tests on this machine.
const prefix = `127.${randomInt(1, 255)}.${randomInt(0, 256)}`
const hosts = { mgr1: `${prefix}.1`, wrk1: `${prefix}.2`, wrk2: `${prefix}.3` }

/** One HTTP request on a new connection; resolves with the body. */
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

/** `count` requests in a row to host:port: the task names that answered, in order. */
async function round(host: string, port: number, count: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push((await get(host, port)).split(' on ')[0]!)
  return out
}

/** A port no program holds on any of `addresses` right now. */
async function freeOnAll(addresses: string[]): Promise<number> {
  for (;;) {
    const port = randomInt(20_000, 29_000)
    let free = true
    for (const host of addresses) {
      const server = createServer()
      free = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false))
        server.listen(port, host, () => server.close(() => resolve(true)))
      })
      if (!free) break
    }
    if (free) return port
  }
}

/** Names (`service.slot.taskID`) of the service's tasks desired running, from docker service ps. */
async function running(n: ClusterNode, service: string): Promise<string[]> {
  const out = await ok(n, [
    'service',
    'ps',
    '--no-trunc',
    '-f',
    'desired-state=running',
    '--format',
    '{{.Name}}.{{.ID}} {{.CurrentState}}',
    service,
  ])
  return out
    .trim()
    .split('\n')
    .filter((l) => l.includes(' Running'))
    .map((l) => l.split(' ')[0]!)
    .sort()
}

describe('the routing mesh: a published port answers on every node', () => {
  let mgr1: ClusterNode
  let wrk1: ClusterNode
  let wrk2: ClusterNode
  let all: [string, ClusterNode][]
  beforeAll(async () => {
    const start = (name: keyof typeof hosts) => node(name, { host: hosts[name], routingMesh: true })
    ;[mgr1, wrk1, wrk2] = await Promise.all([start('mgr1'), start('wrk1'), start('wrk2')])
    all = [
      [hosts.mgr1, mgr1],
      [hosts.wrk1, wrk1],
      [hosts.wrk2, wrk2],
    ]
    await ok(mgr1, ['swarm', 'init'])
    const token = (await ok(mgr1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk1, ['swarm', 'join', '--token', token, mgr1.daemon.manager!.joinAddr])
    await ok(wrk2, ['swarm', 'join', '--token', token, mgr1.daemon.manager!.joinAddr])
    await waitFor(
      async () =>
        (await ok(mgr1, ['node', 'ls', '--format', '{{.Status}}'])).trim() === 'Ready\nReady\nReady',
      'three ready nodes',
    )
  })
  afterAll(() => closeNodes(wrk1, wrk2, mgr1))

  it('balances connections to any node round-robin over the tasks on all nodes, and follows scaling', async () => {
    const port = await freeOnAll(Object.values(hosts))
    // The walkthrough's web-fe service, on a free port instead of 8080 (detached: without -d the CLI
    // watches the tasks for another 5 s once they run).
    await ok(mgr1, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web-fe',
      '-p',
      `${port}:8080`,
      '--replicas',
      '5',
      'nigelpoulton/pluralsight-docker-ci',
    ])
    const five = await waitFor(async () => {
      const r = await running(mgr1, 'web-fe')
      return r.length === 5 && r
    }, 'web-fe at 5')
    for (const [host, n] of all) {
      // Five connections in a row reach the five tasks, one each, from whichever node they enter.
      await waitFor(
        async () => JSON.stringify((await round(host, port, 5)).sort()) === JSON.stringify(five),
        `five tasks answering through ${n.daemon.hostname}`,
      )
    }
    // The answers come from tasks on every node.
    const replies = await Promise.all([0, 1, 2, 3, 4].map(() => get(hosts.wrk2, port)))
    expect(new Set(replies.map((r) => r.split(' on ')[1]!.split(',')[0])).size).toBe(3)

    // Scale down: the mesh forgets the removed tasks on every node.
    await ok(mgr1, ['service', 'scale', '-d', 'web-fe=2'])
    const two = await waitFor(async () => {
      const r = await running(mgr1, 'web-fe')
      return r.length === 2 && r
    }, 'web-fe at 2')
    for (const [host, n] of all) {
      await waitFor(async () => {
        const seen = await round(host, port, 4)
        return seen.every((t) => two.includes(t)) && new Set(seen).size === 2
      }, `only the two remaining tasks answering through ${n.daemon.hostname}`)
    }
    // A rolling update, watched through the mesh: the answers move to the new image.
    await ok(mgr1, [
      'service',
      'update',
      '-d',
      '--image',
      'nigelpoulton/pluralsight-docker-ci:v2',
      '--update-parallelism',
      '2',
      '--update-monitor',
      '200ms',
      'web-fe',
    ])
    await waitFor(async () => {
      const replies = await Promise.all([0, 1, 2, 3].map(() => get(hosts.wrk1, port)))
      return replies.every((r) => r.endsWith('image nigelpoulton/pluralsight-docker-ci:v2'))
    }, 'only v2 answering')
    await ok(mgr1, ['service', 'rm', 'web-fe'])
    await waitFor(
      () => all.every(([, n]) => n.daemon.mesh!.mesh.listening().length === 0),
      'the port released on every node',
    )
  })

  it('binds a published port on a node once the program that held it there let it go', async () => {
    const port = await freeOnAll(Object.values(hosts))
    // Another program holds the port on wrk1's address (it drops every connection).
    const blocker = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => blocker.listen(port, hosts.wrk1, resolve))
    try {
      await ok(mgr1, [
        'service',
        'create',
        '-d',
        '--no-resolve-image',
        '--name',
        'held',
        '-p',
        `${port}:80`,
        'nginx',
      ])
      const [task] = await waitFor(async () => {
        const r = await running(mgr1, 'held')
        return r.length === 1 && r
      }, 'held running')
      expect((await waitFor(() => get(hosts.mgr1, port), 'held answering on mgr1')).split(' on ')[0]).toBe(
        task,
      )
      await expect(get(hosts.wrk1, port)).rejects.toThrow()
    } finally {
      await new Promise((r) => blocker.close(r))
    }
    const body = await waitFor(() => get(hosts.wrk1, port), 'held answering on wrk1 once the port is free')
    expect(body).toMatch(/^held\.1\./)
    await ok(mgr1, ['service', 'rm', 'held'])
  })

  it('binds a host-mode port only on the node running the task', async () => {
    const port = await freeOnAll(Object.values(hosts))
    await ok(mgr1, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'edge',
      '--publish',
      `published=${port},target=80,mode=host`,
      'nginx:alpine',
    ])
    const [task] = await waitFor(async () => {
      const r = await running(mgr1, 'edge')
      return r.length === 1 && r
    }, 'edge running')
    const where = (
      await ok(mgr1, ['service', 'ps', '--format', '{{.Node}}', 'edge'])
    ).trim() as keyof typeof hosts
    const body = await waitFor(() => get(hosts[where], port), `edge answering on ${where}`)
    expect(body).toBe(`${task} on ${where}, image nginx:alpine`)
    for (const other of Object.keys(hosts) as (keyof typeof hosts)[]) {
      if (other === where) continue
      await expect(get(hosts[other], port)).rejects.toThrow(/ECONNREFUSED/)
    }
  })
})
