import { describe, expect, it } from 'vitest'
import {
  type Connection,
  isTransportError,
  ManualClock,
  MemoryNetwork,
  type Transport,
} from '../src/index.js'
import { bytes, turn, waitFor } from './helpers.js'

async function pair(
  net: MemoryNetwork,
  a = 'n1',
  b = 'n2',
): Promise<[Connection, Connection, Transport, Transport]> {
  const ta = net.transport(a)
  const tb = net.transport(b)
  const listener = await tb.listen(b)
  let accepted: Connection | undefined
  listener.on('connection:open', (c) => {
    accepted = c
  })
  const dialed = await ta.dial(b)
  await waitFor(() => accepted !== undefined, 'accept')
  return [dialed, accepted!, ta, tb]
}

function collect(c: Connection): number[] {
  const seen: number[] = []
  c.on('frame:receive', (f) => seen.push(f[0]!))
  return seen
}

describe('MemoryNetwork', () => {
  it('carries frames in order both ways with the node names as addresses', async () => {
    const net = new MemoryNetwork({ seed: 1 })
    const [a, b] = await pair(net)
    expect(a.remoteAddress).toBe('n2')
    expect(b.remoteAddress).toBe('n1')
    expect(b.remoteIdentity).toEqual({ commonName: 'n1' })
    expect(a.outbound).toBe(true)
    expect(b.outbound).toBe(false)
    const atB = collect(b)
    const atA = collect(a)
    for (let i = 0; i < 100; i++) a.send(bytes(i))
    b.send(bytes(7))
    await waitFor(() => atB.length === 100 && atA.length === 1)
    expect(atB).toEqual([...Array(100).keys()])
    expect(atA).toEqual([7])
  })

  it('refuses a second listener on an address, an address of another node, and dials to nothing', async () => {
    const net = new MemoryNetwork()
    const t = net.transport('n1')
    await t.listen('n1')
    await t.listen('n1:api')
    await expect(t.listen('n1')).rejects.toMatchObject({ name: 'TransportError', code: 'ADDRESS_IN_USE' })
    await expect(t.listen('n2')).rejects.toThrow(TypeError)
    await expect(t.dial('n9')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    expect(() => net.transport('bad:name')).toThrow(TypeError)
    expect(() => net.setFaults({ dropRate: 2 })).toThrow(RangeError)
    expect(() => net.setFaults({ delayMs: [5, 1] })).toThrow(RangeError)
  })

  it('returns the live endpoint for a name, and a fresh one after it is closed', async () => {
    const net = new MemoryNetwork()
    const t1 = net.transport('n1')
    expect(net.transport('n1')).toBe(t1)
    await t1.listen('n1')
    await t1.close()
    const again = net.transport('n1')
    expect(again).not.toBe(t1)
    await again.listen('n1') // the old listener is gone with the old endpoint
    await expect(t1.dial('n1')).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('partitions and isolations stop dials and frames in flight until heal', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 3, clock })
    const [a, b] = await pair(net)
    const t3 = net.transport('n3')
    await t3.listen('n3')
    const atB = collect(b)
    net.setFaults({ delayMs: 10 })
    a.send(bytes(1))
    net.partition(['n1'], ['n2', 'n3'])
    expect(net.reachable('n1', 'n2')).toBe(false)
    expect(net.reachable('n2', 'n3')).toBe(true)
    await expect(net.transport('n1').dial('n3')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    await clock.advanceAsync(20)
    expect(atB).toEqual([]) // in flight when the partition started, so lost
    net.heal()
    a.send(bytes(2))
    await clock.advanceAsync(20)
    expect(atB).toEqual([2])
    net.isolate('n2')
    a.send(bytes(3))
    await clock.advanceAsync(20)
    expect(atB).toEqual([2])
    expect(net.stats().n1!.messagesDropped).toBe(2)
    net.heal()
    expect(net.reachable('n1', 'n2')).toBe(true)
  })

  it('applies link faults to one direction only', async () => {
    const net = new MemoryNetwork({ seed: 5 })
    const [a, b] = await pair(net)
    const atA = collect(a)
    const atB = collect(b)
    net.setLinkFaults('n1', 'n2', { dropRate: 1 })
    for (let i = 0; i < 10; i++) {
      a.send(bytes(i))
      b.send(bytes(i))
    }
    await waitFor(() => atA.length === 10)
    await turn()
    expect(atB).toEqual([])
    net.setLinkFaults('n1', 'n2', null)
    a.send(bytes(42))
    await waitFor(() => atB.length === 1)
    expect(atB).toEqual([42])
  })

  it('drops, duplicates, delays and reorders deterministically for a seed', async () => {
    async function run(seed: number): Promise<{ order: number[]; times: number[] }> {
      const clock = new ManualClock()
      const net = new MemoryNetwork({ seed, clock })
      const [a, b] = await pair(net)
      net.setFaults({ dropRate: 0.1, duplicateRate: 0.05, delayMs: [0, 25], reorder: true })
      const order: number[] = []
      const times: number[] = []
      b.on('frame:receive', (f) => {
        order.push(f[0]!)
        times.push(clock.now())
      })
      for (let i = 0; i < 200; i++) a.send(bytes(i))
      await clock.advanceAsync(30)
      return { order, times }
    }
    const first = await run(42)
    const again = await run(42)
    const other = await run(43)
    expect(again).toEqual(first)
    expect(other.order).not.toEqual(first.order)
    // Some frames were lost, some duplicated, and some overtook others.
    expect(new Set(first.order).size).toBeLessThan(200)
    expect(first.order.length).toBeGreaterThan(new Set(first.order).size)
    expect(first.order.some((v, i) => i > 0 && v < first.order[i - 1]!)).toBe(true)
    expect(Math.max(...first.times)).toBeLessThanOrEqual(25)
  })

  it('keeps a delayed link first-in first-out unless reorder is on', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 9, clock })
    const [a, b] = await pair(net)
    net.setFaults({ delayMs: [0, 50] })
    const atB = collect(b)
    for (let i = 0; i < 100; i++) a.send(bytes(i))
    await clock.advanceAsync(10)
    expect(atB.length).toBeLessThan(100)
    await clock.advanceAsync(50)
    expect(atB).toEqual([...Array(100).keys()])
  })

  it('delivers through the injected clock only when it is advanced', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock })
    const [a, b] = await pair(net)
    const atB = collect(b)
    a.send(bytes(1))
    await turn()
    expect(atB).toEqual([])
    expect(clock.pending).toBe(1)
    expect(await clock.advanceAsync(0)).toBe(1)
    expect(atB).toEqual([1])
  })

  it('holds frames for a paused node, in order and counted against the sender, until it resumes', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock, highWaterMarkBytes: 64 })
    const [a, b] = await pair(net)
    const atB = collect(b)
    const atA = collect(a)
    net.pause('n2')
    expect(net.isPaused('n2')).toBe(true)
    const results: boolean[] = []
    for (let i = 0; i < 10; i++) results.push(a.send(new Uint8Array(20).fill(i)))
    b.send(bytes(99))
    await clock.advanceAsync(100)
    // Nothing reached the paused node; what it sent before pausing itself is the caller's business.
    expect(atB).toEqual([])
    expect(atA).toEqual([99])
    expect(results.includes(false)).toBe(true)
    expect(a.bufferedBytes).toBe(10 * 24)
    let drained = false
    a.on('connection:drain', () => {
      drained = true
    })
    net.resume('n2')
    expect(atB).toEqual([...Array(10).keys()])
    expect(drained).toBe(true)
    expect(net.isPaused('n2')).toBe(false)
  })

  it('keeps connections that arrive before the listener has a handler, as TCP accepts them later', async () => {
    const net = new MemoryNetwork()
    const listener = await net.transport('n2').listen('n2')
    const dialed = await net.transport('n1').dial('n2')
    dialed.send(bytes(5))
    const accepted: Connection[] = []
    listener.on('connection:open', (c) => accepted.push(c))
    expect(accepted.length).toBe(1)
    const seen = collect(accepted[0]!)
    await waitFor(() => seen.length === 1)
    expect(seen).toEqual([5])
  })

  it('counts messages and bytes per node', async () => {
    const net = new MemoryNetwork()
    const [a, b] = await pair(net)
    const atB = collect(b)
    a.send(new Uint8Array(10))
    a.send(new Uint8Array(5))
    await waitFor(() => atB.length === 2)
    const s = net.stats()
    expect(s.n1).toMatchObject({ messagesSent: 2, bytesSent: 15, messagesReceived: 0 })
    expect(s.n2).toMatchObject({ messagesSent: 0, messagesReceived: 2, bytesReceived: 15 })
  })

  it('tells the peer when a connection closes, after the frames already sent', async () => {
    const net = new MemoryNetwork()
    const [a, b] = await pair(net)
    const atB = collect(b)
    let closedWith: unknown = 'open'
    b.on('connection:close', (e) => {
      closedWith = e
    })
    a.send(bytes(1))
    await a.close()
    expect(a.closed).toBe(true)
    expect(() => a.send(bytes(2))).toThrow(expect.objectContaining({ code: 'CLOSED' }))
    await waitFor(() => closedWith !== 'open')
    expect(atB).toEqual([1])
    expect(closedWith).toBeUndefined()
    expect(b.closed).toBe(true)
  })

  it('reports backpressure, drains, and drops a connection that buffers too much', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({
      clock,
      highWaterMarkBytes: 100,
      maxBufferedBytes: 1000,
      maxFrameBytes: 400,
    })
    const [a, b] = await pair(net)
    collect(b)
    expect(a.send(new Uint8Array(60))).toBe(true)
    expect(a.send(new Uint8Array(60))).toBe(false)
    expect(a.writable).toBe(false)
    let drained = 0
    a.on('connection:drain', () => drained++)
    await clock.advanceAsync(0)
    expect(drained).toBe(1)
    expect(a.bufferedBytes).toBe(0)
    expect(() => a.send(new Uint8Array(401))).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }))
    let error: unknown
    a.on('connection:close', (e) => {
      error = e
    })
    expect(() => {
      for (let i = 0; i < 5; i++) a.send(new Uint8Array(300))
    }).toThrow(expect.objectContaining({ code: 'BUFFER_OVERFLOW' }))
    expect(isTransportError(error, 'BUFFER_OVERFLOW')).toBe(true)
    await clock.advanceAsync(0)
    expect(b.closed).toBe(true)
  })
})
