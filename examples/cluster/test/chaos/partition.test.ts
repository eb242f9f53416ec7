// Partitions with real packets: each manager process in its own network namespace, on a bridge this test made
// (in a namespace of its own), and nftables rules inside a manager's namespace that drop its packets to and
// from the others. The namespaces go on every path (afterAll, and at process exit).
import { afterAll, expect, it } from 'vitest'
import { check } from './checker.js'
import { Load } from './load.js'
import { ChaosCluster } from './managers.js'
import { runNemesis } from './nemesis.js'
import { createNetns, type Netns, netnsUnavailable } from './netns.js'
import { profile, SLOW, seedOf } from './profile.js'

const missing = netnsUnavailable()
if (missing && process.env.SWARMKIT_CI === '1')
  throw new Error(`the partition cases need network namespaces in CI: ${missing}`)

let netns: Netns | undefined
let cluster: ChaosCluster | undefined
let load: Load | undefined
afterAll(async () => {
  await load?.stop()
  await cluster?.destroy()
  netns?.destroy()
})

it.skipIf(missing !== undefined)(
  'loses no acknowledged write while the leader is cut off from the others, and heals',
  async () => {
    const seed = seedOf('partitions in namespaces')
    netns = createNetns(3)
    const net = netns
    const c = new ChaosCluster({ netns: net, args: profile.args })
    cluster = c
    await c.form(3)
    load = new Load(c, {
      writers: profile.writers,
      seed,
      configBytes: 256,
      updateShare: 0.3,
      timeoutMs: 5000,
    })
    await load.start()
    const index = (name: string) => c.managers.findIndex((m) => m.name === name)
    const records = await runNemesis(c, load, {
      seed,
      steps: SLOW ? 12 : 2,
      faults: ['partition-leader', 'kill-leader'],
      partition: {
        cut: (m) => {
          const i = index(m.name)
          net.cut(
            i,
            c.managers.map((_, j) => j).filter((j) => j !== i),
          )
        },
        heal: (m) => net.heal(index(m.name)),
      },
      log: (line) => console.log(line),
    })
    await load.stop()
    // A leader cut off and healed must leave exactly one running task per slot (its duties' writes are scoped).
    const report = await check(c, load, 120_000)
    console.log(
      `partitions (seed ${seed}): ${JSON.stringify(report)}; longest window without an acknowledged write ${load.longestGap().ms} ms`,
    )
    expect(records.some((r) => r.fault === 'partition-leader')).toBe(true)
  },
  SLOW ? 1_800_000 : 240_000,
)
