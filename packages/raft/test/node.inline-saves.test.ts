// With one proposer at a time every member asks its storage to write inline (on its own thread, no hop through
// the thread pool: `SaveOptions.inline`); with proposals piling up (writes of several entries), or coming in
// while the leader writes, the writes go to the background, so that the leader keeps taking and sending
// proposals and every member keeps answering heartbeats meanwhile (InlineWrites).
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type SaveOptions, type StorageUpdate } from '../src/index.js'
import { rng } from './helpers/cores.js'

/**
 * MemoryLogStorage recording, for each save with entries, how many it held and whether it asked to be written
 * inline; while `gate` is set, saves wait for it (a write under way).
 */
class RecordingStorage extends MemoryLogStorage {
  readonly saves: { entries: number; inline: boolean }[] = []
  gate: Promise<void> | null = null
  override async save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    const entries = update.entries?.length ?? 0
    if (entries > 0) this.saves.push({ entries, inline: options?.inline === true })
    if (this.gate) await this.gate
    return super.save(update, options)
  }
}

async function elected() {
  const clock = new ManualClock()
  const net = new MemoryNetwork({ seed: 3, clock })
  const ids = ['n1', 'n2', 'n3']
  const storages = ids.map(() => new RecordingStorage())
  const nodes = ids.map(
    (id, i) =>
      new RaftNode({
        id,
        peers: ids,
        transport: net.transport(id),
        storage: storages[i]!,
        stateMachine: { apply: () => {}, snapshot: () => new Uint8Array(), restore: () => {} },
        electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
        heartbeatIntervalMs: 50,
        random: rng(i + 1),
      }),
  )
  await Promise.all(nodes.map((n) => n.start()))
  await clock.advanceAsync(400)
  expect(nodes[0]!.role).toBe('leader')
  await clock.advanceAsync(20)
  for (const s of storages) s.saves.length = 0
  return { clock, nodes, storages, leader: nodes[0]!, leaderLog: storages[0]! }
}

describe('RaftNode inline saves', () => {
  it('writes inline on every member while one proposer waits for each write', async () => {
    const { clock, nodes, storages } = await elected()
    for (let k = 0; k < 3; k++) {
      const p = nodes[0]!.propose(new Uint8Array([k]))
      await clock.advanceAsync(5)
      await p
    }
    for (const s of storages) {
      expect(s.saves.length).toBeGreaterThan(0)
      expect(s.saves.every((x) => x.inline)).toBe(true)
    }
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('writes piled-up proposals in the background on every member', async () => {
    const { clock, nodes, storages, leader } = await elected()
    const burst = Array.from({ length: 20 }, (_, k) => leader.propose(new Uint8Array([k])))
    await clock.advanceAsync(5)
    await Promise.all(burst)
    for (const s of storages) expect(s.saves).toEqual([{ entries: 20, inline: false }])
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('sends the next write of a leader to the background when a proposal came in during its write', async () => {
    const { clock, nodes, leader, leaderLog } = await elected()
    let release!: () => void
    leaderLog.gate = new Promise<void>((r) => {
      release = r
    })
    const burst = Array.from({ length: 5 }, (_, k) => leader.propose(new Uint8Array([k])))
    await clock.advanceAsync(1)
    // The burst's write is under way: one more proposal comes in meanwhile.
    const late = leader.propose(new Uint8Array([9]))
    await clock.advanceAsync(1)
    leaderLog.gate = null
    release()
    await clock.advanceAsync(5)
    await Promise.all([...burst, late])
    expect(leaderLog.saves).toEqual([
      { entries: 5, inline: false },
      { entries: 1, inline: false },
    ])
    // Quiet again: the next single proposal is written inline.
    const next = leader.propose(new Uint8Array([10]))
    await clock.advanceAsync(5)
    await next
    expect(leaderLog.saves.at(-1)).toEqual({ entries: 1, inline: true })
    await Promise.all(nodes.map((n) => n.stop()))
  })
})
