import { createHash, randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import net from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isOverlayError, type RoutingMesh, routingMesh } from '../src/index.js'
import { freePort, hello, tcpBackends, udpBackends } from './helpers/net.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function mesh(host: string, node?: string): RoutingMesh {
  const m = routingMesh({ host, ...(node === undefined ? {} : { node }) })
  cleanups.push(() => m.close())
  return m
}

async function backends(names: string[]) {
  const b = await tcpBackends(names)
  cleanups.push(b.close)
  return b
}

describe('routingMesh (TCP)', () => {
  it('balances connections round-robin over the endpoints', async () => {
    const b = await backends(['a', 'b', 'c'])
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'web',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: b.ports.map((p) => ({ address: '127.0.0.1', port: p })),
    })
    const got: string[] = []
    for (let i = 0; i < 6; i++) got.push(await hello('127.0.0.2', port))
    expect(got).toEqual(['a', 'b', 'c', 'a', 'b', 'c'])
    expect(m.listening()).toEqual([{ protocol: 'tcp', port, service: 'web' }])
  })

  it('skips unhealthy endpoints and retries the next one when a connect fails', async () => {
    const b = await backends(['a', 'b'])
    const dead = await freePort('127.0.0.1') // nothing listens there
    const m = mesh('127.0.0.2')
    const failed: string[] = []
    m.on('endpoint:failed', (e) => failed.push(`${e.address}:${e.port}`))
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'web',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: [
        { address: '127.0.0.1', port: b.ports[0]!, healthy: false },
        { address: '127.0.0.1', port: dead },
        { address: '127.0.0.1', port: b.ports[1]! },
      ],
    })
    expect([await hello('127.0.0.2', port), await hello('127.0.0.2', port)]).toEqual(['b', 'b'])
    expect(failed).toContain(`127.0.0.1:${dead}`)
    // Endpoints update in place, without rebinding.
    await m.publish({
      service: 'web',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: [{ address: '127.0.0.1', port: b.ports[0]! }],
    })
    expect(await hello('127.0.0.2', port)).toBe('a')
  })

  it('skips an endpoint that failed to connect for a while, then tries it again', async () => {
    const b = await backends(['live'])
    const dead = await freePort('127.0.0.1')
    let clock = 1_000_000
    const m = routingMesh({ host: '127.0.0.2', ejectMs: 10_000, now: () => clock })
    cleanups.push(() => m.close())
    let failures = 0
    m.on('endpoint:failed', () => failures++)
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'web',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: [
        { address: '127.0.0.1', port: dead },
        { address: '127.0.0.1', port: b.ports[0]! },
      ],
    })
    for (let i = 0; i < 6; i++) expect(await hello('127.0.0.2', port)).toBe('live')
    expect(failures).toBe(1)
    clock += 10_001
    for (let i = 0; i < 2; i++) expect(await hello('127.0.0.2', port)).toBe('live')
    expect(failures).toBe(2)
  })

  it('carries a large stream both ways intact, half-close included', async () => {
    const echo = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c))
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => echo.close(() => r())))
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'echo',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: [{ address: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }],
    })
    const data = randomBytes(4 << 20)
    const back = await new Promise<Buffer>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.2', port, allowHalfOpen: true })
      const chunks: Buffer[] = []
      c.on('data', (d) => chunks.push(d))
      c.on('end', () => resolve(Buffer.concat(chunks)))
      c.on('error', reject)
      c.end(data)
    })
    expect(createHash('sha256').update(back).digest('hex')).toBe(
      createHash('sha256').update(data).digest('hex'),
    )
  })

  it('carries endpoint-to-client streams intact to slow readers, over more connections than read buffers', async () => {
    // Endpoint -> client bytes go through fixed read buffers (64 per mesh) written without a copy; a slow
    // reader makes the mesh wait with the buffer in flight, and connections past the 64th read the default
    // way. Every stream is distinct random bytes, so reuse of a buffer under a pending write would show.
    const streams = new Map<number, Buffer>()
    let next = 0
    const source = net.createServer((c) => {
      const data = randomBytes(next === 0 ? 24 << 20 : 64 << 10)
      streams.set(next++, data)
      c.write(Buffer.from(`${next - 1} `))
      c.end(data)
      c.on('error', () => {})
    })
    await new Promise<void>((r) => source.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => source.close(() => r())))
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'src',
      protocol: 'tcp',
      publishedPort: port,
      endpoints: [{ address: '127.0.0.1', port: (source.address() as net.AddressInfo).port }],
    })
    const fetch = (slow: boolean) =>
      new Promise<{ id: number; body: Buffer }>((resolve, reject) => {
        const c = net.connect({ host: '127.0.0.2', port })
        const chunks: Buffer[] = []
        c.on('data', (d) => {
          chunks.push(d)
          if (slow) {
            // Read in bursts: pause, let the mesh's writes back up, resume on the next turn of the loop.
            c.pause()
            setImmediate(() => c.resume())
          }
        })
        c.on('end', () => {
          const all = Buffer.concat(chunks)
          const sp = all.indexOf(32)
          resolve({ id: Number(all.subarray(0, sp).toString()), body: all.subarray(sp + 1) })
        })
        c.on('error', reject)
      })
    const big = fetch(true)
    // Wait until the big stream's connection is the first one the source saw, then open 80 more at once.
    await vi.waitFor(() => expect(streams.size).toBe(1))
    const got = await Promise.all([big, ...Array.from({ length: 80 }, (_, i) => fetch(i % 2 === 0))])
    for (const g of got)
      expect(createHash('sha256').update(g.body).digest('hex')).toBe(
        createHash('sha256').update(streams.get(g.id)!).digest('hex'),
      )
    expect(new Set(got.map((g) => g.id)).size).toBe(81)
  })

  it('lets several nodes share one machine on different loopback addresses', async () => {
    const b = await backends(['a', 'b'])
    const port = await freePort('127.0.0.2')
    const endpoints = b.ports.map((p) => ({ address: '127.0.0.1', port: p }))
    const n1 = mesh('127.0.0.2')
    const n2 = mesh('127.0.0.3')
    await n1.publish({ service: 'web', protocol: 'tcp', publishedPort: port, endpoints })
    await n2.publish({ service: 'web', protocol: 'tcp', publishedPort: port, endpoints })
    expect(await hello('127.0.0.2', port)).toBe('a')
    expect(await hello('127.0.0.3', port)).toBe('a')
    expect(await hello('127.0.0.3', port)).toBe('b')
  })

  it('binds host-mode ports only on nodes running a task, forwarding to the local task', async () => {
    const b = await backends(['on-n1', 'on-n2'])
    const port = await freePort('127.0.0.2')
    const n1 = mesh('127.0.0.2', 'n1')
    const n2 = mesh('127.0.0.3', 'n2')
    const spec = (nodes: string[]) => ({
      service: 'h',
      protocol: 'tcp' as const,
      publishedPort: port,
      publishMode: 'host' as const,
      endpoints: nodes.map((node) => ({ address: '127.0.0.1', port: b.ports[node === 'n1' ? 0 : 1]!, node })),
    })
    await n1.publish(spec(['n1']))
    await n2.publish(spec(['n1']))
    expect(await hello('127.0.0.2', port)).toBe('on-n1')
    expect(n2.listening()).toEqual([])
    await expect(hello('127.0.0.3', port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    // The task moves to n2: n1 stops answering, n2 starts.
    await n1.publish(spec(['n2']))
    await n2.publish(spec(['n2']))
    await expect(hello('127.0.0.2', port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    expect(await hello('127.0.0.3', port)).toBe('on-n2')
  })

  it('refuses a port held by another service, or one it cannot bind', async () => {
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    await m.publish({ service: 'a', protocol: 'tcp', publishedPort: port, endpoints: [] })
    const err = await m
      .publish({ service: 'b', protocol: 'tcp', publishedPort: port, endpoints: [] })
      .catch((e) => e)
    expect(isOverlayError(err, 'IN_USE')).toBe(true)
    expect(err.holder).toBe('a')
    const other = mesh('127.0.0.2')
    await expect(
      other.publish({ service: 'c', protocol: 'tcp', publishedPort: port, endpoints: [] }),
    ).rejects.toMatchObject({
      code: 'BIND_FAILED',
    })
    // No endpoint: the connection is closed, and said so.
    const dropped: string[] = []
    m.on('connection:dropped', (e) => dropped.push(e.service))
    await expect(hello('127.0.0.2', port)).rejects.toThrow()
    expect(dropped).toEqual(['a'])
    await m.unpublish('tcp', port)
    await expect(hello('127.0.0.2', port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await expect(
      m.publish({ service: 'x', protocol: 'sctp' as 'tcp', publishedPort: 1, endpoints: [] }),
    ).rejects.toThrow(TypeError)
    expect(() => routingMesh({ host: 'localhost' })).toThrow(/options.host/)
  })
})

describe('routingMesh (lifecycle)', () => {
  it('leaves no listener behind when unpublished or closed while binding', async () => {
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    const pending = m.publish({ service: 'a', protocol: 'tcp', publishedPort: port, endpoints: [] })
    await m.unpublish('tcp', port)
    await pending
    await expect(hello('127.0.0.2', port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    const port2 = await freePort('127.0.0.2')
    const pending2 = m.publish({ service: 'b', protocol: 'udp', publishedPort: port2, endpoints: [] })
    await m.close()
    await pending2
    expect(m.listening()).toEqual([])
    // The port is free again: another mesh can bind it.
    const other = mesh('127.0.0.2')
    await other.publish({ service: 'c', protocol: 'udp', publishedPort: port2, endpoints: [] })
    await expect(
      m.publish({ service: 'd', protocol: 'tcp', publishedPort: port, endpoints: [] }),
    ).rejects.toMatchObject({
      code: 'CLOSED',
    })
  })
})

describe('routingMesh (UDP)', () => {
  it('balances flows round-robin and returns replies to the right client', async () => {
    const b = await udpBackends(['a', 'b'])
    cleanups.push(b.close)
    const m = mesh('127.0.0.2')
    const port = await freePort('127.0.0.2')
    await m.publish({
      service: 'dns',
      protocol: 'udp',
      publishedPort: port,
      endpoints: b.ports.map((p) => ({ address: '127.0.0.1', port: p })),
    })
    const ask = async (client: dgram.Socket, text: string) =>
      new Promise<string>((resolve) => {
        client.once('message', (msg) => resolve(String(msg)))
        client.send(text, port, '127.0.0.2')
      })
    const c1 = dgram.createSocket('udp4')
    const c2 = dgram.createSocket('udp4')
    cleanups.push(async () => {
      c1.close()
      c2.close()
    })
    expect(await ask(c1, 'one')).toBe('a:one')
    expect(await ask(c2, 'two')).toBe('b:two')
    // A flow sticks to its endpoint.
    expect(await ask(c1, 'three')).toBe('a:three')
    expect(await ask(c2, 'four')).toBe('b:four')
  })
})
