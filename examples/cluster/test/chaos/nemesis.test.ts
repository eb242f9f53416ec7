// The chaos run on loopback: three manager processes under concurrent creates and updates while the nemesis
// kills the leader (SIGKILL), kills a follower, kills two of three, and pauses the leader (SIGSTOP/SIGCONT).
// Then every acknowledged write must be on every manager, the managers must converge, and every service must
// have exactly one running task per slot. The longest time without an acknowledged write is printed.
import { afterAll, expect, it } from 'vitest'
import { check } from './checker.js'
import { Load } from './load.js'
import { ChaosCluster } from './managers.js'
import { runNemesis } from './nemesis.js'
import { profile, SLOW, seedOf } from './profile.js'

const cluster = new ChaosCluster({ args: profile.args })
const load = { current: undefined as Load | undefined }
afterAll(async () => {
  await load.current?.stop()
  await cluster.destroy()
})

it(
  'loses no acknowledged write through leader kills, pauses and the loss of two of three managers',
  async () => {
    const seed = seedOf('nemesis on loopback')
    await cluster.form(3)
    const l = new Load(cluster, { writers: profile.writers, seed, configBytes: 256, updateShare: 0.3 })
    load.current = l
    await l.start()
    const records = await runNemesis(cluster, l, {
      seed,
      steps: profile.nemesisSteps,
      faults: ['kill-leader', 'pause-leader', 'kill-two', 'kill-follower'],
      log: (line) => console.log(line),
    })
    await l.stop()
    const report = await check(cluster, l)
    const gap = l.longestGap()
    console.log(
      `chaos (seed ${seed}): ${JSON.stringify(report)}; longest window without an acknowledged write ${gap.ms} ms`,
    )
    expect(records.length).toBe(profile.nemesisSteps)
    expect(report.acknowledgedCreates).toBeGreaterThan(0)
  },
  SLOW ? 3_600_000 : 300_000,
)
