// Issue #13, item 1: a snapshot over 1 MiB must reach a manager that fell behind the compacted log: one that
// was down, one that joins late, and a leader that was paused while the others went on. One case per test
// file (snapshot-*.test.ts), so that the chaos project's two workers share them out.
import { afterEach, describe, expect, it } from 'vitest'
import { check } from './checker.js'
import { Load } from './load.js'
import { ChaosCluster, until } from './managers.js'
import { compactedPast, MIB, profile, SLOW, seedOf, writeBudgetMs } from './profile.js'

const CASE_MS = SLOW ? 1_800_000 : 240_000

export type SnapshotCase = 'restart' | 'join' | 'pause'

/** Registers case `which`. */
export function snapshotCase(which: SnapshotCase): void {
  describe('catching up from a snapshot over 1 MiB after log compaction', () => {
    let cluster: ChaosCluster | undefined
    let load: Load | undefined
    afterEach(async () => {
      await load?.stop()
      await cluster?.destroy()
      load = undefined
      cluster = undefined
    })

    const begin = async (managers: number, what: string) => {
      cluster = new ChaosCluster({ args: profile.args })
      await cluster.form(managers)
      load = new Load(cluster, {
        writers: profile.writers,
        seed: seedOf(what),
        configBytes: profile.configBytes,
        updateShare: 0.2,
      })
      await load.start()
      return { cluster, load }
    }

    if (which === 'restart')
      it(
        'restarts a manager that was down while the others compacted their log',
        async () => {
          const { cluster, load } = await begin(3, 'restart after compaction')
          const leader = await cluster.waitLeader()
          const down = cluster.managers.find((m) => m !== leader)!
          await down.kill()
          const snap = await compactedPast(() => leader, down.snapshots().at(-1)?.index ?? 0, load)
          console.log(
            `${leader.name} snapshot at ${snap.index}, ${(snap.bytes / MIB).toFixed(1)} MiB; restarting ${down.name}`,
          )
          await down.start()
          await load.stop()
          const report = await check(cluster, load, 120_000)
          expect(report.acknowledgedCreates).toBeGreaterThan(0)
        },
        CASE_MS,
      )

    if (which === 'join')
      it(
        'joins new managers to a cluster whose log was compacted',
        async () => {
          const { cluster, load } = await begin(1, 'join after compaction')
          const snap = await compactedPast(() => cluster.managers[0], 0, load)
          console.log(`m1 snapshot at ${snap.index}, ${(snap.bytes / MIB).toFixed(1)} MiB; joining m2 and m3`)
          await cluster.join(120_000)
          await cluster.join(120_000)
          await cluster.waitConverged('three managers', 120_000)
          await load.stop()
          const report = await check(cluster, load, 120_000)
          expect(report.managers).toBe(3)
        },
        CASE_MS,
      )

    if (which === 'pause')
      it(
        'brings a paused leader back: it catches up and stops calling itself leader',
        async () => {
          const { cluster, load } = await begin(3, 'paused leader')
          const old = await cluster.waitLeader()
          old.pause()
          const next = await until(
            'a new leader',
            async () => {
              const l = await cluster.leader()
              return l && l !== old ? l : undefined
            },
            60_000,
            () => cluster.explain(),
          )
          const snap = await compactedPast(() => next, old.snapshots().at(-1)?.index ?? 0, load)
          console.log(
            `${next.name} leads, snapshot at ${snap.index}, ${(snap.bytes / MIB).toFixed(1)} MiB; resuming ${old.name}`,
          )
          old.resume()
          await load.stop()
          const report = await check(cluster, load, 120_000)
          expect(report.managers).toBe(3)
          // Once back, the old leader must name the new one (not itself) and serve what the others serve.
          await until(
            `${old.name} to stop calling itself leader`,
            async () => {
              const r = await old.request('GET', '/nodes', undefined, 5000)
              const l = r.json?.find?.((n: any) => n.ManagerStatus?.Leader)
              return l && l.Description.Hostname !== old.name
            },
            writeBudgetMs(0),
            () => cluster.explain(),
          )
        },
        CASE_MS,
      )
  })
}
