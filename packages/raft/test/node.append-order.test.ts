// A leader hands its appends to the followers before it starts its own log write, and the connections get to
// write them out first: a connection writes what it was given in a microtask (the TCP transport's coalescing),
// and the Ready's own work (encoding its log records, applying its committed entries) waits for those
// microtasks, so that it does not hold the appends back from the followers for as long as it takes. Likewise a
// write in the background (FileLogStorage starts it in a microtask) starts before the Ready's committed entries
// are applied, so that the state machine does not hold back the write, and with it a follower's answer.
import { ManualClock, MemoryNetwork, type Transport } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type SaveOptions, type StorageUpdate } from '../src/index.js'
import { rng } from './helpers/cores.js'

/** `t` whose dialed connections note `written` in a microtask after each send, as a coalescing socket writes. */
function notingWrites(t: Transport, events: string[]): Transport {
  const bound = <T extends object>(o: T, p: string | symbol) => {
    const v = Reflect.get(o, p, o)
    return typeof v === 'function' ? v.bind(o) : v
  }
  return new Proxy(t, {
    get(target, prop) {
      if (prop !== 'dial') return bound(target, prop)
      return async (...args: Parameters<Transport['dial']>) => {
        const conn = await target.dial(...args)
        return new Proxy(conn, {
          get(c, p) {
            if (p !== 'send') return bound(c, p)
            return (frame: Uint8Array) => {
              const ok = c.send(frame)
              queueMicrotask(() => events.push('written'))
              return ok
            }
          },
        })
      }
    },
  })
}

class NotingStorage extends MemoryLogStorage {
  constructor(private readonly events: string[]) {
    super()
  }
  override save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    if ((update.entries?.length ?? 0) > 0) this.events.push('save')
    return super.save(update, options)
  }
}

/** Notes when a write of entries in the background starts: a microtask after `save`, as FileLogStorage's does. */
class BackgroundWrites extends MemoryLogStorage {
  constructor(private readonly events: string[]) {
    super()
  }
  override save(update: StorageUpdate, options?: SaveOptions): Promise<void> {
    const first = update.entries?.[0]?.index
    if (first !== undefined && options?.inline !== true)
      queueMicrotask(() => this.events.push(`write ${first}`))
    return super.save(update, options)
  }
}

describe('RaftNode append order', () => {
  it("lets the connections write a leader's appends before its Ready's own write starts", async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 5, clock })
    const ids = ['n1', 'n2', 'n3']
    const events: string[] = []
    const nodes = ids.map(
      (id, i) =>
        new RaftNode({
          id,
          peers: ids,
          transport: i === 0 ? notingWrites(net.transport(id), events) : net.transport(id),
          storage: i === 0 ? new NotingStorage(events) : new MemoryLogStorage(),
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
    for (let k = 0; k < 3; k++) {
      events.length = 0
      const p = nodes[0]!.propose(new Uint8Array([k]))
      await clock.advanceAsync(5)
      await p
      expect(events.slice(0, 3)).toEqual(['written', 'written', 'save'])
    }
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it("starts a follower's background write before it applies the entries the same Ready committed", async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 5, clock })
    const ids = ['n1', 'n2', 'n3']
    const events: string[] = []
    const nodes = ids.map(
      (id, i) =>
        new RaftNode({
          id,
          peers: ids,
          transport: net.transport(id),
          storage: i === 1 ? new BackgroundWrites(events) : new MemoryLogStorage(),
          stateMachine: {
            apply: (_data, index) => {
              if (i === 1) events.push(`apply ${index}`)
            },
            snapshot: () => new Uint8Array(),
            restore: () => {},
          },
          electionTimeoutMs: i === 0 ? [150, 150] : [1000, 1000],
          heartbeatIntervalMs: 50,
          random: rng(i + 1),
        }),
    )
    await Promise.all(nodes.map((n) => n.start()))
    await clock.advanceAsync(400)
    const leader = nodes[0]!
    expect(leader.role).toBe('leader')
    await clock.advanceAsync(20)
    // Bursts of several entries: the follower writes them in the background. The second burst's append carries
    // the commit index of the first (the bare notice waits for a tick), so one Ready of the follower holds the
    // second burst to write and the first to apply.
    const burst = () => Array.from({ length: 5 }, (_, k) => leader.propose(new Uint8Array([k + 1])))
    const firstBurst = burst()
    await clock.advanceAsync(1)
    const first = await Promise.all(firstBurst)
    events.length = 0
    const second = burst()
    await clock.advanceAsync(1)
    const done = await Promise.all(second)
    const written = events.indexOf(`write ${done[0]!.index}`)
    const applied = events.indexOf(`apply ${first[0]!.index}`)
    expect(written).toBeGreaterThanOrEqual(0)
    expect(applied).toBeGreaterThanOrEqual(0)
    expect(written).toBeLessThan(applied)
    await Promise.all(nodes.map((n) => n.stop()))
  })
})
