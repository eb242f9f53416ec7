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

  it('applies a committed entry while the write of later entries is still running, and acknowledges nothing a majority has not written', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 5, clock })
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
          electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
          heartbeatIntervalMs: 50,
          random: rng(i + 1),
        }),
    )
    await Promise.all(nodes.map((n) => n.start()))
    await clock.advanceAsync(600)
    const leader = nodes.find((n) => n.role === 'leader')!
    const ls = storages[nodes.indexOf(leader)]!
    const followers = storages.filter((s) => s !== ls)
    const done = new Set<string>()
    const put = (name: string) =>
      void leader.propose(new Uint8Array([name.charCodeAt(0)])).then(() => done.add(name))
    // The leader's disk stalls with B being written; both followers write B, so B is committed without it.
    ls.gated = true
    put('B')
    await clock.advanceAsync(20)
    expect(ls.waiting.length).toBe(1)
    expect(done.has('B')).toBe(false)
    put('C')
    // The leader's write of B completes; its write of C stalls. B is applied (and answered) meanwhile.
    ls.release()
    ls.gated = true
    await clock.advanceAsync(20)
    expect(done.has('B')).toBe(true)
    expect(ls.waiting.length).toBe(1)
    // Both followers stall; the leader's write of C completes. C (on every disk by now) is answered, but D,
    // written by the leader alone, is not: one copy is no majority.
    for (const f of followers) f.gated = true
    put('D')
    ls.release()
    await clock.advanceAsync(200)
    expect(done.has('C')).toBe(true)
    expect(done.has('D')).toBe(false)
    for (const f of followers) f.release()
    await clock.advanceAsync(200)
    expect([...done].sort()).toEqual(['B', 'C', 'D'])
    for (const n of nodes) await n.stop()
  })

  it('writes a commit index that changed alone with the next entries, or on stop()', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 9, clock })
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
          electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
          heartbeatIntervalMs: 50,
          random: rng(i + 1),
        }),
    )
    await Promise.all(nodes.map((n) => n.start()))
    await clock.advanceAsync(600)
    const leader = nodes.find((n) => n.role === 'leader')!
    const ls = storages[nodes.indexOf(leader)]!
    // Back-to-back writes, each proposed as soon as the previous one is answered, within one tick.
    const before = ls.saved.length
    for (let i = 0; i < 5; i++) {
      let answered = false
      void leader.propose(new Uint8Array([i])).then(() => (answered = true))
      while (!answered) await clock.advanceAsync(1)
    }
    const saves = ls.saved.slice(before)
    // One write per proposal: no write carried only the new commit index.
    expect(saves.length).toBe(5)
    expect(saves.every((u) => (u.entries?.length ?? 0) > 0)).toBe(true)
    const commit = leader.commitIndex
    // The leader tells the followers the last commit index at its next tick (no later append carried it): let
    // that arrive.
    await clock.advanceAsync(10)
    for (const n of nodes) await n.stop()
    for (const s of storages) expect((await s.load()).hardState.commit).toBe(commit)
  })
})
