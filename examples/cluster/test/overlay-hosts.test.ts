// Overlay networks between hosts, with real containers: three hosts (network namespaces this test makes),
// each with its own dockerd and swarmkit node; the docker CLI drives them from the root namespace. Tasks on
// an overlay network reach each other across hosts by name (127.0.0.11 in each container), `tasks.NAME`
// lists every task, a service's VIP balances over tasks on every host and follows a scale-down, a
// published port answers on every host through the kernel ingress mesh (round-robin over tasks on three
// hosts, UDP and several ports too; host mode keeps the client's address), and two networks stay isolated.
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { overlayPrefix } from '../src/worker-network.js'
import { IMAGES } from './engine-helpers.js'
import { hostsUnavailable } from './netns-hosts.js'
import { type Host, httpBody, httpRequest, lookedUp, OverlayLab } from './overlay-lab.js'

const unavailable = await hostsUnavailable()

describe('overlay networks across hosts (3 namespace hosts, real containers)', { timeout: 600_000 }, () => {
  if (unavailable !== undefined) {
    it(`cannot run here: ${unavailable}`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(`overlay host tests could not run in CI: ${unavailable}`)
      console.warn(`skipping the overlay host tests: ${unavailable}`)
    })
    return
  }
  const lab = new OverlayLab()
  let h1: Host
  let h2: Host
  let h3: Host

  const ok = (h: Host, args: string[]) => lab.ok(h, args)
  const containerOf = (h: Host, service: string) => lab.containerOf(h, service)
  const tasksOf = (service: string, network: string) => lab.tasksOf(service, network)

  /** Runs a command inside the client container (on h1). */
  const inClient = async (args: string[], timeout = 30_000) => {
    const c = await containerOf(h1, 'client')
    if (!c) throw new Error('the client container is not running')
    return lab.engine(h1, ['exec', c, ...args], timeout)
  }

  const request = httpRequest
  const body = httpBody
  const page = async (host: string) => body(await inClient(request(host)))
  // From a host's own namespace (not a container): node's HTTP client.
  const hostGet = async (h: Host, url: string) =>
    (
      await lab.inHost(h, [
        process.execPath,
        '-e',
        `require('node:http').get(process.argv[1], { timeout: 5000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b.trim())) }).on('error', (e) => console.log('ERR ' + e.message))`,
        url,
      ])
    ).stdout.trim()

  // GETs url n times from a host's namespace, a new connection each: each body's first line, or ERR.
  const hostGets = async (h: Host, url: string, n: number) =>
    (
      await lab.inHost(h, [
        process.execPath,
        '-e',
        `const http = require('node:http'), [url, n] = [process.argv[1], Number(process.argv[2])]
const one = () => new Promise((resolve) => {
  const r = http.get(url, { agent: false, timeout: 5000 }, (res) => {
    let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b.trim().split('\\n')[0]))
  })
  r.on('timeout', () => r.destroy(new Error('timeout')))
  r.on('error', (e) => resolve('ERR ' + e.message))
})
;(async () => { for (let i = 0; i < n; i++) console.log(await one()) })()`,
        url,
        String(n),
      ])
    ).stdout
      .trim()
      .split('\n')
  // Sends one UDP datagram from a host's namespace: the answer, or ERR.
  const hostUdp = async (h: Host, address: string, port: number, text: string) =>
    (
      await lab.inHost(h, [
        process.execPath,
        '-e',
        `const s = require('node:dgram').createSocket('udp4')
const t = setTimeout(() => { console.log('ERR timeout'); s.close() }, 3000)
s.on('message', (m) => { clearTimeout(t); console.log(String(m)); s.close() })
s.send(process.argv[3], Number(process.argv[2]), process.argv[1])`,
        address,
        String(port),
        text,
      ])
    ).stdout.trim()
  // What carries published ports on a host: the nftables rules of its node's kernel ingress, and the
  // sockets listening on the port there (a userspace proxy would listen).
  const kernelRules = async (h: Host, table: 'ingress_entry' | 'host_ports') =>
    (await lab.inHost(h, ['nft', 'list', 'table', 'inet', `${overlayPrefix(h.nodeId!)}_${table}`])).stdout
  const listeners = async (h: Host, port: number) =>
    (await lab.inHost(h, ['ss', '-Hlntu', `sport = :${port}`])).stdout.trim()

  beforeAll(async () => {
    ;[h1, h2, h3] = (await lab.startSwarm(3)) as [Host, Host, Host]
    await ok(h1, ['network', 'create', '-d', 'overlay', 'front'])
    await ok(h1, ['network', 'create', '-d', 'overlay', 'back'])
    // web: one task per host (max one per node); client on h1; db on the other network only.
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--network',
      'front',
      '--replicas',
      '3',
      '--replicas-max-per-node',
      '1',
      '--hostname',
      '{{.Task.Name}}',
      IMAGES.webV1,
    ])
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'client',
      '--network',
      'front',
      '--constraint',
      'node.hostname==h1',
      IMAGES.webV1,
    ])
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'db',
      '--network',
      'back',
      '--constraint',
      'node.hostname==h2',
      '--hostname',
      '{{.Task.Name}}',
      IMAGES.webV1,
    ])
    await lab.until(
      'web, client and db running',
      async () => {
        const all = [...(await tasksOf('web', 'front')), ...(await tasksOf('client', 'front'))]
        return all.length === 4 && all.every((t) => t.state === 'running' && t.address)
      },
      240_000,
    )
    await lab.until(
      'db running',
      async () => (await tasksOf('db', 'back')).every((t) => t.state === 'running'),
      120_000,
    )
  }, 600_000)

  afterAll(async () => {
    const left = await lab.destroy()
    expect(left).toEqual([])
  }, 300_000)

  it('a task on h1 reaches a task on another host by name (HTTP and ping)', async () => {
    const remote = (await tasksOf('web', 'front')).filter((t) => t.node !== 'h1')
    expect(remote.length).toBe(2)
    for (const t of remote) {
      await lab.until(`${t.name} by name`, async () => (await page(t.name)) === `web v1 on ${t.name}`, 60_000)
      const ping = await inClient(['ping', '-c', '1', '-W', '3', t.name])
      expect(ping.code, ping.stderr).toBe(0)
      expect(ping.stdout).toContain(t.address)
    }
  })

  it('tasks.web lists every task of web, on every host', async () => {
    const want = (await tasksOf('web', 'front')).map((t) => t.address).sort()
    await lab.until(
      'tasks.web',
      async () => {
        const got = lookedUp(await inClient(['nslookup', 'tasks.web', '127.0.0.11']))
        return JSON.stringify(got) === JSON.stringify(want)
      },
      60_000,
    )
  })

  it('a rolling update is seen through the VIP: every answer from v2 once it is done', async () => {
    await ok(h1, ['service', 'update', '-d', '--update-parallelism', '1', '--image', IMAGES.webV2, 'web'])
    await lab.until(
      'web updated to v2 on every host',
      async () => {
        const tasks = await tasksOf('web', 'front')
        if (tasks.length !== 3 || tasks.some((t) => t.state !== 'running')) return false
        const seen = new Set<string>()
        for (let i = 0; i < 9; i++) seen.add(await page('web'))
        const want = tasks.map((t) => `web v2 on ${t.name}`).sort()
        return JSON.stringify([...seen].sort()) === JSON.stringify(want)
      },
      240_000,
    )
  })

  it('dnsrr: the name answers every task address, and there is no VIP', async () => {
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'rr',
      '--network',
      'front',
      '--endpoint-mode',
      'dnsrr',
      '--replicas',
      '2',
      '--replicas-max-per-node',
      '1',
      IMAGES.webV1,
    ])
    await lab.until(
      'rr running',
      async () => {
        const t = await tasksOf('rr', 'front')
        return t.length === 2 && t.every((x) => x.state === 'running')
      },
      120_000,
    )
    const want = (await tasksOf('rr', 'front')).map((t) => t.address).sort()
    await lab.until(
      'rr resolves to its tasks',
      async () => {
        const got = lookedUp(await inClient(['nslookup', 'rr', '127.0.0.11']))
        return JSON.stringify(got) === JSON.stringify(want)
      },
      60_000,
    )
    const vips = JSON.parse(await ok(h1, ['service', 'inspect', 'rr']))[0].Endpoint.VirtualIPs ?? []
    expect(vips).toEqual([])
  })

  it('the VIP of web spreads requests over the tasks on all three hosts, and follows a scale-down', async () => {
    const names = (await tasksOf('web', 'front')).map((t) => `web v2 on ${t.name}`).sort()
    await lab.until(
      'every web task behind the VIP',
      async () => {
        const seen = new Set<string>()
        for (let i = 0; i < 9; i++) seen.add(await page('web'))
        return JSON.stringify([...seen].sort()) === JSON.stringify(names)
      },
      90_000,
    )
    await ok(h1, ['service', 'scale', '-d', 'web=1'])
    await lab.until('web scaled to 1', async () => (await tasksOf('web', 'front')).length === 1, 120_000)
    const [left] = await tasksOf('web', 'front')
    await lab.until(
      'only the remaining task behind the VIP',
      async () => {
        const seen = new Set<string>()
        for (let i = 0; i < 6; i++) seen.add(await page('web'))
        return seen.size === 1 && seen.has(`web v2 on ${left!.name}`)
      },
      90_000,
    )
  })

  it('a published port answers on every host for a task elsewhere', async () => {
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'pub',
      '--network',
      'front',
      '--publish',
      '8080:80',
      '--constraint',
      'node.hostname==h3',
      '--hostname',
      '{{.Task.Name}}',
      IMAGES.webV1,
    ])
    await lab.until(
      'pub running',
      async () => (await tasksOf('pub', 'front')).some((t) => t.state === 'running'),
      120_000,
    )
    const [t] = await tasksOf('pub', 'front')
    for (const h of lab.hosts)
      await lab.until(
        `port 8080 on ${h.name}`,
        async () => {
          return (await hostGet(h1, `http://${h.addr}:8080/`)) === `web v1 on ${t!.name}`
        },
        60_000,
      )
  })

  it('published ports are routed in the kernel: every host balances over tasks on three hosts, round-robin, and follows a scale-down', async () => {
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'mesh',
      '--publish',
      '8081:80',
      '--replicas',
      '3',
      '--replicas-max-per-node',
      '1',
      '--hostname',
      '{{.Task.Name}}',
      IMAGES.webV1,
    ])
    await lab.until(
      'mesh running on three hosts with ingress addresses',
      async () => {
        const t = await tasksOf('mesh', 'ingress')
        return t.length === 3 && t.every((x) => x.state === 'running' && x.address)
      },
      180_000,
    )
    const tasks = await tasksOf('mesh', 'ingress')
    expect(new Set(tasks.map((t) => t.node)).size).toBe(3)
    const all = tasks.map((t) => `web v1 on ${t.name}`).sort()
    for (const h of lab.hosts) {
      // Three new connections in a row: the three tasks, one each (round-robin in the ingress sandbox).
      await lab.until(
        `round-robin on ${h.name}`,
        async () =>
          JSON.stringify((await hostGets(h1, `http://${h.addr}:8081/`, 3)).sort()) === JSON.stringify(all),
        60_000,
      )
      // In the kernel: the node's nftables rules translate the port, and no process listens on it.
      expect(await kernelRules(h, 'ingress_entry')).toMatch(/tcp dport 8081 dnat/)
      expect(await listeners(h, 8081)).toBe('')
    }
    await ok(h1, ['service', 'scale', '-d', 'mesh=1'])
    await lab.until('mesh scaled to 1', async () => (await tasksOf('mesh', 'ingress')).length === 1, 120_000)
    const [left] = await tasksOf('mesh', 'ingress')
    for (const h of lab.hosts)
      await lab.until(
        `only the remaining task behind ${h.name}:8081`,
        async () => {
          const lines = await hostGets(h1, `http://${h.addr}:8081/`, 4)
          return lines.every((l) => l === `web v1 on ${left!.name}`)
        },
        90_000,
      )
  })

  it('UDP and several ports of one service are published in the kernel on every host', async () => {
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'multi',
      '--publish',
      '8082:80',
      '--publish',
      'published=5353,target=5353,protocol=udp',
      '--constraint',
      'node.hostname==h3',
      '--hostname',
      '{{.Task.Name}}',
      IMAGES.webV1,
    ])
    await lab.until(
      'multi running',
      async () => (await tasksOf('multi', 'ingress')).some((t) => t.state === 'running' && t.address),
      120_000,
    )
    const [t] = await tasksOf('multi', 'ingress')
    // busybox has no UDP server: an echo runs in the task's own network namespace (its sandbox).
    const c = await containerOf(h3, 'multi')
    const pid = (await lab.engine(h3, ['inspect', '-f', '{{.State.Pid}}', c!])).stdout.trim()
    const echo = spawn(
      'nsenter',
      [
        `--net=/proc/${pid}/ns/net`,
        process.execPath,
        '-e',
        `const s = require('node:dgram').createSocket('udp4')
s.on('message', (m, r) => { console.error('from ' + r.address); s.send('udp ' + process.argv[1] + ' ' + m, r.port, r.address) })
s.bind(5353, '0.0.0.0'); setTimeout(() => process.exit(0), 120000)`,
        t!.name,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let echoErr = ''
    echo.stderr!.on('data', (d) => (echoErr += d))
    try {
      for (const h of lab.hosts) {
        await lab
          .until(
            `udp 5353 on ${h.name}`,
            async () => (await hostUdp(h1, h.addr, 5353, 'ping')) === `udp ${t!.name} ping`,
            60_000,
          )
          .catch(async (err) => {
            const prefix = overlayPrefix(h.nodeId!)
            const rules = [
              (await lab.inHost(h, ['nft', 'list', 'table', 'inet', `${prefix}_ingress_entry`])).stdout,
              `tcp: ${(await hostGets(h1, `http://${h.addr}:8082/`, 1))[0]}`,
            ].join('\n')
            throw new Error(
              `${(err as Error).message} (echo: ${echoErr || 'no error'}, exit ${echo.exitCode ?? echo.signalCode ?? 'none'}; last answer ${await hostUdp(h1, h.addr, 5353, 'ping')}; rules on ${h.name}: ${rules})`,
            )
          })
        await lab.until(
          `tcp 8082 on ${h.name}`,
          async () => (await hostGets(h1, `http://${h.addr}:8082/`, 1))[0] === `web v1 on ${t!.name}`,
          60_000,
        )
        expect(await kernelRules(h, 'ingress_entry')).toMatch(/udp dport 5353 dnat/)
        expect(await listeners(h, 5353)).toBe('')
      }
    } finally {
      echo.kill('SIGKILL')
    }
  })

  it('a host-mode port answers only where its task runs, and the task sees the client address', async () => {
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'hostmode',
      '--publish',
      'mode=host,published=9090,target=80',
      '--constraint',
      'node.hostname==h2',
      IMAGES.webV1,
    ])
    await lab.until(
      'hostmode running',
      async () => (await tasksOf('hostmode', 'ingress')).some((t) => t.state === 'running'),
      120_000,
    )
    // From h1's namespace to h2: the task sees h1's own address, not a translated one (busybox httpd
    // listens on IPv6 and writes an IPv4 peer as [::ffff:a.b.c.d]).
    const peer = async () =>
      (await hostGets(h1, `http://${h2.addr}:9090/cgi-bin/peer`, 1))[0]!.replace(/^\[::ffff:(.*)\]$/, '$1')
    await lab.until('the client address seen by the task', async () => (await peer()) === h1.addr, 60_000)
    expect(await peer()).toBe(h1.addr)
    expect(await kernelRules(h2, 'host_ports')).toMatch(/tcp dport 9090 dnat/)
    expect(await listeners(h2, 9090)).toBe('')
    // No task on h3: nothing answers there.
    expect((await hostGets(h1, `http://${h3.addr}:9090/cgi-bin/peer`, 1))[0]).toMatch(/^ERR/)
  })

  it('two networks stay isolated: no name, no packet from front to back', async () => {
    const [db] = await tasksOf('db', 'back')
    expect(db?.address).toBeTruthy()
    const lookup = await inClient(['nslookup', 'db', '127.0.0.11'])
    expect(lookup.stdout).not.toContain(db!.address)
    expect(await page(db!.address)).toMatch(/^ERR/)
    // While a task on back reaches db by name.
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'backclient',
      '--network',
      'back',
      '--constraint',
      'node.hostname==h3',
      IMAGES.webV1,
    ])
    await lab.until(
      'backclient running',
      async () => (await tasksOf('backclient', 'back')).some((t) => t.state === 'running'),
      120_000,
    )
    const c = await containerOf(h3, 'backclient')
    await lab.until(
      'db by name from back',
      async () => body(await lab.engine(h3, ['exec', c!, ...request('db')])) === `web v1 on ${db!.name}`,
      60_000,
    )
  })

  it("a drained node leaves the other hosts' forwarding tables; its tasks come back elsewhere", async () => {
    // The ingress network aside: every node keeps its ingress sandbox (as in swarm, a drained node too).
    const ingressVni = Number(
      JSON.parse(await ok(h1, ['network', 'inspect', 'ingress']))[0].Options[
        'com.docker.network.driver.overlay.vxlanid_list'
      ],
    )
    const fdbTo = async (h: Host, vtep: string) =>
      (await lab.inHost(h, ['bridge', 'fdb', 'show'])).stdout
        .split('\n')
        .filter(
          (l) =>
            l.includes(`dst ${vtep} `) &&
            !l.includes(`dev ${overlayPrefix(h.nodeId!)}x${ingressVni.toString(36)} `),
        )
    // A task on front pinned to h2, so that h1 holds forwarding entries towards h2 before the drain.
    await ok(h1, [
      'service',
      'create',
      '-d',
      '--name',
      'onh2',
      '--network',
      'front',
      '--constraint',
      'node.hostname==h2',
      IMAGES.webV1,
    ])
    await lab.until('h1 forwards to h2', async () => (await fdbTo(h1, h2.addr)).length > 0, 120_000)
    await ok(h1, ['node', 'update', '--availability', 'drain', 'h2'])
    await lab.until(
      'no task of h2 in the view of h1',
      async () => {
        const onH2 = (await ok(h1, ['node', 'ps', '-q', '--filter', 'desired-state=running', 'h2'])).trim()
        return onH2 === '' && (await fdbTo(h1, h2.addr)).length === 0
      },
      120_000,
    )
    // rr's tasks are elsewhere now, and its name answers exactly them.
    await lab.until(
      'rr resolves to its new tasks',
      async () => {
        const tasks = await tasksOf('rr', 'front')
        if (tasks.length !== 2 || tasks.some((t) => t.state !== 'running' || t.node === 'h2')) return false
        const got = lookedUp(await inClient(['nslookup', 'rr', '127.0.0.11']))
        return JSON.stringify(got) === JSON.stringify(tasks.map((t) => t.address).sort())
      },
      120_000,
    )
    await ok(h1, ['node', 'update', '--availability', 'active', 'h2'])
  })
})
