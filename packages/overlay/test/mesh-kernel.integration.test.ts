// The kernel routing mesh (nftables) end to end, as root: three hosts made as network namespaces on an
// underlay bridge (198.18.0.0/15, only inside namespaces this test creates). Host 1 runs the mesh; the
// endpoints listen on hosts 2 and 3; clients connect from hosts 2 and 3 and from host 1 itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isOverlayError, type RoutingMesh, routingMesh } from '../src/index.js'
import { kernelUnavailable, Lab, sh } from './helpers/lab.js'

const nft = await sh('nft', ['--version'])
const unavailable =
  (await kernelUnavailable()) ??
  (nft.code !== 0 ? '`nft` is not installed (apt-get install nftables)' : undefined)

// A TCP server that says its name; a client that prints the name it got (or the error code).
const server = `
const net = require('node:net')
const s = net.createServer((c) => { c.on('error', () => {}); c.end(process.argv[1] + '\\n') })
s.listen(Number(process.argv[2]), '0.0.0.0', () => console.log('ready'))`
const client = `
const net = require('node:net')
const c = net.connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 5000 })
let buf = ''
c.on('data', (d) => (buf += d))
c.on('end', () => { console.log(buf.trim()); process.exit(0) })
c.on('timeout', () => { console.log('timeout'); process.exit(3) })
c.on('error', (e) => { console.log(e.code); process.exit(2) })`
// A UDP server that answers its name; a client (one flow: one socket) that sends until answered.
const udpServer = `
const s = require('node:dgram').createSocket('udp4')
s.on('message', (m, r) => s.send(process.argv[1], r.port, r.address))
s.bind(Number(process.argv[2]), '0.0.0.0', () => console.log('ready'))`
const udpClient = `
const c = require('node:dgram').createSocket('udp4')
c.on('message', (m) => { console.log(String(m)); process.exit(0) })
const send = () => c.send('ping', Number(process.argv[2]), process.argv[1])
send()
setInterval(send, 300)
setTimeout(() => { console.log('timeout'); process.exit(3) }, 10000)`

describe('routingMesh (kernel, 3 hosts)', { timeout: 60_000 }, () => {
  if (unavailable !== undefined) {
    it(`cannot run here: ${unavailable}`, () => {
      if (process.env.SWARMKIT_CI === '1')
        throw new Error(`kernel routing-mesh tests could not run in CI: ${unavailable}`)
    })
    return
  }

  const lab = new Lab()
  const meshes: RoutingMesh[] = []
  const host = (i: number) => lab.hosts[i]!
  const kernelMesh = (table?: string) => {
    const m = routingMesh({
      host: host(0).vtep,
      node: 'h1',
      mode: 'kernel',
      kernel: { namespace: host(0).ns, ...(table === undefined ? {} : { table }) },
    })
    meshes.push(m)
    return m
  }
  const tables = async () =>
    (await sh('ip', ['netns', 'exec', host(0).ns, 'nft', 'list', 'tables'])).out.trim()
  const table = async (name: string) =>
    (await sh('ip', ['netns', 'exec', host(0).ns, 'nft', 'list', 'table', 'inet', name])).out
  const tcpFrom = async (i: number) =>
    (await lab.script(host(i).ns, client, [host(0).vtep, '8080'])).out.trim()
  const udpFrom = async (i: number) =>
    (await lab.script(host(i).ns, udpClient, [host(0).vtep, '5353'])).out.trim()
  const web = (healthy2 = true) => ({
    service: 'web',
    protocol: 'tcp' as const,
    publishedPort: 8080,
    endpoints: [
      { address: host(1).vtep, port: 7001, node: 'h2', healthy: healthy2 },
      { address: host(2).vtep, port: 7001, node: 'h3' },
    ],
  })
  const dns = () => ({
    service: 'dns',
    protocol: 'udp' as const,
    publishedPort: 5353,
    endpoints: [
      { address: host(1).vtep, port: 7002, node: 'h2' },
      { address: host(2).vtep, port: 7002, node: 'h3' },
    ],
  })

  beforeAll(async () => {
    await lab.create(3)
    for (const i of [1, 2]) {
      await lab.node(host(i).ns, server, [`h${i + 1}`, '7001'])
      await lab.node(host(i).ns, udpServer, [`h${i + 1}`, '7002'])
    }
  }, 60_000)

  afterAll(async () => {
    for (const m of meshes) await m.close().catch(() => {})
    const rest = await lab.destroy()
    expect(rest).toEqual([])
  }, 60_000)

  it('balances TCP connections round-robin from other hosts and from the node itself', async () => {
    const m = kernelMesh()
    const bound: number[] = []
    m.on('port:bound', (e) => bound.push(e.port))
    await m.publish(web())
    expect(bound).toEqual([8080])
    expect(m.mode).toBe('kernel')
    // From host 2: both endpoints in turn, host 2's own included (masqueraded through host 1 and back).
    const got = [await tcpFrom(1), await tcpFrom(1), await tcpFrom(2), await tcpFrom(2)]
    expect(got).toEqual(['h2', 'h3', 'h2', 'h3'])
    // From the mesh node itself (the output hook).
    expect([await tcpFrom(0), await tcpFrom(0)]).toEqual(['h2', 'h3'])
    // Only new connections are translated: the node itself does not listen on 8080.
    expect((await sh('ip', ['netns', 'exec', host(0).ns, 'ss', '-Htln', 'sport = :8080'])).out.trim()).toBe(
      '',
    )
  })

  it('balances UDP flows and returns replies to the right client', async () => {
    const m = meshes[0]!
    await m.publish(dns())
    const got = [await udpFrom(1), await udpFrom(2), await udpFrom(1), await udpFrom(2)]
    expect(got).toEqual(['h2', 'h3', 'h2', 'h3'])
    expect(m.listening()).toEqual([
      { protocol: 'udp', port: 5353, service: 'dns' },
      { protocol: 'tcp', port: 8080, service: 'web' },
    ])
  })

  it('follows endpoint health, and reconciling the same state changes nothing', async () => {
    const m = meshes[0]!
    await m.publish(web(false))
    expect([await tcpFrom(1), await tcpFrom(2), await tcpFrom(1)]).toEqual(['h3', 'h3', 'h3'])
    const before = await table('swarmkit_mesh_198_18_0_1')
    await m.publish(web(false))
    expect(await table('swarmkit_mesh_198_18_0_1')).toBe(before)
    // A port taken by another service is refused, as in userspace mode.
    const err = await m.publish({ ...web(), service: 'other' }).catch((e) => e)
    expect(isOverlayError(err, 'IN_USE')).toBe(true)
    expect(err.holder).toBe('web')
  })

  it('replaces what a crashed mesh left, and leaves nothing behind when closed', async () => {
    // The first mesh "crashes": its object is dropped without close(); its table stays in the kernel.
    meshes.length = 0
    expect(await tables()).toContain('swarmkit_mesh_198_18_0_1')
    const m = kernelMesh()
    await m.publish(dns())
    // The new mesh's first change replaced the whole table: web (8080) is gone, dns still balances.
    expect(await tcpFrom(1)).toBe('ECONNREFUSED')
    expect(await udpFrom(1)).toMatch(/^h[23]$/)
    expect(await table('swarmkit_mesh_198_18_0_1')).not.toContain('8080')
    const unbound: number[] = []
    m.on('port:unbound', (e) => unbound.push(e.port))
    await m.unpublish('udp', 5353)
    expect(unbound).toEqual([5353])
    expect(await tables()).toBe('')
    // A mesh with its own table leaves others alone; close() removes only its own.
    const other = kernelMesh('swarmkit_mesh_test_other')
    await m.publish(web())
    await other.publish({ ...dns(), publishedPort: 5354 })
    await m.close()
    expect(await tables()).toBe('table inet swarmkit_mesh_test_other')
    await other.close()
    expect(await tables()).toBe('')
    await expect(m.publish(web())).rejects.toMatchObject({ name: 'OverlayError', code: 'CLOSED' })
  })
})
