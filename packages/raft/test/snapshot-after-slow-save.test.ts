// A snapshot is taken between two applies once `snapshotThreshold` entries were applied since the last one.
// While one is being written no other starts, so every entry applied during a slow snapshot write found one
// under way: if no entry came after it finished, the node never took the next snapshot, however far the log
// had grown past the threshold (a manager's data key rotation test waited for it in vain about one run in
// six). The applier now checks again when a snapshot is written.
import { MemoryNetwork } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type SaveOptions, type StorageUpdate } from '../src/index.js'

/** Memory storage whose snapshot saves wait until `release()`. */
class HeldSnapshots extends MemoryLogStorage {
  held = 0
  #gate: Promise<void> | undefined
  #open: (() => void) | undefined
  hold(): void {
    this.#gate = new Promise((r) => {
      this.#open = r
    })
  }
  release(): void {
    this.#open?.()
    this.#gate = undefined
  }
  override async save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    if (update.snapshot && this.#gate) {
      this.held++
      await this.#gate
    }
    return super.save(update, options)
  }
}

const running: RaftNode[] = []
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop().catch(() => {})
})

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('snapshots after a slow snapshot write', () => {
  it('takes the snapshot that came due while one was written, with no entry after it', async () => {
    const storage = new HeldSnapshots()
    const applied: string[] = []
    const node = new RaftNode({
      id: 'n1',
      peers: ['n1'],
      transport: new MemoryNetwork({ seed: 1 }).transport('n1'),
      storage,
      stateMachine: {
        apply: (c) => void applied.push(new TextDecoder().decode(c)),
        snapshot: () => new TextEncoder().encode(JSON.stringify(applied)),
        restore: (b) => void applied.splice(0, applied.length, ...JSON.parse(new TextDecoder().decode(b))),
      },
      snapshotThreshold: 10,
      trailingEntries: 2,
    })
    running.push(node)
    await node.start()
    await until(() => node.role === 'leader', 'leadership')
    storage.hold()
    for (let i = 0; i < 25; i++) await node.propose(new TextEncoder().encode(`e${i}`))
    // The first snapshot is being written; every later apply found it under way.
    expect(storage.held).toBe(1)
    const last = node.appliedIndex
    storage.release()
    await until(
      async () => ((await storage.snapshot())?.meta.index ?? 0) >= last,
      `a snapshot at ${last} (the log is ${last - 10} entries past the first one)`,
    )
  })
})
