// A paused leader that comes back must not act on its stale state: services are scaled while it is paused,
// then it resumes, and every slot must end with exactly one running task. Found by the chaos suite (two tasks
// for one slot, on every manager, for minutes after a leader pause; issue 13 follow-up).
import { expect } from 'vitest'
import { check } from './checker.js'
import { Load, rng } from './load.js'
import { type ChaosCluster, until } from './managers.js'

export async function pausedLeaderScaling(
  cluster: ChaosCluster,
  seed: number,
  rounds: number,
): Promise<void> {
  const random = rng(seed)
  await cluster.form(3)
  const load = new Load(cluster, { writers: 6, seed, configBytes: 64, updateShare: 0.6, timeoutMs: 5000 })
  await load.start()
  try {
    for (let r = 0; r < rounds; r++) {
      const old = await cluster.waitLeader(120_000)
      old.pause()
      await until(
        'a new leader',
        async () => {
          const l = await cluster.leader()
          return l && l !== old ? l : undefined
        },
        60_000,
      )
      // Scale while the old leader sleeps: its orchestrator's view goes stale.
      const since = Date.now()
      await until(
        'updates acknowledged by the new leader',
        () => {
          const n = load.history.filter((o) => o.kind === 'update' && o.outcome === 'ok' && o.start >= since)
          return n.length >= 6
        },
        60_000,
      )
      await new Promise((res) => setTimeout(res, Math.round(random() * 500)))
      old.resume()
      await cluster.waitConverged('all managers back', 120_000)
    }
  } finally {
    await load.stop()
  }
  const report = await check(cluster, load, 90_000)
  expect(report.managers).toBe(3)
}
