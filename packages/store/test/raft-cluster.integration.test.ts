import { MemoryLogStorage, RaftNode } from '@swarmkit/raft'
import { ManualClock, MemoryNetwork } from '@swarmkit/transport'
import { describe, expect, it } from 'vitest'
import { ClusterStore } from '../src/index.js'
import { network, secret, service } from './fixtures.js'

// The replicated store on a real 3-node raft cluster over MemoryNetwork, with partitions, isolation, message
// loss and delay, member restarts from storage, and writers on every member. Seeded: a failing seed replays exactly.

const SLOW = process.env.SWARMKIT_SLOW === '1'

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 2 ** 32
  }
}

interface Member {
  id: string
  store: ClusterStore
  node: RaftNode
}

async function cluster(seed: number, n = 3) {
  const clock = new ManualClock({ startMs: 1_700_000_000_000 })
  const net = new MemoryNetwork({ seed, clock })
  const ids = Array.from({ length: n }, (_, i) => `m${i + 1}`)
  const r = rng(seed)
  const counts = { snapshots: 0, restores: 0, restarts: 0 }
  const storages = new Map(ids.map((id) => [id, new MemoryLogStorage()]))
  // A member: a fresh store (state comes back from the snapshot and log) on the member's durable storage.
  const member = (id: string): Member => {
    let node: RaftNode | undefined
    const store = new ClusterStore({
      proposer: (cmd, opts) => node!.propose(cmd, opts),
      clock: () => clock.now(),
      random: (k) => Uint8Array.from({ length: k }, () => Math.floor(r() * 256)),
    })
    node = new RaftNode({
      id,
      peers: ids,
      transport: net.transport(id),
      storage: storages.get(id)!,
      stateMachine: {
        apply: (cmd, index) => store.apply(cmd, index),
        // As the managers wire it (store.stateMachine()): snapshots and restores in time slices.
        snapshot: () => {
          counts.snapshots++
          return store.snapshotAsync()
        },
        restore: (data) => {
          counts.restores++
          return store.restoreAsync(data)
        },
      },
      clock,
      random: r,
      electionTimeoutMs: [150, 300],
      heartbeatIntervalMs: 50,
      // Small, so that snapshots, compaction and snapshot transfers to lagging members happen.
      snapshotThreshold: 20,
      trailingEntries: 5,
    })
    return { id, store, node }
  }
  const members = ids.map(member)
  await Promise.all(members.map((m) => m.node.start()))
  /** Stops member `i` (its in-flight transactions settle as failed or unknown) and starts it again from storage. */
  const restart = async (i: number) => {
    const old = members[i]!
    await old.node.stop()
    old.store.close()
    const m = member(old.id)
    members[i] = m
    counts.restarts++
    await m.node.start()
  }
  return { clock, net, members, r, counts, restart }
}

const dump = (s: ClusterStore) =>
  JSON.stringify(
    s.view((tx) =>
      (['networks', 'secrets', 'services'] as const).map((t) =>
        tx.find(t).sort((a, b) => (a.id < b.id ? -1 : 1)),
      ),
    ),
  )

describe('ClusterStore replicated through RaftNode', () => {
  for (const seed of SLOW ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] : [1, 4, 5]) {
    it(`agrees on every member after faults (seed ${seed})`, async () => {
      const { clock, net, members, r, counts, restart } = await cluster(seed)
      await clock.advanceAsync(1000)
      // A watcher on one member mirrors what it sees; at the end the mirror must equal that member's state,
      // snapshot installs included.
      const watched = members[2]!.store
      const mirror = new Map<string, number>()
      const watch = watched.watch({ queueSize: 1_000_000 })
      const mirroring = (async () => {
        for await (const e of watch) {
          if (e.action === 'delete') mirror.delete(`${e.table}/${e.object.id}`)
          else mirror.set(`${e.table}/${e.object.id}`, e.object.meta.version)
        }
      })()
      const outcomes = new Map<string, Promise<string>>()
      const settle = (p: Promise<unknown>) =>
        p.then(
          () => 'OK',
          (err) => (err as { code?: string }).code ?? String(err),
        )
      const steps = SLOW ? 400 : 120
      for (let step = 0; step < steps; step++) {
        const x = r()
        const m = members[Math.floor(r() * members.length)]!
        if (x < 0.5) {
          const id = `x${step}`
          outcomes.set(id, settle(m.store.update((tx) => tx.create('secrets', secret(id, `s${step % 60}`)))))
        } else if (x < 0.6) {
          const id = `n${step}`
          outcomes.set(id, settle(m.store.update((tx) => tx.create('networks', network(id, `net${step}`)))))
        } else if (x < 0.7) {
          // Update the first secret this member sees, possibly racing others.
          void settle(
            m.store.update((tx) => {
              const s = tx.find('secrets')[0]
              if (s) tx.update('secrets', { ...s, spec: { ...s.spec, labels: { step: String(step) } } })
            }),
          )
        } else if (x < 0.75) {
          void settle(
            m.store.update((tx) => {
              const nets = tx.find('networks')
              if (nets[0])
                tx.create('services', service(`svc${step}`, `web${step}`, { networks: [nets[0].id] }))
            }),
          )
        } else if (x < 0.8) {
          void settle(
            m.store.update((tx) => {
              const nets = tx.find('networks')
              if (nets.length) tx.delete('networks', nets[Math.floor(r() * nets.length)]!.id)
            }),
          )
        } else if (x < 0.82) await restart(Math.floor(r() * 2))
        else if (x < 0.85) net.isolate(m.id)
        else if (x < 0.9) net.partition([members[0]!.id], [members[1]!.id, members[2]!.id])
        else if (x < 0.95) net.heal()
        else net.setFaults({ dropRate: r() * 0.2, delayMs: [0, Math.floor(r() * 30)] })
        await clock.advanceAsync(Math.floor(r() * 40))
      }
      net.heal()
      net.setFaults(null)
      const results = new Map<string, string>()
      for (let i = 0; i < 200 && results.size < outcomes.size; i++) {
        await clock.advanceAsync(100)
        for (const [id, p] of outcomes) {
          if (!results.has(id)) {
            const v = await Promise.race([p, Promise.resolve('PENDING')])
            if (v !== 'PENDING') results.set(id, v)
          }
        }
      }
      expect(results.size).toBe(outcomes.size)
      // Converged: every member applied the same log.
      for (let i = 0; i < 100; i++) {
        const v = members.map((m) => m.store.version)
        if (v.every((x) => x === v[0])) break
        await clock.advanceAsync(100)
      }
      const versions = members.map((m) => m.store.version)
      expect(new Set(versions).size, `versions ${versions}`).toBe(1)
      const states = members.map((m) => dump(m.store))
      expect(states[1]).toBe(states[0])
      expect(states[2]).toBe(states[0])
      const present = new Set(
        members[0]!.store.view((tx) => [...tx.find('secrets'), ...tx.find('networks')].map((o) => o.id)),
      )
      let ok = 0
      for (const [id, outcome] of results) {
        if (outcome === 'OK') {
          ok++
          if (id.startsWith('x')) expect(present.has(id), `${id} committed`).toBe(true)
        }
        // PROPOSAL_FAILED: fenced off or refused; CLOSED: the member restarted before it was proposed.
        if (outcome === 'PROPOSAL_FAILED' || outcome === 'CLOSED') {
          expect(present.has(id), `${id} ${outcome} yet present`).toBe(false)
        }
      }
      expect(ok).toBeGreaterThan(0)
      expect(counts.snapshots).toBeGreaterThan(0)
      while (watch.pending > 0) await new Promise((r) => setImmediate(r))
      watch.close()
      await mirroring
      const actual = new Map(
        watched.view((tx) =>
          (['networks', 'secrets', 'services'] as const).flatMap((t) =>
            tx.find(t).map((o) => [`${t}/${o.id}`, o.meta.version] as const),
          ),
        ),
      )
      expect(new Map([...mirror].sort())).toEqual(new Map([...actual].sort()))
      await Promise.all(members.map((m) => m.node.stop()))
    })
  }
})
