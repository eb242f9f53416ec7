import { MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type RaftNodeOptions } from '../src/index.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

function kv() {
  const data = new Map<string, string>()
  let restores = 0
  return {
    data,
    get restores() {
      return restores
    },
    apply(cmd: Uint8Array) {
      const [k, v] = dec(cmd).split('=')
      data.set(k!, v!)
      return v
    },
    snapshot: () => enc(JSON.stringify([...data])),
    restore(s: Uint8Array) {
      restores++
      data.clear()
      for (const [k, v] of JSON.parse(dec(s))) data.set(k, v)
    },
  }
}

async function until(cond: () => boolean, ms = 15_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

function cluster(n: number, extra: Partial<RaftNodeOptions> = {}) {
  const net = new MemoryNetwork({ seed: 7 })
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`)
  const storages = ids.map(() => new MemoryLogStorage())
  const sms = ids.map(() => kv())
  const make = (i: number) =>
    new RaftNode({
      id: ids[i]!,
      peers: ids,
      transport: net.transport(ids[i]!),
      storage: storages[i]!,
      stateMachine: sms[i]!,
      electionTimeoutMs: [60, 120],
      heartbeatIntervalMs: 15,
      ...extra,
    })
  const nodes = ids.map((_, i) => make(i))
  return { ids, nodes, storages, sms, make, net }
}

describe('RaftNode snapshots', () => {
  it('snapshots every snapshotThreshold applied entries and compacts, keeping trailingEntries', async () => {
    const c = cluster(3, { snapshotThreshold: 50, trailingEntries: 10 })
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    for (let i = 0; i < 230; i++) await leader.propose(enc(`k${i % 20}=${i}`))
    await until(() => c.storages.every((s) => (s as MemoryLogStorage).lastIndex() >= 231))
    for (const s of c.storages) {
      await until(() => (s as unknown as { snap: { meta: { index: number } } | null }).snap !== null)
    }
    const snaps = await Promise.all(c.storages.map((s) => s.snapshot()))
    for (const s of snaps) {
      expect(s!.meta.index).toBeGreaterThanOrEqual(150)
      expect(s!.meta.conf.voters).toEqual(c.ids)
    }
    // Compacted behind the snapshot: what is loaded starts after it and the storage holds little more.
    const loaded = await c.storages[0]!.load()
    expect(loaded.entries[0]!.index).toBe(loaded.snapshot!.meta.index + 1)
    await Promise.all(c.nodes.map((n) => n.stop()))

    // A restart restores from the snapshot and replays only what follows it.
    const again = c.ids.map((_, i) => c.make(i))
    const want = new Map<string, string>()
    for (let i = 0; i < 230; i++) want.set(`k${i % 20}`, `${i}`)
    for (const s of c.sms) s.data.clear()
    await Promise.all(again.map((n) => n.start()))
    await until(() => again.every((n) => n.appliedIndex >= 231))
    for (let i = 0; i < 3; i++) {
      expect(c.sms[i]!.restores).toBeGreaterThan(0)
      expect(c.sms[i]!.data).toEqual(want)
    }
    await Promise.all(again.map((n) => n.stop()))
  })

  it('follows a snapshot policy changed while running (setSnapshotPolicy)', async () => {
    const c = cluster(1, { snapshotThreshold: 0 })
    const [n] = c.nodes
    await n!.start()
    await until(() => n!.role === 'leader')
    for (let i = 0; i < 30; i++) await n!.propose(enc(`k=${i}`))
    expect(await c.storages[0]!.snapshot()).toBeNull()
    expect(() => n!.setSnapshotPolicy({ snapshotThreshold: -1 })).toThrow(RangeError)
    n!.setSnapshotPolicy({ snapshotThreshold: 10, trailingEntries: 2 })
    await n!.propose(enc('k=now'))
    await until(() => (c.storages[0] as unknown as { snap: unknown }).snap !== null)
    const loaded = await c.storages[0]!.load()
    expect(loaded.snapshot!.meta.index).toBeGreaterThanOrEqual(31)
    expect(loaded.entries.length).toBeLessThanOrEqual(3)
    await n!.stop()
  })

  it('brings a follower that fell behind the compacted log up to date with a chunked snapshot', async () => {
    const c = cluster(3, { snapshotThreshold: 40, trailingEntries: 5, snapshotChunkBytes: 64 })
    await Promise.all(c.nodes.map((n) => n.start()))
    await until(() => c.nodes.some((n) => n.role === 'leader'))
    const leader = c.nodes.find((n) => n.role === 'leader')!
    const lagging = c.nodes.find((n) => n !== leader)!
    const li = c.nodes.indexOf(lagging)
    c.net.isolate(lagging.id)
    for (let i = 0; i < 200; i++) await leader.propose(enc(`key${i % 30}=value-${i}`))
    const snap = await c.storages[c.nodes.indexOf(leader)]!.snapshot()
    expect(snap!.meta.index).toBeGreaterThan(lagging.appliedIndex + 5)
    c.net.heal()
    await until(() => lagging.appliedIndex >= leader.commitIndex)
    expect(c.sms[li]!.restores).toBeGreaterThan(0)
    expect(c.sms[li]!.data).toEqual(c.sms[c.nodes.indexOf(leader)]!.data)
    // It keeps replicating normally afterwards.
    const { index } = await leader.propose(enc('after=snapshot'))
    await until(() => lagging.appliedIndex >= index)
    expect(c.sms[li]!.data.get('after')).toBe('snapshot')
    const installed = await c.storages[li]!.snapshot()
    expect(installed!.meta.index).toBeGreaterThanOrEqual(snap!.meta.index)
    await Promise.all(c.nodes.map((n) => n.stop()))
  })

  it('validates its snapshot options', () => {
    const c = cluster(1)
    const base = {
      id: 'n1',
      peers: ['n1'],
      transport: c.net.transport('x'),
      storage: new MemoryLogStorage(),
      stateMachine: kv(),
    }
    expect(() => new RaftNode({ ...base, snapshotThreshold: -1 })).toThrow(RangeError)
    expect(() => new RaftNode({ ...base, trailingEntries: 1.5 })).toThrow(RangeError)
    expect(() => new RaftNode({ ...base, snapshotChunkBytes: 2 << 20 })).toThrow(RangeError)
  })
})

describe('RaftNode on FileLogStorage', () => {
  it('survives restarts of every member with snapshots and compaction on disk', async () => {
    const { mkdtempSync, rmSync, readdirSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { FileLogStorage } = await import('../src/index.js')
    const root = mkdtempSync(join(tmpdir(), 'raft-node-file-'))
    const net = new MemoryNetwork({ seed: 11 })
    const ids = ['n1', 'n2', 'n3']
    const sms = ids.map(() => kv())
    const start = async () => {
      const nodes = await Promise.all(
        ids.map(async (id, i) => {
          const storage = await FileLogStorage.open(join(root, id), {
            nodeId: id,
            clusterId: 'c',
            segmentBytes: 4096,
          })
          return new RaftNode({
            id,
            peers: ids,
            transport: net.transport(id),
            storage,
            stateMachine: sms[i]!,
            electionTimeoutMs: [60, 120],
            heartbeatIntervalMs: 15,
            snapshotThreshold: 40,
            trailingEntries: 10,
          })
        }),
      )
      await Promise.all(nodes.map((n) => n.start()))
      await until(() => nodes.some((n) => n.role === 'leader'))
      return nodes
    }
    try {
      const want = new Map<string, string>()
      for (let round = 0; round < 3; round++) {
        const nodes = await start()
        const leader = nodes.find((n) => n.role === 'leader')!
        for (let i = 0; i < 100; i++) {
          await leader.propose(enc(`r${round}k${i % 7}=${i}`))
          want.set(`r${round}k${i % 7}`, `${i}`)
        }
        await until(() => nodes.every((n) => n.appliedIndex >= leader.commitIndex))
        for (const s of sms) expect(s.data).toEqual(want)
        await Promise.all(nodes.map((n) => n.stop()))
        for (const s of sms) s.data.clear()
      }
      // Old segments were deleted behind the snapshots.
      const files = readdirSync(join(root, 'n1'))
      expect(files.filter((f) => f.startsWith('snap-')).length).toBe(1)
      expect(files.filter((f) => f.startsWith('wal-')).length).toBeLessThan(20)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('RaftNode snapshots with a slow state machine', () => {
  it('keeps committing and applying proposals while the state machine serializes a snapshot', async () => {
    const net = new MemoryNetwork({ seed: 5 })
    const ids = ['n1', 'n2', 'n3']
    let release: (() => void) | null = null
    let calls = 0
    const sms = ids.map(() => {
      const base = kv()
      return {
        ...base,
        data: base.data,
        snapshot: () => {
          calls++
          const captured = base.snapshot()
          // The serialized state is captured now; the promise resolves only when the test lets it.
          return new Promise<Uint8Array>((resolve) => {
            const prev = release
            release = () => {
              prev?.()
              resolve(captured)
            }
          })
        },
      }
    })
    const storages = ids.map(() => new MemoryLogStorage())
    const nodes = ids.map(
      (id, i) =>
        new RaftNode({
          id,
          peers: ids,
          transport: net.transport(id),
          storage: storages[i]!,
          stateMachine: sms[i]!,
          electionTimeoutMs: [60, 120],
          heartbeatIntervalMs: 15,
          snapshotThreshold: 20,
          trailingEntries: 5,
        }),
    )
    await Promise.all(nodes.map((n) => n.start()))
    await until(() => nodes.some((n) => n.role === 'leader'))
    const leader = nodes.find((n) => n.role === 'leader')!
    for (let i = 0; i < 25; i++) await leader.propose(enc(`k${i}=${i}`))
    await until(() => calls > 0)
    // While snapshots are pending, proposals still commit and apply.
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => leader.propose(enc(`later${i}=${i}`))),
    )
    expect(results.every((r) => r.index > 25)).toBe(true)
    expect(await storages[ids.indexOf(leader.id)]!.snapshot()).toBeNull()
    release!()
    await until(() => storages.every((s) => (s as unknown as { snap: unknown }).snap !== null))
    const snap = await storages[ids.indexOf(leader.id)]!.snapshot()
    expect(snap!.meta.index).toBeGreaterThanOrEqual(20)
    // The snapshot holds the state as of its index, not the later writes.
    expect(new Map(JSON.parse(dec(snap!.data))).has('later0')).toBe(false)
    await Promise.all(nodes.map((n) => n.stop()))
  })
})
