// The configuration comes from the log: a member that restarts runs with the latest configuration entry in its
// log at once, not with its bootstrap peers until its (possibly slow) state machine reaches the entry.
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { MemoryLogStorage, RaftNode, type StateMachine } from '../src/index.js'
import { rng } from './helpers/cores.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

interface Member {
  readonly id: string
  readonly storage: MemoryLogStorage
  node: RaftNode | null
  /** What the state machine applied since the last start: `index:command`. */
  applied: string[]
}

describe('RaftNode configuration after a restart', () => {
  it('elects one leader per term after a restart when the first member applies slowly and nothing was snapshotted', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 11, clock })
    const members: Member[] = ['n1', 'n2', 'n3'].map((id) => ({
      id,
      storage: new MemoryLogStorage(),
      node: null,
      applied: [],
    }))
    const [m1, m2, m3] = members as [Member, Member, Member]
    /** Index of the first configuration entry: commands before it apply slowly on n1 after the restart. */
    let firstConf = Number.POSITIVE_INFINITY
    let slow = false

    const start = async (m: Member): Promise<RaftNode> => {
      m.applied = []
      const sm: StateMachine = {
        apply: (cmd, index) => {
          m.applied.push(`${index}:${dec(cmd)}`)
          if (slow && m === m1 && index < firstConf)
            return new Promise((resolve) => clock.setTimeout(() => resolve(index), 2000))
          return index
        },
        snapshot: () => new Uint8Array(0),
        restore: () => {},
      }
      const node = new RaftNode({
        id: m.id,
        // As `swarm init` and `swarm join` do: the first member alone, joiners knowing only it.
        peers: ['n1'],
        transport: net.transport(m.id),
        storage: m.storage,
        stateMachine: sm,
        snapshotThreshold: 0,
        // n1 times out first after the restart, while it is still applying the first command.
        electionTimeoutMs: m === m1 ? [150, 160] : [400, 450],
        random: rng(m.id.charCodeAt(1) * 7919),
      })
      m.node = node
      await node.start()
      return node
    }
    const advanceUntil = async (cond: () => boolean, what: string, ms = 30_000) => {
      for (let t = 0; !cond(); t += 10) {
        if (t > ms) throw new Error(`timed out waiting for ${what}`)
        await clock.advanceAsync(10)
      }
    }
    const settle = async <T>(p: Promise<T>): Promise<T> => {
      let done = false
      const q = p.finally(() => {
        done = true
      })
      q.catch(() => {})
      await advanceUntil(() => done, 'a proposal')
      return q
    }

    const n1 = await start(m1)
    await advanceUntil(() => n1.role === 'leader', 'n1 to lead alone')
    await settle(n1.propose(enc('a')))
    await start(m2)
    await start(m3)
    await settle(n1.addMember('n2', { learner: false }))
    await settle(n1.addMember('n3', { learner: false }))
    for (const c of ['b', 'c', 'd']) await settle(n1.propose(enc(c)))
    await advanceUntil(
      () => members.every((m) => m.node!.appliedIndex === n1.commitIndex),
      'every member to apply everything',
    )
    const confIndexes = (await m1.storage.load()).entries.filter((e) => e.type === 1).map((e) => e.index)
    expect(confIndexes.length).toBeGreaterThan(0)
    firstConf = confIndexes[0]!
    for (const m of members) {
      await m.node!.stop()
      await net.transport(m.id).close()
    }

    // Restart all three; n1 needs 2 s to apply the command before the configuration entries.
    slow = true
    for (const m of members) await start(m)
    const leaders = new Map<number, string>()
    const check = () => {
      for (const m of members) {
        const n = m.node!
        if (n.role !== 'leader') continue
        const other = leaders.get(n.term)
        if (other !== undefined && other !== m.id)
          throw new Error(`two leaders in term ${n.term}: ${other} and ${m.id}`)
        leaders.set(n.term, m.id)
      }
    }
    for (let t = 0; t < 6000; t += 10) {
      await clock.advanceAsync(10)
      check()
    }
    // Every member applies the same commands at the same indexes, including what is proposed now.
    const leader = members.find((m) => m.node!.role === 'leader')!
    const { index } = await settle(leader.node!.propose(enc('e')))
    await advanceUntil(() => members.every((m) => m.node!.appliedIndex >= index), 'the new command')
    check()
    for (const m of [m2, m3]) expect(m.applied).toEqual(m1.applied)
    expect(m1.applied.at(-1)).toBe(`${index}:e`)
    for (const m of members) await m.node!.stop()
  })
})
