// Chaos cases whose fix has not landed: they fail today, so they run only with SWARMKIT_CHAOS_PENDING=1.
// Move a case into the suite once its fix is merged and it passes.
import { describe, it } from 'vitest'
import { fullDisk, missing } from './enospc.js'

const pending = process.env.SWARMKIT_CHAOS_PENDING === '1'

describe.runIf(pending)('pending chaos cases (SWARMKIT_CHAOS_PENDING=1)', () => {
  // Today a failed log write stops the raft node for good: the manager answers "the raft node is stopped"
  // (without saying why, when the failed write was the manager's own) until it is restarted.
  it.skipIf(missing !== undefined)(
    'a manager whose disk was full takes writes again once space returns, without a restart',
    () => fullDisk(false),
    180_000,
  )
})
