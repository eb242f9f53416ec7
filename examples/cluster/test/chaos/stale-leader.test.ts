// Found by this suite: after a leader pause, two running tasks for one slot on every manager, for minutes.
// The resumed leader's duties acted on their stale view and their writes were forwarded to the new leader;
// now they are scoped to their term (leader-scope.ts) and the orchestrator keeps one task per slot.
import { afterEach, it } from 'vitest'
import { ChaosCluster } from './managers.js'
import { seedOf } from './profile.js'
import { pausedLeaderScaling } from './stale-leader.js'

let cluster: ChaosCluster | undefined
afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

it('a paused leader that comes back leaves exactly one running task per slot', async () => {
  cluster = new ChaosCluster()
  await pausedLeaderScaling(cluster, seedOf('stale leader'), 4)
}, 600_000)
