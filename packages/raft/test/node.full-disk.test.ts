// A RaftNode whose disk fills: it stays up and in its role, answers proposals with NO_SPACE while its log
// cannot grow, and takes writes again by itself once space returns. A failed sync still stops it for good.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import {
  FileLogStorage,
  isRaftError,
  MemoryLogStorage,
  RaftError,
  RaftNode,
  type StorageUpdate,
} from '../src/index.js'
import { MAX_RETRY_MS } from '../src/internal/full-disk.js'
import { powerLossFileSystem } from '../src/testing/index.js'
import { rng } from './helpers/cores.js'
import { type FullDiskFileSystem, fullDiskFileSystem } from './helpers/full-disk-fs.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

interface Member {
  node: RaftNode
  files: FullDiskFileSystem
  applied: string[]
  errors: Error[]
  events: string[]
}

async function cluster(ids: string[], clock: ManualClock, segmentBytes = 64 * 1024): Promise<Member[]> {
  const net = new MemoryNetwork({ seed: 11, clock })
  return Promise.all(
    ids.map(async (id, i) => {
      const files = fullDiskFileSystem(powerLossFileSystem({ seed: i + 1 }))
      const storage = await FileLogStorage.open(`/raft/${id}`, {
        fileSystem: files,
        nodeId: id,
        segmentBytes,
      })
      const applied: string[] = []
      const node = new RaftNode({
        id,
        peers: ids,
        transport: net.transport(id),
        storage,
        stateMachine: {
          apply: (data) => void applied.push(dec(data)),
          snapshot: () => enc(JSON.stringify(applied)),
          restore: (data) => {
            applied.splice(0, applied.length, ...(JSON.parse(dec(data)) as string[]))
          },
        },
        electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
        heartbeatIntervalMs: 50,
        random: rng(i + 1),
      })
      const errors: Error[] = []
      const events: string[] = []
      node.on('error', (e) => errors.push(e))
      node.on('storage:full', (e) => events.push(`full: ${isRaftError(e, 'NO_SPACE') ? 'NO_SPACE' : e}`))
      node.on('storage:writable', () => events.push('writable'))
      await node.start()
      return { node, files, applied, errors, events }
    }),
  )
}

/** Advances the clock until `p` settles (2 s at most); returns its error, if any. */
async function settled(clock: ManualClock, p: Promise<unknown>, what: string): Promise<unknown> {
  let outcome: { err: unknown } | undefined
  p.then(
    () => (outcome = { err: undefined }),
    (err) => (outcome = { err }),
  )
  for (let k = 0; k < 200 && outcome === undefined; k++) await clock.advanceAsync(10)
  if (outcome === undefined) throw new Error(`${what} did not settle`)
  return outcome.err
}

/** Proposes `value` and advances the clock until it settles; returns the error, if any. */
function propose(clock: ManualClock, node: RaftNode, value: string): Promise<unknown> {
  return settled(clock, node.propose(enc(value)), `proposal ${value}`)
}

const isNoSpace = (e: unknown) => isRaftError(e, 'NO_SPACE')

describe('RaftNode on a full disk', () => {
  it('refuses proposals with NO_SPACE while its disk is full and takes them again once space returns', async () => {
    const clock = new ManualClock()
    const [m] = await cluster(['n1'], clock)
    const { node, files } = m!
    await clock.advanceAsync(400)
    expect(node.role).toBe('leader')
    expect(await propose(clock, node, 'a')).toBeUndefined()

    files.room = 0
    const first = await propose(clock, node, 'b')
    expect(isNoSpace(first), String(first)).toBe(true)
    expect((first as Error).message).toMatch(/ENOSPC/)
    // 'b' is in the log being written: it may still commit. The later ones never reach a log, and say so.
    expect((first as RaftError).neverProposed).toBe(false)
    // Later ones are refused at once, while the node keeps its role and stays up; so are reads (they would
    // wait for the write that waits for space).
    for (const v of ['c', 'd']) {
      const refused = await propose(clock, node, v)
      expect(isNoSpace(refused)).toBe(true)
      expect((refused as RaftError).neverProposed).toBe(true)
    }
    expect(isNoSpace(await settled(clock, node.readIndex(), 'a read'))).toBe(true)
    await clock.advanceAsync(5 * MAX_RETRY_MS)
    expect(node.role).toBe('leader')
    expect(m!.errors).toEqual([])
    expect(files.refused).toBeGreaterThan(3)

    files.room = Number.POSITIVE_INFINITY
    // Within one retry interval the write that waited goes through and proposals are taken again.
    await clock.advanceAsync(MAX_RETRY_MS + 10)
    expect(await propose(clock, node, 'e')).toBeUndefined()
    expect(m!.errors).toEqual([])
    // 'b' was in the log being written when the disk filled: its outcome was unknown, and it did commit.
    expect(m!.applied).toEqual(['a', 'b', 'e'])
    expect(m!.events).toEqual(['full: NO_SPACE', 'writable'])
    await node.stop()
  })

  it('keeps a follower whose disk is full in the cluster, and catches it up once space returns', async () => {
    const clock = new ManualClock()
    const members = await cluster(['n1', 'n2', 'n3'], clock)
    await clock.advanceAsync(600)
    const leader = members.find((m) => m.node.role === 'leader')!
    const follower = members.find((m) => m !== leader)!
    expect(await propose(clock, leader.node, 'a')).toBeUndefined()
    follower.files.room = 0
    for (const v of ['b', 'c', 'd']) expect(await propose(clock, leader.node, v)).toBeUndefined()
    // The follower cannot write them; it stays a follower of the same leader, and proposals made on it are
    // refused with NO_SPACE rather than left waiting.
    await clock.advanceAsync(3000)
    expect(follower.node.role).toBe('follower')
    expect(follower.node.leaderId).toBe(leader.node.id)
    const refused = await propose(clock, follower.node, 'x')
    expect(isNoSpace(refused)).toBe(true)
    expect((refused as RaftError).neverProposed).toBe(true)
    expect(follower.errors).toEqual([])
    follower.files.room = Number.POSITIVE_INFINITY
    for (let k = 0; k < 100 && follower.applied.length < 4; k++) await clock.advanceAsync(50)
    expect(follower.applied).toEqual(['a', 'b', 'c', 'd'])
    expect(await propose(clock, follower.node, 'e')).toBeUndefined()
    for (const m of members) await m.node.stop()
  })

  it("hands leadership to a follower when the leader's disk fills, so the cluster keeps taking writes", async () => {
    const clock = new ManualClock()
    const members = await cluster(['n1', 'n2', 'n3'], clock)
    await clock.advanceAsync(600)
    const old = members.find((m) => m.node.role === 'leader')!
    expect(await propose(clock, old.node, 'a')).toBeUndefined()
    old.files.room = 0
    expect(isNoSpace(await propose(clock, old.node, 'b'))).toBe(true)
    // A follower with room takes over (hashicorp/raft steps down on a failed log write; etcd exits).
    let next: Member | undefined
    for (let k = 0; k < 100 && !next; k++) {
      await clock.advanceAsync(50)
      next = members.find((m) => m !== old && m.node.role === 'leader')
    }
    expect(next, 'a follower leading').toBeDefined()
    expect(old.node.role).toBe('follower')
    expect(await propose(clock, next!.node, 'c')).toBeUndefined()
    expect(old.errors).toEqual([])
    // Space returns: the old leader catches up as a follower.
    old.files.room = Number.POSITIVE_INFINITY
    for (let k = 0; k < 100 && !old.applied.includes('c'); k++) await clock.advanceAsync(50)
    expect(old.applied.filter((v) => v !== 'b')).toEqual(['a', 'c'])
    for (const m of members) await m.node.stop()
  })

  it('tries a snapshot that found no space again only after another snapshot interval', async () => {
    // The log has room, snapshot files do not: every snapshot is refused.
    class NoRoomForSnapshots extends MemoryLogStorage {
      attempts = 0
      override save(update: StorageUpdate): Promise<void> {
        if (update.snapshot && update.entries === undefined) {
          this.attempts++
          return Promise.reject(new RaftError('NO_SPACE', 'ENOSPC: no space left on device, write'))
        }
        return super.save(update)
      }
    }
    const clock = new ManualClock()
    const storage = new NoRoomForSnapshots()
    const node = new RaftNode({
      id: 'n1',
      peers: ['n1'],
      transport: new MemoryNetwork({ seed: 1, clock }).transport('n1'),
      storage,
      stateMachine: { apply: () => undefined, snapshot: () => new Uint8Array(8), restore: () => {} },
      electionTimeoutMs: [150, 150],
      heartbeatIntervalMs: 50,
      random: rng(1),
      snapshotThreshold: 10,
    })
    const errors: Error[] = []
    node.on('error', (e) => errors.push(e))
    await node.start()
    await clock.advanceAsync(400)
    for (let k = 0; k < 60; k++) expect(await propose(clock, node, `v${k}`)).toBeUndefined()
    expect(errors).toEqual([])
    // One try per 10 applied entries, not one per apply.
    expect(storage.attempts).toBeGreaterThanOrEqual(4)
    expect(storage.attempts).toBeLessThanOrEqual(7)
    await node.stop()
  })

  it('stops for good when a sync fails', async () => {
    const clock = new ManualClock()
    const [m] = await cluster(['n1'], clock, 1024)
    const { node, files } = m!
    await clock.advanceAsync(400)
    expect(await propose(clock, node, 'a')).toBeUndefined()
    // Segments are small: the next few writes start a segment, whose directory entry is synced.
    files.syncError = 'ENOSPC'
    let err: unknown
    for (let k = 0; k < 50 && err === undefined; k++)
      err = await propose(clock, node, `v${k}`.padEnd(200, '.'))
    expect(m!.errors).toHaveLength(1)
    expect(isRaftError(m!.errors[0], 'IO')).toBe(true)
    files.syncError = null
    expect(isRaftError(await propose(clock, node, 'z'), 'STOPPED')).toBe(true)
    await node.stop()
  })
})
