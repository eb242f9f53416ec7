// A follower that takes long to install a snapshot it received in full (a big snapshot written to a slow disk)
// must not be sent the same snapshot again. The leader gives a delivered transfer up two election timeouts after
// the last acknowledgement and probes from the follower's match, which would need the snapshot again; it does
// not resend it because the follower answers nothing until the install is durable, and its first answer (the
// snapshot's index) moves the leader to replicating. This pins that: one read of the leader's snapshot per
// transfer, however long the install takes.
import { MemoryNetwork } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type StorageUpdate } from '../src/index.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

function kv() {
  const data = new Map<string, string>()
  return {
    data,
    apply(cmd: Uint8Array) {
      const [k, v] = dec.decode(cmd).split('=')
      data.set(k!, v!)
    },
    snapshot: () => enc.encode(JSON.stringify([...data])),
    restore(b: Uint8Array) {
      data.clear()
      for (const [k, v] of JSON.parse(dec.decode(b)) as [string, string][]) data.set(k, v)
    },
  }
}

/** Memory storage that counts snapshot reads and can hold a snapshot's save until released. */
class SlowInstallStorage extends MemoryLogStorage {
  reads = 0
  installs = 0
  slow = false
  private release: (() => void)[] = []
  override snapshot() {
    this.reads++
    return super.snapshot()
  }
  override async save(update: StorageUpdate, options?: { signal?: AbortSignal }): Promise<void> {
    if (update.snapshot && this.slow) {
      this.installs++
      await new Promise<void>((r) => this.release.push(r))
    }
    return super.save(update, options)
  }
  finishInstalls(): void {
    for (const r of this.release.splice(0)) r()
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const running: RaftNode[] = []
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop().catch(() => {})
})

describe('a follower slow to install a snapshot', () => {
  it('is sent the snapshot once, and replicates normally after it installs', async () => {
    const net = new MemoryNetwork({ seed: 7 })
    const ids = ['n1', 'n2', 'n3']
    const storages = ids.map(() => new SlowInstallStorage())
    const sms = ids.map(() => kv())
    const make = (i: number) => {
      const node = new RaftNode({
        id: ids[i]!,
        peers: ids,
        transport: net.transport(ids[i]!),
        storage: storages[i]!,
        stateMachine: sms[i]!,
        electionTimeoutMs: [150, 300],
        heartbeatIntervalMs: 30,
        snapshotThreshold: 8,
        trailingEntries: 1,
      })
      running.push(node)
      return node
    }
    const nodes = ids.map((_, i) => make(i))
    await Promise.all(nodes.map((n) => n.start()))
    await until(() => nodes.some((n) => n.role === 'leader'), 20_000, 'a leader')
    const leader = nodes.find((n) => n.role === 'leader')!
    const li = nodes.indexOf(leader)
    const fi = (li + 1) % nodes.length
    await nodes[fi]!.stop()
    for (let i = 0; i < 30; i++) await leader.propose(enc.encode(`k${i}=v${i}`))
    for (const end = Date.now() + 20_000; ((await storages[li]!.snapshot())?.meta.index ?? 0) < 8; ) {
      if (Date.now() > end) throw new Error('timed out waiting for the leader to snapshot')
      await new Promise((r) => setTimeout(r, 10))
    }

    // The follower comes back and must be sent a snapshot; its install hangs until released.
    storages[fi]!.slow = true
    storages[fi]!.installs = 0
    const readsBefore = storages[li]!.reads
    const again = make(fi)
    await again.start()
    await until(() => storages[fi]!.installs === 1, 20_000, 'the follower to start installing')
    const readsAtInstall = storages[li]!.reads
    // Six maximum election timeouts with the install still hanging (the old give-up came after two, measured
    // on the same wall clock). Every node runs on this process's event loop, so by the time this wait ends the
    // leader's ticks due before it have run, however slow the machine.
    const quietUntil = Date.now() + 6 * 300
    await until(() => Date.now() >= quietUntil, 30_000, 'six election timeouts')
    expect(storages[li]!.reads).toBe(readsAtInstall)
    expect(storages[fi]!.installs).toBe(1)

    storages[fi]!.finishInstalls()
    await until(() => again.appliedIndex >= leader.commitIndex, 20_000, 'the follower to catch up')
    const { index } = await leader.propose(enc.encode('after=install'))
    await until(() => again.appliedIndex >= index, 20_000, 'the entry after the snapshot')
    expect(sms[fi]!.data).toEqual(sms[li]!.data)
    // One transfer in all: the leader read its snapshot for this follower once.
    expect(storages[li]!.reads - readsBefore).toBe(1)
  }, 120_000)
})
