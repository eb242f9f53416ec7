// A snapshot larger than the transport's high-water mark must reach a follower that fell behind the compacted
// log: every transport returns false from `send` once its buffer is over the mark (after queueing the frame),
// and the snapshot pump must wait for the drain and go on from the next offset, over memory and over TCP alike.
import { createServer } from 'node:net'
import { MemoryNetwork, type Transport, tcpTransport } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode } from '../src/index.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Key-value state whose snapshot is as large as its values. */
function bigKv() {
  const data = new Map<string, string>()
  let restores = 0
  return {
    data,
    get restores() {
      return restores
    },
    apply(cmd: Uint8Array) {
      const s = dec.decode(cmd)
      const i = s.indexOf('=')
      data.set(s.slice(0, i), s.slice(i + 1))
    },
    snapshot: () => enc.encode(JSON.stringify([...data])),
    restore(b: Uint8Array) {
      restores++
      data.clear()
      for (const [k, v] of JSON.parse(dec.decode(b)) as [string, string][]) data.set(k, v)
    },
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

interface Setup {
  peers: { id: string; address: string }[]
  transport(i: number): Transport
  close(): Promise<void>
}

const running: RaftNode[] = []
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop().catch(() => {})
  for (const c of cleanups.splice(0)) await c()
})

async function catchUpThroughLargeSnapshot(setup: Setup): Promise<void> {
  cleanups.push(() => setup.close())
  const storages = setup.peers.map(() => new MemoryLogStorage())
  const sms = setup.peers.map(() => bigKv())
  const make = (i: number) => {
    const node = new RaftNode({
      id: setup.peers[i]!.id,
      peers: setup.peers,
      transport: setup.transport(i),
      storage: storages[i]!,
      stateMachine: sms[i]!,
      electionTimeoutMs: [300, 600],
      heartbeatIntervalMs: 50,
      snapshotThreshold: 16,
      trailingEntries: 2,
    })
    running.push(node)
    return node
  }
  const nodes = setup.peers.map((_, i) => make(i))
  await Promise.all(nodes.map((n) => n.start()))
  await until(() => nodes.some((n) => n.role === 'leader'), 20_000, 'a leader')
  const leader = nodes.find((n) => n.role === 'leader')!
  const li = nodes.indexOf(leader)
  const fi = (li + 1) % nodes.length
  await nodes[fi]!.stop()

  // About 4 MiB of state, snapshotted at 3 MiB or more: chunks of 1 MiB, each alone over the 1 MiB high-water
  // mark with its header.
  const value = 'x'.repeat(200 * 1024)
  for (let i = 0; i < 20; i++) await leader.propose(enc.encode(`k${i}=${value}${i}`))
  await until(() => leader.appliedIndex >= leader.commitIndex, 20_000, 'the leader to apply')
  const snap = await (async () => {
    await until(() => storages[li]!.lastIndex() > 0, 5_000, 'the log')
    let s = await storages[li]!.snapshot()
    const end = Date.now() + 20_000
    while ((!s || s.data.length < 2 * 1024 * 1024) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20))
      s = await storages[li]!.snapshot()
    }
    return s
  })()
  expect(snap!.data.length).toBeGreaterThan(2 * 1024 * 1024)

  const again = make(fi)
  await again.start()
  await until(() => again.appliedIndex >= leader.commitIndex, 30_000, 'the follower to catch up')
  expect(sms[fi]!.restores).toBeGreaterThan(0)
  expect(sms[fi]!.data).toEqual(sms[li]!.data)
  // And it replicates normally afterwards.
  const { index } = await leader.propose(enc.encode('after=snapshot'))
  await until(() => again.appliedIndex >= index, 20_000, 'the entry after the snapshot')
  expect(sms[fi]!.data.get('after')).toBe('snapshot')
}

describe('a snapshot larger than the transport high-water mark', () => {
  it('reaches a lagging follower over the memory transport', async () => {
    const net = new MemoryNetwork({ seed: 3 })
    const peers = ['n1', 'n2', 'n3'].map((id) => ({ id, address: id }))
    await catchUpThroughLargeSnapshot({
      peers,
      // A restarted node gets a fresh endpoint once the old one is closed: stop() closes it.
      transport: (i) => net.transport(peers[i]!.id),
      close: async () => {},
    })
  }, 120_000)

  it('reaches a lagging follower over TCP', async () => {
    const peers = []
    for (const id of ['n1', 'n2', 'n3']) peers.push({ id, address: `127.0.0.1:${await freePort()}` })
    const transports: Transport[] = []
    await catchUpThroughLargeSnapshot({
      peers,
      transport: () => {
        const t = tcpTransport()
        transports.push(t)
        return t
      },
      close: async () => {
        for (const t of transports) await t.close()
      },
    })
  }, 120_000)
})
