import { describe, expect, it } from 'vitest'
import {
  type Connection,
  isTransportError,
  ManualClock,
  MemoryNetwork,
  type Methods,
  rpcClient,
  rpcServer,
  rpcSession,
  TransportError,
} from '../src/index.js'
import { seededRandom } from '../src/internal/random.js'
import { turn, waitFor } from './helpers.js'

async function connected(
  net: MemoryNetwork,
  methods: Methods,
  identity?: { commonName: string; organizationalUnit?: string },
) {
  const server = rpcServer({ transport: net.transport('srv'), methods })
  await server.listen('srv')
  const client = rpcClient({
    transport: net.transport('cli', identity ? { identity } : undefined),
    address: 'srv',
  })
  await client.connect()
  await waitFor(() => server.sessions.size === 1, 'server session')
  return { server, client, serverSession: [...server.sessions][0]! }
}

describe('RpcSession', () => {
  it('answers calls, passing values, binary data and the caller identity', async () => {
    const net = new MemoryNetwork()
    const { client } = await connected(net, {
      echo: { kind: 'call', handler: (p) => p },
      who: { kind: 'call', handler: (_p, ctx) => ctx.identity?.commonName },
      slow: { kind: 'call', handler: async (p: number) => p * 2 },
    })
    const value = { a: 1, b: 'two', c: [true, null], d: Uint8Array.from([1, 2, 3]) }
    const back = (await client.call('echo', value)) as typeof value
    expect(back.a).toBe(1)
    expect(back.c).toEqual([true, null])
    expect(Uint8Array.from(back.d)).toEqual(Uint8Array.from([1, 2, 3]))
    expect(await client.call('who')).toBe('cli')
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => client.call('slow', i)))
    expect(many).toEqual(Array.from({ length: 100 }, (_, i) => i * 2))
  })

  it('carries a remote error name, message and code; refuses unknown methods', async () => {
    const net = new MemoryNetwork()
    const { client } = await connected(net, {
      fail: {
        kind: 'call',
        handler: () => {
          throw Object.assign(new Error('no leader'), { name: 'RaftError', code: 'NO_LEADER' })
        },
      },
    })
    const error = await client.call<never>('fail').catch((e: TransportError) => e)
    expect(error).toBeInstanceOf(TransportError)
    expect(error.code).toBe('REMOTE_ERROR')
    expect(error.remote).toEqual({ name: 'RaftError', message: 'no leader', code: 'NO_LEADER' })
    await expect(client.call('nope')).rejects.toMatchObject({ code: 'UNKNOWN_METHOD' })
  })

  it('times out on the injected clock and tells the handler it was cancelled', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock })
    let cancelled = false
    const server = rpcServer({
      transport: net.transport('srv'),
      methods: {
        hang: {
          kind: 'call',
          handler: (_p, ctx) =>
            new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                cancelled = true
                resolve(undefined)
              })
            }),
        },
      },
    })
    await server.listen('srv')
    const client = rpcClient({ transport: net.transport('cli'), address: 'srv' })
    const connecting = client.connect()
    await clock.advanceAsync(0)
    await connecting
    const call = client.call('hang', undefined, { timeoutMs: 500 })
    const outcome = call.catch((e) => e)
    await clock.advanceAsync(499)
    expect(cancelled).toBe(false)
    await clock.advanceAsync(1)
    expect(await outcome).toMatchObject({ code: 'TIMEOUT' })
    await clock.advanceAsync(0)
    expect(cancelled).toBe(true)
  })

  it('rejects at once on an aborted signal and when aborted mid-call', async () => {
    const net = new MemoryNetwork()
    const { client } = await connected(net, { hang: { kind: 'call', handler: () => new Promise(() => {}) } })
    await expect(client.call('hang', 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    })
    const ac = new AbortController()
    const p = client.call('hang', 1, { signal: ac.signal })
    ac.abort()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('fails pending calls with CLOSED when either side closes', async () => {
    const net = new MemoryNetwork()
    const { client, server } = await connected(net, {
      hang: { kind: 'call', handler: () => new Promise(() => {}) },
    })
    const p1 = client.call('hang')
    const p2 = client.call('hang')
    await turn()
    await server.close()
    await expect(p1).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(p2).rejects.toMatchObject({ code: 'CLOSED' })
    await client.close()
    await expect(client.call('hang')).rejects.toMatchObject({ code: 'CLOSED' })
    expect(client.notify('x')).toBe(false)
  })

  it('delivers one-way messages and reports handler failures on the receiver', async () => {
    const net = new MemoryNetwork()
    const got: unknown[] = []
    const { client, server } = await connected(net, {
      msg: { kind: 'notify', handler: (p) => void got.push(p) },
      bad: {
        kind: 'notify',
        handler: () => {
          throw new Error('boom')
        },
      },
    })
    const failures: string[] = []
    server.on('handler:fail', (m, e) => failures.push(`${m}:${(e as Error).message}`))
    for (let i = 0; i < 1000; i++) expect(client.notify('msg', i)).toBe(true)
    client.notify('bad')
    await waitFor(() => got.length === 1000 && failures.length === 1)
    expect(got).toEqual([...Array(1000).keys()])
    expect(failures).toEqual(['bad:boom'])
  })

  it('streams with backpressure: the producer stays within the window of the consumer', async () => {
    const net = new MemoryNetwork()
    let produced = 0
    let finished = false
    const { client } = await connected(net, {
      count: {
        kind: 'stream',
        handler: async function* (n: number) {
          try {
            for (let i = 0; i < n; i++) {
              produced++
              yield i
            }
          } finally {
            finished = true
          }
        },
      },
    })
    const stream = client.stream<number>('count', 1_000_000, { window: 8 })
    const seen: number[] = []
    for await (const v of stream) {
      seen.push(v)
      if (seen.length % 10 === 0) {
        // A slow consumer: let the producer run as far as it can.
        for (let i = 0; i < 5; i++) await turn()
        expect(produced - seen.length).toBeLessThanOrEqual(8 + 1)
      }
      if (seen.length === 100) break
    }
    expect(seen).toEqual([...Array(100).keys()])
    await waitFor(() => finished, 'producer cleanup')
    expect(produced).toBeLessThan(200)
  })

  it('ends a stream normally and passes a producer error to the consumer', async () => {
    const net = new MemoryNetwork()
    const { client } = await connected(net, {
      three: { kind: 'stream', handler: () => [1, 2, 3] },
      broken: {
        kind: 'stream',
        handler: async function* () {
          yield 1
          throw Object.assign(new Error('watch lost'), { code: 'COMPACTED' })
        },
      },
    })
    const all: number[] = []
    for await (const v of client.stream<number>('three')) all.push(v)
    expect(all).toEqual([1, 2, 3])
    const got: number[] = []
    const error = await (async () => {
      for await (const v of client.stream<number>('broken')) got.push(v)
    })().catch((e) => e)
    expect(got).toEqual([1])
    expect(error).toMatchObject({
      code: 'REMOTE_ERROR',
      remote: { code: 'COMPACTED', message: 'watch lost' },
    })
  })

  it('lets a method allow only some roles and explains a refusal', async () => {
    const methods: Methods = {
      propose: { kind: 'call', handler: () => 'ok', roles: ['swarm-manager'] },
      status: { kind: 'call', handler: () => 'up' },
    }
    const net = new MemoryNetwork()
    const manager = await connected(net, methods, { commonName: 'm1', organizationalUnit: 'swarm-manager' })
    expect(await manager.client.call('propose')).toBe('ok')
    const net2 = new MemoryNetwork()
    const worker = await connected(net2, methods, { commonName: 'w1', organizationalUnit: 'swarm-worker' })
    const refusals: string[] = []
    worker.server.on('request:refuse', (m) => refusals.push(m))
    const error = await worker.client.call<never>('propose').catch((e: TransportError) => e)
    expect(isTransportError(error, 'FORBIDDEN')).toBe(true)
    expect(error.message).toMatch(/propose is allowed for swarm-manager; the peer w1 has role swarm-worker/)
    expect(await worker.client.call('status')).toBe('up')
    expect(refusals).toEqual(['propose'])
  })

  it('applies an authorize hook after the roles', async () => {
    const net = new MemoryNetwork()
    const server = rpcServer({
      transport: net.transport('srv'),
      methods: { a: { kind: 'call', handler: () => 1 }, b: { kind: 'call', handler: () => 2 } },
      authorize: (identity, method) => {
        if (method === 'b') throw new Error(`node ${identity?.commonName} was removed from swarm`)
        return true
      },
    })
    await server.listen('srv')
    const client = rpcClient({ transport: net.transport('cli'), address: 'srv' })
    expect(await client.call('a')).toBe(1)
    await expect(client.call('b')).rejects.toThrow(/node cli was removed from swarm/)
  })

  it('closes only the connection that sends a garbage frame', async () => {
    const net = new MemoryNetwork()
    const server = rpcServer({
      transport: net.transport('srv'),
      methods: { ping: { kind: 'call', handler: () => 'pong' } },
    })
    await server.listen('srv')
    const errors: TransportError[] = []
    server.on('connection:error', (e) => errors.push(e))
    const good = rpcClient({ transport: net.transport('good'), address: 'srv' })
    expect(await good.call('ping')).toBe('pong')
    const raw: Connection = await net.transport('evil').dial('srv')
    let closed = false
    raw.on('connection:close', () => {
      closed = true
    })
    raw.send(Uint8Array.from([0xc1, 0xff, 0x00]))
    await waitFor(() => closed && errors.length === 1)
    expect(errors[0]!.code).toBe('BAD_FRAME')
    expect(await good.call('ping')).toBe('pong')
  })

  it('answers OVERLOADED beyond maxConcurrent calls from one peer', async () => {
    const net = new MemoryNetwork()
    const release: (() => void)[] = []
    const server = rpcServer({
      transport: net.transport('srv'),
      maxConcurrent: 2,
      methods: { wait: { kind: 'call', handler: () => new Promise<void>((r) => release.push(r)) } },
    })
    await server.listen('srv')
    const client = rpcClient({ transport: net.transport('cli'), address: 'srv' })
    const first = client.call('wait')
    const second = client.call('wait')
    await expect(client.call('wait')).rejects.toMatchObject({ code: 'OVERLOADED' })
    for (const r of release) r()
    await Promise.all([first, second])
    const third = client.call('wait')
    await waitFor(() => release.length === 3)
    release[2]!()
    await third
  })

  it('refuses oversized messages before sending them', async () => {
    const net = new MemoryNetwork({ maxFrameBytes: 1024 })
    const { client } = await connected(net, { echo: { kind: 'call', handler: (p) => p } })
    await expect(client.call('echo', new Uint8Array(2000))).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' })
    expect(await client.call('echo', 'small')).toBe('small')
  })

  it('validates its arguments', async () => {
    const net = new MemoryNetwork()
    const [c] = [
      await (async () => {
        await net.transport('a').listen('a')
        return net.transport('b').dial('a')
      })(),
    ]
    expect(() => rpcSession(c, { methods: { x: { kind: 'wrong' as never, handler: () => 1 } } })).toThrow(
      TypeError,
    )
    expect(() => rpcSession(c, { callTimeoutMs: -1 })).toThrow(RangeError)
    const s = rpcSession(c)
    expect(() => s.call('')).toThrow(TypeError)
    expect(() => rpcServer({} as never)).toThrow(TypeError)
  })
})

describe('RpcClient', () => {
  it('redials with exponential backoff and jitter and resumes when the server comes back', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock })
    const methods: Methods = { ping: { kind: 'call', handler: () => 'pong' } }
    const client = rpcClient({
      transport: net.transport('cli'),
      address: 'srv',
      random: seededRandom(7),
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.5 },
    })
    const delays: number[] = []
    client.on('dial:fail', (_e, _n, retryIn) => delays.push(retryIn!))
    const answer = client.call('ping', undefined, { timeoutMs: 60_000 })
    for (let i = 0; i < 40; i++) await clock.runNextAsync()
    expect(delays.length).toBeGreaterThan(5)
    // Grows about twice per attempt, stays within [base/2, base], and is capped.
    expect(delays[0]).toBeGreaterThanOrEqual(50)
    expect(delays[0]).toBeLessThanOrEqual(100)
    expect(delays[1]).toBeGreaterThanOrEqual(100)
    expect(delays[1]).toBeLessThanOrEqual(200)
    for (const d of delays) expect(d).toBeLessThanOrEqual(1000)
    expect(delays.at(-1)).toBeGreaterThanOrEqual(500)
    const server = rpcServer({ transport: net.transport('srv'), methods })
    await server.listen('srv')
    await clock.advanceAsync(1000)
    expect(await answer).toBe('pong')
    // The server restarts: the client notices, redials and works again.
    await server.close()
    await net.transport('srv').close()
    await clock.advanceAsync(0)
    expect(client.connected).toBe(false)
    const again = rpcServer({ transport: net.transport('srv'), methods })
    await again.listen('srv')
    await clock.advanceAsync(2000)
    expect(client.connected).toBe(true)
    const second = client.call('ping')
    await clock.advanceAsync(0)
    expect(await second).toBe('pong')
  })

  it('opens a stream before it is connected, and reports a failed dial through the stream', async () => {
    const net = new MemoryNetwork()
    const server = rpcServer({
      transport: net.transport('srv'),
      methods: { three: { kind: 'stream', handler: () => [1, 2, 3] } },
    })
    await server.listen('srv')
    const client = rpcClient({ transport: net.transport('cli'), address: 'srv' })
    const items: unknown[] = []
    for await (const v of client.stream('three')) items.push(v)
    expect(items).toEqual([1, 2, 3])
    const lonely = rpcClient({ transport: net.transport('cli2'), address: 'nobody', reconnect: false })
    const stream = lonely.stream('three')
    await turn()
    await expect(stream.next()).rejects.toMatchObject({ code: 'DIAL_FAILED' })
  })

  it('with reconnect off, fails a call when the dial fails', async () => {
    const net = new MemoryNetwork()
    const client = rpcClient({ transport: net.transport('cli'), address: 'nobody', reconnect: false })
    await expect(client.call('x')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    expect(client.notify('x')).toBe(false)
  })
})

describe('messaging over a faulty MemoryNetwork with a ManualClock', () => {
  it('replays bit for bit from its seed', async () => {
    async function run(seed: number): Promise<string[]> {
      const clock = new ManualClock()
      const net = new MemoryNetwork({ seed, clock })
      const trace: string[] = []
      const server = rpcServer({
        transport: net.transport('s'),
        methods: {
          echo: { kind: 'call', handler: (p: number) => p },
          note: {
            kind: 'notify',
            handler: (p: number) => void trace.push(`note ${p} @${clock.now().toFixed(3)}`),
          },
        },
      })
      await server.listen('s')
      const client = rpcClient({
        transport: net.transport('c'),
        address: 's',
        random: seededRandom(seed),
        callTimeoutMs: 50,
        reconnect: { initialDelayMs: 5, maxDelayMs: 40 },
      })
      client.on('dial:fail', (_e, n, d) => trace.push(`dial fail ${n} retry ${d?.toFixed(3)}`))
      net.setFaults({ dropRate: 0.2, duplicateRate: 0.1, delayMs: [0, 10], reorder: true })
      for (let i = 0; i < 40; i++) {
        if (i === 15) net.partition(['s'], ['c'])
        if (i === 25) net.heal()
        client.notify('note', i)
        client.call('echo', i).then(
          (v) => trace.push(`echo ${v} @${clock.now().toFixed(3)}`),
          (e: TransportError) => trace.push(`echo ${i} ${e.code} @${clock.now().toFixed(3)}`),
        )
        await clock.advanceAsync(3)
      }
      await clock.advanceAsync(200)
      trace.push(`stats ${JSON.stringify(net.stats())}`)
      return trace
    }
    const a = await run(11)
    const b = await run(11)
    expect(b).toEqual(a)
    expect(a.some((l) => l.includes('TIMEOUT'))).toBe(true)
    expect(a.some((l) => l.startsWith('echo') && !l.includes('TIMEOUT'))).toBe(true)
    expect(await run(12)).not.toEqual(a)
  })
})
