// The two profiles of the chaos suite. The short one (in `npm test`) makes managers snapshot every 500 raft
// entries and writes 8 KiB configs, so that a snapshot of several MiB (over the 1 MiB chunk and buffer sizes
// that issue #13's transfer bug needed) and a compacted log come within seconds. The long one
// (SWARMKIT_SLOW=1) keeps swarm's default interval of 10,000 entries and writes ~11,000 smaller objects.
import type { Load } from './load.js'
import type { ManagerProcess } from './managers.js'
import { until } from './managers.js'

export const SLOW = process.env.SWARMKIT_SLOW === '1'

export const profile = SLOW
  ? { args: [] as string[], interval: 10_000, configBytes: 512, writers: 12, nemesisSteps: 24 }
  : { args: ['--snapshot-interval', '500'], interval: 500, configBytes: 8192, writers: 8, nemesisSteps: 4 }

/** Time allowed for the load to write `entries` raft entries on this shared 2-core machine (generous). */
export function writeBudgetMs(entries: number): number {
  return 60_000 + entries * 60
}

/** The seed of this run: CHAOS_SEED replays one. Printed so that a failing run can be replayed. */
export function seedOf(what: string): number {
  const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31)
  console.log(`${what}: seed ${seed} (CHAOS_SEED=${seed} replays the schedule)`)
  return seed
}

export const MIB = 1024 * 1024

/**
 * Waits until `m` took a snapshot at least two intervals past `after` (so its log is compacted past any entry
 * a manager that stopped at `after` has), over 1 MiB. Returns the snapshot.
 */
export async function compactedPast(
  m: () => ManagerProcess | undefined,
  after: number,
  load: Load,
): Promise<{ index: number; bytes: number }> {
  return until(
    `a snapshot over 1 MiB past raft index ${after + 2 * profile.interval}`,
    () => {
      const s = m()?.snapshots().at(-1)
      return s && s.index >= after + 2 * profile.interval && s.bytes > MIB ? s : undefined
    },
    writeBudgetMs(2 * profile.interval),
    () => `snapshots: ${JSON.stringify(m()?.snapshots())}; ${load.acknowledgedCreates} creates acknowledged`,
  )
}
