// Chaos cases whose fix has not landed: they fail today, so they run only with SWARMKIT_CHAOS_PENDING=1.
// Move a case into the suite once its fix is merged and it passes.
import { afterEach, describe, it } from 'vitest'
import { fullDisk, missing } from './enospc.js'
import { ChaosCluster } from './managers.js'
import { seedOf } from './profile.js'
import { pausedLeaderScaling } from './stale-leader.js'

const pending = process.env.SWARMKIT_CHAOS_PENDING === '1'

describe.runIf(pending)('pending chaos cases (SWARMKIT_CHAOS_PENDING=1)', () => {
  let cluster: ChaosCluster | undefined
  afterEach(async () => {
    await cluster?.destroy()
    cluster = undefined
  })

  // Found by this suite: after a leader pause, two running tasks for one slot on every manager, for minutes
  // (also on main before issue 13's fixes). The resumed leader acts on its stale view, and nothing removes
  // the extra task.
  it('a paused leader that comes back leaves exactly one running task per slot', async () => {
    cluster = new ChaosCluster()
    await pausedLeaderScaling(cluster, seedOf('stale leader'), 4)
  }, 600_000)

  // Today a failed log write stops the raft node for good: the manager answers "the raft node is stopped"
  // (without saying why, when the failed write was the manager's own) until it is restarted.
  it.skipIf(missing !== undefined)(
    'a manager whose disk was full takes writes again once space returns, without a restart',
    () => fullDisk(false),
    180_000,
  )
})
