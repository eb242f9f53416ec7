// A real-time RaftNode cluster over MemoryNetwork for lab-style tests: real timers, seeded faults.
import { MemoryNetwork } from '@swarmkit/transport'
import { MemoryLogStorage, RaftNode, type RaftNodeOptions, type StateMachine } from '../../src/index.js'
import { rng } from './cores.js'

const dec = new TextDecoder()
export const enc = (s: string) => new TextEncoder().encode(s)

export class LiveMember {
  node: RaftNode | null = null
  readonly storage = new MemoryLogStorage()
  /** Commands applied since the last start, in order, with their index. */
  applied: { index: number; cmd: string }[] = []
  constructor(readonly id: string) {}
}

export async function until(cond: () => boolean, ms = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export class LiveCluster {
  readonly net: MemoryNetwork
  readonly ids: string[]
  readonly members: LiveMember[]
  private readonly random: () => number

  constructor(
    n: number,
    seed: number,
    readonly extra: Partial<RaftNodeOptions> = {},
    /** Wraps each member's state machine (e.g. scopedStateMachine). */
    readonly wrap: (sm: StateMachine) => StateMachine = (sm) => sm,
  ) {
    this.net = new MemoryNetwork({ seed })
    this.random = rng(seed)
    this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`)
    this.members = this.ids.map((id) => new LiveMember(id))
  }

  async start(m: LiveMember): Promise<void> {
    m.applied = []
    const applied = m.applied
    const node = new RaftNode({
      id: m.id,
      peers: this.ids,
      transport: this.net.transport(m.id),
      storage: m.storage,
      stateMachine: this.wrap({
        apply: (cmd, index) => {
          applied.push({ index, cmd: dec.decode(cmd) })
          return index
        },
        snapshot: () => new Uint8Array(0),
        restore: () => {},
      }),
      electionTimeoutMs: [100, 200],
      heartbeatIntervalMs: 20,
      random: rng(Math.floor(this.random() * 2 ** 31)),
      ...this.extra,
    })
    m.node = node
    await node.start()
  }

  async startAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.start(m)))
  }

  async crash(m: LiveMember): Promise<void> {
    const node = m.node
    if (!node) return
    m.node = null
    const t = this.net.transport(m.id)
    await node.stop()
    await t.close()
  }

  async stopAll(): Promise<void> {
    for (const m of this.members) await this.crash(m)
  }

  member(id: string): LiveMember {
    return this.members.find((m) => m.id === id)!
  }

  /** The leader of the highest term among running members (there may be stale ones). */
  leader(among: readonly LiveMember[] = this.members): LiveMember | undefined {
    let best: LiveMember | undefined
    for (const m of among) {
      if (m.node?.role === 'leader' && (!best || m.node.term > best.node!.term)) best = m
    }
    return best
  }

  async waitLeader(among: readonly LiveMember[] = this.members, ms = 15_000): Promise<LiveMember> {
    let l: LiveMember | undefined
    await until(
      () => {
        l = this.leader(among)
        // Stable: everyone in the group agrees on it.
        return l !== undefined && among.every((m) => !m.node || m.node.leaderId === l!.id)
      },
      ms,
      'a leader',
    )
    return l!
  }

  /** Leaders per term seen so far must be unique: call often. */
  checkOneLeaderPerTerm(seen: Map<number, string>): void {
    for (const m of this.members) {
      const n = m.node
      if (n?.role !== 'leader') continue
      const prev = seen.get(n.term)
      if (prev !== undefined && prev !== m.id)
        throw new Error(`two leaders in term ${n.term}: ${prev}, ${m.id}`)
      seen.set(n.term, m.id)
    }
  }

  /** Proposes through whichever member leads (retrying on refusal) until `cmd` commits. */
  async commit(cmd: string, ms = 15_000): Promise<number> {
    const end = Date.now() + ms
    for (;;) {
      const l = this.leader()
      if (l?.node) {
        try {
          return (await l.node.propose(enc(cmd))).index
        } catch {
          // refused or lost: try again
        }
      }
      if (Date.now() > end) throw new Error(`could not commit ${cmd}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** How many running members applied `cmd` at the same index, and that index. */
  applied(cmd: string): { count: number; index: number } {
    let count = 0
    let index = -1
    for (const m of this.members) {
      if (!m.node) continue
      const e = m.applied.find((a) => a.cmd === cmd)
      if (!e) continue
      if (index !== -1 && e.index !== index) throw new Error(`${cmd} applied at ${index} and at ${e.index}`)
      index = e.index
      count++
    }
    return { count, index }
  }

  /** Every running member applied the same sequence (one a prefix of the other). */
  checkAgreement(): void {
    const logs = this.members.filter((m) => m.node).map((m) => m.applied)
    for (const a of logs) {
      for (const b of logs) {
        const n = Math.min(a.length, b.length)
        for (let i = 0; i < n; i++) {
          if (a[i]!.cmd !== b[i]!.cmd || a[i]!.index !== b[i]!.index) {
            throw new Error(
              `applied logs differ at position ${i}: ${a[i]!.cmd}@${a[i]!.index} vs ${b[i]!.cmd}@${b[i]!.index}`,
            )
          }
        }
      }
    }
  }

  messagesSent(): number {
    let n = 0
    for (const s of Object.values(this.net.stats())) n += s.messagesSent
    return n
  }
}
