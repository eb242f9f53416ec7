import { MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { isRaftError, MemoryLogStorage, RaftNode, type RaftNodeOptions } from '../src/index.js'
import { coreOf } from '../src/internal/inspect.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

function kv() {
  const data = new Map<string, string>()
  return {
    data,
    apply(cmd: Uint8Array) {
      const [k, v] = dec(cmd).split('=')
      data.set(k!, v!)
      return v
    },
    snapshot: () => enc(JSON.stringify([...data])),
    restore(s: Uint8Array) {
      data.clear()
      for (const [k, v] of JSON.parse(dec(s))) data.set(k, v)
    },
  }
}

async function until(cond: () => boolean, ms = 15_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

class Cluster {
  readonly net = new MemoryNetwork({ seed: 3 })
  readonly nodes = new Map<string, RaftNode>()
  readonly storages = new Map<string, MemoryLogStorage>()
  readonly sms = new Map<string, ReturnType<typeof kv>>()
  constructor(readonly extra: Partial<RaftNodeOptions> = {}) {}

  async start(id: string, peers: string[], more: Partial<RaftNodeOptions> = {}): Promise<RaftNode> {
    if (!this.storages.has(id)) this.storages.set(id, new MemoryLogStorage())
    if (!this.sms.has(id)) this.sms.set(id, kv())
    const node = new RaftNode({
      id,
      peers,
      transport: this.net.transport(id),
      storage: this.storages.get(id)!,
      stateMachine: this.sms.get(id)!,
      electionTimeoutMs: [60, 120],
      heartbeatIntervalMs: 15,
      ...this.extra,
      ...more,
    })
    this.nodes.set(id, node)
    await node.start()
    return node
  }

  leader(): RaftNode | undefined {
    return [...this.nodes.values()].find((n) => n.role === 'leader')
  }

  async waitLeader(among?: string[]): Promise<RaftNode> {
    await until(() => {
      const l = this.leader()
      return l !== undefined && (!among || among.includes(l.id))
    })
    return this.leader()!
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.stop()))
  }
}

describe('RaftNode membership', () => {
  it('grows from 3 to 5 voters through learners and shrinks back to 3', async () => {
    const c = new Cluster({ snapshotThreshold: 30, trailingEntries: 5 })
    const boot = ['n1', 'n2', 'n3']
    for (const id of boot) await c.start(id, boot)
    let leader = await c.waitLeader()
    for (let i = 0; i < 60; i++) await leader.propose(enc(`k${i % 9}=${i}`))

    // n4 joins as a learner and is promoted by hand; n5 is promoted automatically once caught up.
    await c.start('n4', boot)
    await leader.addMember('n4')
    expect(leader.members()).toEqual({ voters: boot, learners: ['n4'] })
    await until(() => c.nodes.get('n4')!.role === 'learner')
    await leader.promote('n4')
    await c.start('n5', boot)
    await leader.addMember('n5', { learner: false })
    expect(leader.members().voters.sort()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5'])
    for (let i = 0; i < 40; i++) await leader.propose(enc(`after${i % 5}=${i}`))
    await until(() => [...c.nodes.values()].every((n) => n.appliedIndex >= leader.commitIndex))
    const want = c.sms.get(leader.id)!.data
    for (const id of ['n4', 'n5']) expect(c.sms.get(id)!.data).toEqual(want)
    await until(() => c.nodes.get('n5')!.members().voters.length === 5)

    // Shrink back: remove two of the original voters (maybe the leader itself).
    for (const id of ['n1', 'n2']) {
      leader = await c.waitLeader()
      // A leader counts a voter reachable once it has heard from it: one just elected (n1 may have led and
      // stepped down) refuses the removal as unsafe until the voters left are a majority it has heard from.
      const l = leader
      await until(() => {
        const core = coreOf.get(l)!()!
        const left = core.confState().voters.filter((v) => v !== id)
        return core.reachableVoters().filter((v) => v !== id).length >= (left.length >> 1) + 1
      })
      await leader.removeMember(id)
    }
    leader = await c.waitLeader(['n3', 'n4', 'n5'])
    expect(leader.members().voters.sort()).toEqual(['n3', 'n4', 'n5'])
    const { index } = await leader.propose(enc('final=1'))
    await until(() => ['n3', 'n4', 'n5'].every((id) => c.nodes.get(id)!.appliedIndex >= index))
    // Removed IDs never return.
    await expect(leader.addMember('n1')).rejects.toThrow(/never return/)
    await c.stopAll()
  })

  it('refuses to remove a voter when the reachable voters left would not be a majority', async () => {
    const c = new Cluster()
    const boot = ['n1', 'n2', 'n3']
    for (const id of boot) await c.start(id, boot)
    const leader = await c.waitLeader()
    await leader.propose(enc('a=1'))
    const [other, cut] = boot.filter((id) => id !== leader.id)
    c.net.isolate(cut!)
    // Wait until the leader no longer counts the isolated voter as reachable.
    await until(() => !coreOf.get(leader)!()!.reachableVoters().includes(cut!))
    const err = await leader.removeMember(other!).catch((e) => e)
    expect(isRaftError(err, 'UNSAFE_CHANGE')).toBe(true)
    expect(leader.members().voters).toEqual(boot)
    c.net.heal()
    await c.stopAll()
  })

  it('a leader that removes itself steps down and the others go on', async () => {
    const c = new Cluster()
    const boot = ['n1', 'n2', 'n3']
    for (const id of boot) await c.start(id, boot)
    const leader = await c.waitLeader()
    await leader.propose(enc('a=1'))
    await leader.removeMember(leader.id)
    const rest = boot.filter((id) => id !== leader.id)
    const next = await c.waitLeader(rest)
    expect(leader.role).not.toBe('leader')
    const { index } = await next.propose(enc('b=2'))
    await until(() => rest.every((id) => c.nodes.get(id)!.appliedIndex >= index))
    expect(next.members().voters.sort()).toEqual(rest)
    await c.stopAll()
  })

  it('forceNewCluster restarts one member alone with all applied state', async () => {
    const c = new Cluster({ snapshotThreshold: 20, trailingEntries: 3 })
    const boot = ['n1', 'n2', 'n3']
    for (const id of boot) await c.start(id, boot)
    const leader = await c.waitLeader()
    for (let i = 0; i < 50; i++) await leader.propose(enc(`k${i}=${i}`))
    await until(() => [...c.nodes.values()].every((n) => n.appliedIndex >= leader.commitIndex))
    await c.stopAll()
    const survivor = boot.find((id) => id !== leader.id)!
    c.sms.get(survivor)!.data.clear()
    const alone = await c.start(survivor, boot, { forceNewCluster: true })
    await until(() => alone.role === 'leader')
    expect(alone.members()).toEqual({ voters: [survivor], learners: [] })
    expect(c.sms.get(survivor)!.data.size).toBe(50)
    await alone.propose(enc('alone=yes'))
    expect(c.sms.get(survivor)!.data.get('alone')).toBe('yes')
    await alone.stop()
  })

  it('forceNewCluster also works when committed membership changes are in the log (a member that joined)', async () => {
    const c = new Cluster()
    await c.start('n1', ['n1'])
    const first = await c.waitLeader()
    await c.start('n2', ['n1'])
    await first.addMember('n2', { learner: false })
    for (let i = 0; i < 5; i++) await first.propose(enc(`k${i}=${i}`))
    const n2 = c.nodes.get('n2')!
    await until(() => n2.appliedIndex >= first.commitIndex)
    expect(first.members().voters.sort()).toEqual(['n1', 'n2'])
    await c.stopAll()
    // n1 is lost; n2 restarts alone from a log whose committed configuration still names n1 a voter.
    c.sms.get('n2')!.data.clear()
    const alone = await c.start('n2', ['n1'], { forceNewCluster: true })
    await until(() => alone.role === 'leader')
    expect(alone.members()).toEqual({ voters: ['n2'], learners: [] })
    expect(c.sms.get('n2')!.data.size).toBe(5)
    await alone.propose(enc('alone=yes'))
    await alone.stop()
    // And it stays a one-member cluster across a plain restart.
    const again = await c.start('n2', ['n1'])
    await until(() => again.role === 'leader')
    expect(again.members().voters).toEqual(['n2'])
    await again.stop()
  })
})
