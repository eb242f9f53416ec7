// Issue #18's correctness check for a large rolling update, in process: 10,000 slots updated at parallelism 0
// with the paced, multi-transaction passes of a large service, and the orchestrator replaced half way (as a
// new leader's would be, from the store alone). Every slot ends with exactly one running task of the new
// spec, and no slot ever ran two tasks at once (stop-first). SWARMKIT_SLOW=1 only.
import type { Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { createOrchestrator, type Orchestrator, updateService } from '../src/index.js'
import { serviceSpec } from './fixtures.js'
import { type Harness, harness, seeded } from './harness.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'
const R = 10_000

let h: Harness | undefined
let second: Orchestrator | undefined
afterEach(async () => {
  await second?.stop()
  second = undefined
  await h?.stop()
  h = undefined
})

describe.skipIf(!SLOW)('a rolling update of 10,000 slots', () => {
  it('replaces every slot exactly once, never two running in a slot, with the orchestrator replaced half way', async () => {
    h = await harness({ seed: 18 })
    await h.addNodes(50)
    const s = await h.service(serviceSpec('big', { mode: { replicated: { replicas: R } } }))
    // A paced service rests on real timers: settle until the condition holds, not once.
    const until = async (cond: () => boolean, what: string) => {
      for (let i = 0; !cond(); i++) {
        if (i > 2_000) throw new Error(`timed out waiting for ${what}`)
        await h!.settle()
        if (!cond()) await new Promise((r) => setTimeout(r, 20))
      }
    }
    await until(() => h!.running(s.id).length === R, `${R} running`)
    // Tasks running at once per slot, from every committed change.
    const runningIn = new Map<number, Set<string>>()
    let most = 0
    const w = h.store.watch({ table: 'tasks', queueSize: 10_000_000 })
    const drain = (async () => {
      for await (const e of w) {
        if (e.table !== 'tasks') continue
        const t = e.object as Task
        let set = runningIn.get(t.slot)
        if (!set) runningIn.set(t.slot, (set = new Set()))
        if (e.action !== 'delete' && t.status.state === 'running') set.add(t.id)
        else set.delete(t.id)
        most = Math.max(most, set.size)
      }
    })()
    const cur = h.getService(s.id)
    await updateService(h.store, s.id, {
      ...cur.spec,
      taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
      updateConfig: { parallelism: 0, order: 'stop-first' },
    })
    const updated = () => h!.running(s.id).filter((t) => t.spec.forceUpdate === 1).length
    await until(() => updated() >= R / 2, 'half the slots updated')
    // The orchestrator goes away mid-update; another takes over from the store.
    await h.orchestrator.stop()
    second = createOrchestrator({ store: h.store, clock: h.clock, random: seeded(1018) })
    second.on('error', (err) => {
      throw err
    })
    second.start()
    await until(() => updated() === R, 'every slot updated')
    await until(() => h!.running(s.id).length === R, 'only the new tasks running')
    w.close()
    await drain.catch(() => {})
    const running = h.running(s.id)
    expect(running.every((t) => t.spec.forceUpdate === 1)).toBe(true)
    expect(new Set(running.map((t) => t.slot)).size).toBe(R)
    expect(most).toBe(1)
  }, 600_000)
})
