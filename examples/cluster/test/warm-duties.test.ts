// A manager keeps its scheduler and orchestrator warm when it is not the leader (manager/warm-duties.ts), and
// a leader that steps down puts its pair back in standby instead of loading a fresh one: deposed by a stall
// and elected again at once, it leads again without reading every task (at 300,000 tasks a fresh pair made
// its first passes 10-17 s after that election, issue #18).
import { createService } from '@swarmkit/scheduler'
import { ClusterStore, type ServiceSpec } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { WarmDuties } from '../src/manager/warm-duties.js'
import { waitFor } from './helpers.js'
import { readyWorker } from './node-fixtures.js'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

const web = (replicas: number): ServiceSpec => ({
  name: 'web',
  labels: {},
  taskTemplate: { containerSpec: { image: 'nginx:alpine' } },
  mode: { replicated: { replicas } },
})

/** A store with two workers and warm duties over it that count the views they read (a load reads one). */
async function setup() {
  const store = new ClusterStore()
  await store.update((tx) => {
    tx.create('nodes', readyWorker('w1'))
    tx.create('nodes', readyWorker('w2'))
  })
  let views = 0
  const counted = new Proxy(store, {
    get(target, key) {
      if (key === 'view')
        return (fn: Parameters<ClusterStore['view']>[0]) => {
          views++
          return target.view(fn)
        }
      const v = Reflect.get(target, key, target)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  const lines: string[] = []
  const duties = new WarmDuties(counted, (l) => lines.push(l))
  closers.push(() => duties.close())
  const assigned = (serviceId: string) =>
    store.view((tx) => tx.find('tasks', { serviceId }).filter((t) => t.status.state === 'assigned').length)
  return { store, duties, lines, views: () => views, assigned }
}

describe('warm duties', () => {
  it('a leader that steps down stands by with the same pair, and leads again without loading the store', async () => {
    const { store, duties, lines, views, assigned } = await setup()
    duties.standby()
    const first = duties.activate(1)
    const s = await createService(store, web(2))
    await waitFor(() => assigned(s.id) === 2, 'both tasks assigned')

    await duties.stepDown()
    expect(duties.acting).toBeUndefined()
    expect(first.scheduler.standby).toBe(true)
    expect(first.orchestrator.standby).toBe(true)
    // Standing by, it follows the store: a scale-up waits for the next leader.
    const scaled = store.view((tx) => tx.get('services', s.id))!
    await store.update((tx) => tx.update('services', { ...scaled, spec: web(4) }))

    const loaded = views()
    const again = duties.activate(3)
    expect(again).toBe(first)
    await waitFor(() => assigned(s.id) === 4, 'the scale-up assigned by the pair leading again')
    expect(views()).toBe(loaded)
    expect(lines).toEqual([])
  })

  it('a leadership that comes while the step-down is still in progress gets a fresh pair', async () => {
    const { store, duties, assigned } = await setup()
    duties.standby()
    const first = duties.activate(1)
    const stepping = duties.stepDown()
    const next = duties.activate(2)
    expect(next).not.toBe(first)
    await stepping
    await duties.steppedDown()
    const s = await createService(store, web(3))
    await waitFor(() => assigned(s.id) === 3, 'the fresh pair assigned the tasks')
    expect(next.scheduler.standby).toBe(false)
  })
})
