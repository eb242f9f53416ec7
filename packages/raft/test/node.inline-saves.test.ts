// A follower answers an append only once its write is durable and has nothing else to send meanwhile, so it asks
// its storage to write inline (on its own thread, no hop through the thread pool: `SaveOptions.inline`); a leader
// keeps taking and sending proposals while its own write is under way, so its writes go to the background.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type SaveOptions, type StorageUpdate } from '../src/index.js'
import { rng } from './helpers/cores.js'

/** MemoryLogStorage recording, for each save with entries, whether it asked to be written inline. */
class RecordingStorage extends MemoryLogStorage {
  readonly inline: boolean[] = []
  override save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    if ((update.entries?.length ?? 0) > 0) this.inline.push(options?.inline === true)
    return super.save(update, options)
  }
}

describe('RaftNode inline saves', () => {
  it("writes a follower's entries inline and a leader's in the background", async () => {
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
    for (const s of storages) s.inline.length = 0
    for (let k = 0; k < 3; k++) {
      const p = nodes[0]!.propose(new Uint8Array([k]))
      await clock.advanceAsync(5)
      await p
    }
    expect(storages[0]!.inline.length).toBeGreaterThan(0)
    expect(storages[0]!.inline.every((x) => !x)).toBe(true)
    for (const s of storages.slice(1)) {
      expect(s.inline.length).toBeGreaterThan(0)
      expect(s.inline.every((x) => x)).toBe(true)
    }
    await Promise.all(nodes.map((n) => n.stop()))
  })
})
