import {
  type RpcServer,
  rpcClient,
  rpcServer,
  seededRandom,
  type Transport,
  tcpTransport,
} from '@swarmkit/transport'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, type SimulatedWorker, startSimulatedWorker } from '../src/index.js'
import { WorkerFailover } from '../src/worker-failover.js'
import { cleanup, node, ok, swarmHost, waitFor } from './helpers.js'

/** A stand-in for a manager's dispatcher on 127.0.0.1: it counts registrations; `slow` never answers. */
async function fakeManager(): Promise<{ server: RpcServer; addr: string; registered: number }> {
  const m = { registered: 0 } as { server: RpcServer; addr: string; registered: number }
  m.server = rpcServer({
    transport: tcpTransport(),
    methods: {
      'dispatcher.register': {
        kind: 'call',
        handler: () => {
          m.registered++
        },
      },
      ping: { kind: 'call', handler: () => 'pong' },
      slow: { kind: 'call', handler: () => new Promise(() => {}) },
    },
  })
  m.addr = await m.server.listen('127.0.0.1:0')
  return m
}

describe('WorkerFailover', () => {
  const transports: Transport[] = []
  const failovers: WorkerFailover[] = []
  const servers: RpcServer[] = []
  afterEach(async () => {
    await Promise.all(failovers.splice(0).map((f) => f.close()))
    await Promise.all(servers.splice(0).map((s) => s.close()))
    await Promise.all(transports.splice(0).map((t) => t.close()))
  })

  const managers = async (n: number) => {
    const ms = await Promise.all(Array.from({ length: n }, fakeManager))
    servers.push(...ms.map((m) => m.server))
    return ms
  }
  const failover = (
    controlAddr: string,
    known: { addr: string }[],
    options: Partial<ConstructorParameters<typeof WorkerFailover>[0]> = {},
  ) => {
    const transport = tcpTransport()
    transports.push(transport)
    const f: WorkerFailover = new WorkerFailover({
      controlAddr,
      connect: (address) => rpcClient({ transport, address }),
      register: () => f.client.call('dispatcher.register', {}),
      ...options,
    })
    failovers.push(f)
    // The managers list comes with a heartbeat answer.
    f.heartbeat({ periodMs: 60_000, managers: known.map((m) => ({ addr: '', control: m.addr })) })
    return f
  }

  it('turns to another manager when the connection to its own broke and cannot be made again', async () => {
    const [a, b, c] = await managers(3)
    const f = failover(a!.addr, [a!, b!, c!])
    expect(await f.client.call('ping')).toBe('pong')
    await a!.server.close()
    // No heartbeat failed: the closed connection and the refused dial after it are the signal.
    await waitFor(
      () => f.controlAddr !== a!.addr && b!.registered + c!.registered === 1,
      'registered with another manager',
      10_000,
    )
    expect(f.turns).toBe(1)
    expect(await f.client.call('ping')).toBe('pong')
  })

  it('does not turn away from a manager that is only slow (its connection open)', async () => {
    const [a, b] = await managers(2)
    const f = failover(a!.addr, [a!, b!], { reconnectBoundMs: 10, firstDelayMs: 0 })
    expect(await f.client.call('ping')).toBe('pong')
    await expect(f.client.call('slow', {}, { timeoutMs: 300 })).rejects.toThrow(/timed out|TIMEOUT/i)
    expect(f.turns).toBe(0)
    expect(f.controlAddr).toBe(a!.addr)
    expect(b!.registered).toBe(0)
    expect(f.client.connected).toBe(true)
  })

  it('turns once at a time, waiting longer each time, while the managers it turns to are gone too', async () => {
    const [a, b, c] = await managers(3)
    const turns: number[] = []
    const f = failover(a!.addr, [a!, b!, c!], {
      firstDelayMs: 100,
      maxDelayMs: 400,
      onSwitch: () => turns.push(performance.now()),
    })
    expect(await f.client.call('ping')).toBe('pong')
    const closedAt = performance.now()
    await Promise.all([a!.server.close(), b!.server.close(), c!.server.close()])
    // Failed heartbeats on top, as often as a loaded host could report them: they add no turns.
    const storm = setInterval(() => f.heartbeat(undefined), 5)
    try {
      await waitFor(() => turns.length >= 4, 'four turns', 20_000)
    } finally {
      clearInterval(storm)
    }
    // The first after 50-100 ms (half to all of firstDelayMs), then 100-200 ms, then 200-400 ms (the
    // maximum, with jitter) each.
    expect(turns[0]! - closedAt).toBeGreaterThanOrEqual(45)
    expect(turns[1]! - turns[0]!).toBeGreaterThanOrEqual(95)
    expect(turns[2]! - turns[1]!).toBeGreaterThanOrEqual(195)
    expect(turns[3]! - turns[2]!).toBeGreaterThanOrEqual(195)
  })

  it('spreads the workers of a gone manager over the others', async () => {
    const [a, b, c] = await managers(3)
    const fs = Array.from({ length: 40 }, (_, i) =>
      failover(a!.addr, [a!, b!, c!], { random: seededRandom(i + 1) }),
    )
    await Promise.all(fs.map((f) => f.client.call('ping')))
    await a!.server.close()
    await waitFor(() => b!.registered + c!.registered === 40, 'all 40 registered elsewhere', 20_000)
    expect(b!.registered).toBeGreaterThanOrEqual(10)
    expect(c!.registered).toBeGreaterThanOrEqual(10)
    expect(fs.every((f) => f.turns === 1)).toBe(true)
  })
})

// Issue 18's failover: the nodes of a killed manager used to move only when their next heartbeat failed.
// With a heartbeat period of 60 s that is a minute after the kill; the connection moves them in seconds.
describe('a worker whose manager is gone', () => {
  const PERIOD_MS = 60_000
  let managers: ClusterNode[] = []
  let worker: ClusterNode | undefined
  let sim: SimulatedWorker | undefined
  beforeAll(async () => {
    managers = await Promise.all(
      ['wfo-m1', 'wfo-m2', 'wfo-m3'].map((n) => node(n, { heartbeatPeriodMs: PERIOD_MS })),
    )
    const [m1, ...rest] = managers as [ClusterNode, ClusterNode, ClusterNode]
    await ok(m1, ['swarm', 'init'])
    const token = (await ok(m1, ['swarm', 'join-token', '-q', 'manager'])).trim()
    for (const m of rest) {
      await ok(m, ['swarm', 'join', '--token', token, m1.daemon.manager!.joinAddr])
      await waitFor(() => m.daemon.manager?.dispatcher, `${m.daemon.hostname} a manager`)
    }
    worker = await node('wfo-w1', { heartbeatPeriodMs: PERIOD_MS })
    const workerToken = (await ok(m1, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(worker, ['swarm', 'join', '--token', workerToken, m1.daemon.manager!.joinAddr])
    sim = await startSimulatedWorker({
      joinAddr: m1.daemon.manager!.joinAddr,
      token: workerToken,
      hostname: 'wfo-sim',
      addr: swarmHost.replace(/\.1$/, '.50'),
      routingMesh: false,
    })
  }, 120_000)
  afterAll(async () => {
    await sim?.stop()
    await Promise.all([worker, ...managers].map((n) => n?.close()))
    cleanup()
  })

  it('registers with another manager long before a heartbeat could fail', { timeout: 120_000 }, async () => {
    const [m1, m2, m3] = managers as [ClusterNode, ClusterNode, ClusterNode]
    const w = worker!.daemon
    // Both know the three managers (from their first heartbeat, a second after they started).
    await waitFor(
      () => w.knownManagers.length === 3 && sim!.knownManagers.length === 3,
      'the workers know the three managers',
      30_000,
    )
    const gone = m1.daemon.manager!.controlAddr
    expect(sim!.controlAddr).toBe(gone)
    const registered = (id: string, control: string) =>
      [m2, m3].some(
        (m) => m.daemon.manager?.controlAddr === control && m.daemon.manager.dispatcher.sessions.has(id),
      )
    // Their last heartbeat was at most seconds ago: the next one is due a period (60 s) after it.
    const stopped = Date.now()
    await m1.close()
    await waitFor(
      () => {
        const daemonAt = w.knownManagers.find((m) => m.addr === w.remoteManager)?.control ?? ''
        return registered(w.nodeId, daemonAt) && registered(sim!.nodeId, sim!.controlAddr)
      },
      'both workers registered with another manager',
      // Generous for a loaded machine (an election comes first), and still far below the heartbeat's path.
      PERIOD_MS / 3,
      () =>
        JSON.stringify({
          daemon: { remoteManager: w.remoteManager, known: w.knownManagers, id: w.nodeId },
          sim: { controlAddr: sim!.controlAddr, id: sim!.nodeId },
          sessions: [m2, m3].map((m) => [
            m.daemon.manager?.controlAddr,
            [...m.daemon.manager!.dispatcher.sessions.keys()],
          ]),
        }),
    )
    expect(Date.now() - stopped).toBeLessThan(PERIOD_MS / 3)
  })
})
