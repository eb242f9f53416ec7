// The driver's persistence rule: nothing that depends on a write leaves before the write completed.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type StorageUpdate } from '../src/index.js'
import { rng } from './helpers/cores.js'

/** MemoryLogStorage whose saves wait until released. */
class GatedStorage extends MemoryLogStorage {
  gated = false
  waiting: (() => void)[] = []
  saved: StorageUpdate[] = []
  override async save(update: StorageUpdate): Promise<void> {
    if (this.gated) await new Promise<void>((r) => this.waiting.push(r))
    this.saved.push(update)
    return super.save(update)
  }
  release(): void {
    this.gated = false
    for (const w of this.waiting.splice(0)) w()
  }
}

describe('RaftNode persistence ordering', () => {
  it('sends no vote and no acknowledgement before the write they depend on completed', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 3, clock })
    const ids = ['n1', 'n2', 'n3']
    const storages = ids.map(() => new GatedStorage())
    const nodes = ids.map(
      (id, i) =>
        new RaftNode({
          id,
          peers: ids,
          transport: net.transport(id),
          storage: storages[i]!,
          stateMachine: { apply: () => undefined, snapshot: () => new Uint8Array(), restore: () => {} },
          // n1 times out first.
          electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
          heartbeatIntervalMs: 50,
          random: rng(i + 1),
        }),
    )
    await Promise.all(nodes.map((n) => n.start()))
    // n2 and n3 cannot persist: n1 can collect pre-votes (no state changes) but no votes.
    storages[1]!.gated = true
    storages[2]!.gated = true
    await clock.advanceAsync(400)
    // n1 asked for votes, n2 and n3 took them but cannot persist them: no grant may leave, so no leader.
    expect(nodes[0]!.term).toBeGreaterThan(0)
    expect(storages[1]!.waiting.length).toBe(1)
    expect(storages[2]!.waiting.length).toBe(1)
    expect(nodes.some((n) => n.role === 'leader')).toBe(false)
    // Once n2 can write, n1 and n2 form a majority.
    storages[1]!.release()
    await clock.advanceAsync(600)
    const leader = nodes.find((n) => n.role === 'leader')!
    expect(['n1', 'n2']).toContain(leader.id)
    // A follower's acknowledgement waits for its entries to be written: with n2 gated again and n3 still
    // gated, a proposal cannot commit.
    storages[1]!.gated = true
    const p = leader.propose(new Uint8Array([1]))
    let done = false
    void p.then(() => (done = true))
    await clock.advanceAsync(200)
    expect(done).toBe(false)
    storages[2]!.release()
    await clock.advanceAsync(1000)
    expect(done).toBe(true)
    storages[1]!.release()
    for (const n of nodes) await n.stop()
  })
})
