// swarmNode as a worker would drive it: whole views from the managers, tasks attached as they start. Two
// hosts (namespaces the test makes); a task reaches a service by name and VIP across hosts, and a task
// leaving the view leaves the other host's forwarding entries and the VIP.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type EmbeddedResolver,
  embeddedResolver,
  ipam,
  linuxDriver,
  type NetworkDriver,
  type SwarmNode,
  type SwarmView,
  serviceDirectory,
  serviceLoadBalancer,
  swarmNode,
} from '../src/index.js'
import { kernelUnavailable, Lab, sh } from './helpers/lab.js'

const unavailable =
  (await kernelUnavailable()) ??
  ((await sh('nft', ['--version'])).code !== 0 ? 'nft is not installed' : undefined)

const server = `
require('node:http').createServer((q, s) => s.end(process.argv[1] + '\\n')).listen(80, '0.0.0.0', () => console.log('ready'))`
const gets = `
const http = require('node:http'), [url, n] = [process.argv[1], Number(process.argv[2])]
const one = () => new Promise((resolve) => {
  const r = http.get(url, { agent: false, timeout: 5000 }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b.trim())) })
  r.on('timeout', () => r.destroy(new Error('timeout')))
  r.on('error', (e) => resolve('ERR ' + (e.code || e.message)))
})
;(async () => { for (let i = 0; i < n; i++) console.log(await one()) })()`

describe('swarmNode (kernel, 2 hosts)', { timeout: 120_000 }, () => {
  if (unavailable !== undefined) {
    it(`cannot run here: ${unavailable}`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(`swarmNode tests could not run in CI: ${unavailable}`)
    })
    return
  }
  const lab = new Lab()
  const drivers: NetworkDriver[] = []
  const nodes: SwarmNode[] = []
  const resolvers: EmbeddedResolver[] = []
  const dirs: string[] = []
  const control = ipam({ pools: [{ base: '10.82.0.0/16', size: 24 }] })
  let view: SwarmView

  beforeAll(async () => {
    await lab.create(2)
    const s = control.allocateSubnet('front')
    const addr = () => control.allocateAddress('front')
    view = {
      nodes: lab.hosts.map((h, i) => ({ id: `n${i}`, vtep: h.vtep })),
      networks: [{ id: 'front', vni: 5000, subnet: s.subnet, gateway: s.gateway }],
      services: [{ id: 's-web', name: 'web', vips: { front: addr() } }],
      tasks: [
        { id: 'w1', name: 'web.1.w1', service: 's-web', node: 'n0', addresses: { front: addr() } },
        { id: 'w2', name: 'web.2.w2', service: 's-web', node: 'n1', addresses: { front: addr() } },
        { id: 'c1', name: 'client', node: 'n0', addresses: { front: addr() } },
      ],
    }
    for (const [i, h] of lab.hosts.entries()) {
      drivers.push(linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix }))
      const directory = serviceDirectory()
      resolvers.push(embeddedResolver({ directory, upstream: [] }))
      nodes.push(
        swarmNode({
          node: `n${i}`,
          driver: drivers[i]!,
          directory,
          resolver: resolvers[i]!,
          loadBalancer: serviceLoadBalancer(),
        }),
      )
    }
    for (const n of nodes) await n.update(view)
    for (const t of view.tasks) {
      const i = Number(t.node.slice(1))
      const sb = await nodes[i]!.attachTask(t.id)
      const dir = `/etc/netns/${sb.namespace}`
      dirs.push(dir)
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.11\n')
      if (t.id !== 'c1') await lab.node(sb.namespace, server, [t.name])
    }
  }, 180_000)

  afterAll(async () => {
    await lab.killAll()
    for (const n of nodes) await n.close().catch(() => {})
    for (const r of resolvers) await r.close()
    const left: string[] = []
    for (const d of drivers) {
      await d.destroy().catch((e) => left.push(String(e)))
      left.push(...(await d.inspect()).resources)
    }
    for (const d of dirs) await rm(d, { recursive: true, force: true })
    const rest = await lab.destroy()
    expect(left).toEqual([])
    expect(rest).toEqual([])
  }, 120_000)

  const client = () => `${lab.hosts[0]!.prefix}-c1`
  const get = async (url: string, n: number) =>
    (await lab.script(client(), gets, [url, String(n)])).out.trim().split('\n')

  it('reaches a task on the other host by name and balances the VIP over both', async () => {
    expect(await get('http://web.2.w2/', 1)).toEqual(['web.2.w2'])
    expect([...new Set(await get('http://web/', 4))].sort()).toEqual(['web.1.w1', 'web.2.w2'])
  })

  it('follows a task leaving the view: forwarding entry gone on the other host, VIP on the one left', async () => {
    const w2 = view.tasks.find((t) => t.id === 'w2')!
    view = { ...view, tasks: view.tasks.filter((t) => t.id !== 'w2') }
    await nodes[1]!.detachTask('w2')
    for (const n of nodes) await n.update(view)
    const peers = (await drivers[0]!.inspect()).peers.map((p) => p.address)
    expect(peers).not.toContain(w2.addresses.front)
    expect([...new Set(await get('http://web/', 3))]).toEqual(['web.1.w1'])
  })
})
