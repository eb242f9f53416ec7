// Applying in time slices: a state machine that applies synchronously (as the cluster's store does) gets the
// committed entries in batches, and a batch of dozens of large commands applied in one go held a member's event
// loop past its election timeout (issue #18). The applier lets the loop run between entries once a slice is spent.
// Slices are measured on the node's clock (a simulation's manual clock stands still while it applies, so its
// seeds replay exactly); here each apply moves the clock on by 2 ms of work, so the batch spans many slices
// whatever the machine: the test checks that other callbacks run in between, not how fast anything is.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode } from '../src/index.js'

/** A manual clock whose time also moves with the work the state machine reports. */
class WorkClock extends ManualClock {
  worked = 0
  override now(): number {
    return super.now() + this.worked
  }
}

describe('RaftNode applying a batch of entries', () => {
  it('lets the event loop run between entries once a slice is spent', async () => {
    const clock = new WorkClock()
    const net = new MemoryNetwork({ seed: 18, clock })
    let applied = 0
    let appliedWhenRan = -1
    const node = new RaftNode({
      id: 'n1',
      peers: ['n1'],
      transport: net.transport('n1'),
      storage: new MemoryLogStorage(),
      stateMachine: {
        apply: (cmd) => {
          if (cmd.length === 0) return undefined
          if (applied === 0)
            setImmediate(() => {
              appliedWhenRan = applied
            })
          clock.worked += 2
          applied++
          return undefined
        },
        snapshot: () => new Uint8Array(0),
        restore: () => {},
      },
      electionTimeoutMs: [150, 160],
      heartbeatIntervalMs: 50,
    })
    await node.start()
    for (let t = 0; node.role !== 'leader'; t += 10) {
      if (t > 60_000) throw new Error('no leader')
      await clock.advanceAsync(10)
    }
    // 50 commands proposed at once: one append, one batch of committed entries, 100 ms of applying.
    const writes = Array.from({ length: 50 }, (_, i) => node.propose(new TextEncoder().encode(`k${i}`)))
    for (let t = 0; applied < 50; t += 10) {
      if (t > 60_000) throw new Error(`applied ${applied} of 50`)
      await clock.advanceAsync(10)
    }
    await Promise.all(writes)
    expect(appliedWhenRan).toBeGreaterThanOrEqual(1)
    expect(appliedWhenRan).toBeLessThan(50)
    await node.stop()
  })
})
