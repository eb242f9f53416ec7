// The incremental orchestrator (issue #18): a replicated service's pass looks only at the slots events touched
// since its last pass. A seeded simulation drives random events (task failures and exits, nodes down and up,
// drains, scaling, spec updates, rollbacks) and, whenever the cluster has settled, asks for a full reconcile
// of every service (rewriting each service unchanged makes its next pass walk every slot): that pass must
// find nothing to do, i.e. the incremental passes reached what a full reconcile reaches. Invariants on slots
// are checked too. `SWARMKIT_SEED=<n>` replays one seed; a failure names its seed and step.
import type { Node, ServiceSpec, Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { rollbackService, updateService } from '../src/index.js'
import { SlotIndex } from '../src/internal/slot-index.js'
import { isDesiredUp, isFinished } from '../src/internal/task-state.js'
import { serviceSpec, task, taskSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'
const SEEDS = process.env.SWARMKIT_SEED
  ? [Number(process.env.SWARMKIT_SEED)]
  : Array.from({ length: SLOW ? 40 : 6 }, (_, i) => 1000 + i)
const STEPS = SLOW ? 80 : 40
const MODE = (process.env.ORCH_MODE as 'full' | undefined) ?? 'incremental'

/** mulberry32: the simulation's own choices, replayable from the seed. */
function prng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)] as (typeof xs)[number],
  }
}

type Rng = ReturnType<typeof prng>

function updateConfigOf(rng: Rng): ServiceSpec['updateConfig'] {
  return {
    parallelism: rng.int(4),
    order: rng.pick(['stop-first', 'start-first'] as const),
    failureAction: rng.pick(['pause', 'continue', 'rollback'] as const),
    monitor: rng.pick([0, 1e9, 5e9]),
    delay: rng.pick([0, 0, 2e8]),
  }
}

function specOf(i: number, replicas: number, rng: Rng, force = 0): ServiceSpec {
  const update = updateConfigOf(rng)
  return serviceSpec(`svc${i}`, {
    mode: { replicated: { replicas } },
    updateConfig: update,
    rollbackConfig: update,
    taskTemplate: taskSpec({
      forceUpdate: force,
      // a short restart delay, so that restarts wait on timers within a step
      restartPolicy: { condition: rng.pick(['any', 'any', 'on-failure'] as const), delay: 3e8 },
    }),
  })
}

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

/** What changed between two views of the tasks (for a failure's message). */
function diff(before: Task[], after: Task[]): string[] {
  const old = new Map(before.map((t) => [t.id, t]))
  const out: string[] = []
  for (const t of after) {
    const o = old.get(t.id)
    if (!o) out.push(`created ${t.serviceId} slot ${t.slot} ${t.desiredState}`)
    else if (o.meta.version !== t.meta.version)
      out.push(`changed ${t.serviceId} slot ${t.slot}: desired ${o.desiredState} -> ${t.desiredState}`)
    old.delete(t.id)
  }
  for (const t of old.values()) out.push(`deleted ${t.serviceId} slot ${t.slot} (${t.status.state})`)
  return out
}

/** Every service rewritten unchanged: each one's next pass walks every slot. It must change nothing. */
async function fullReconcileChangesNothing(hh: Harness, ids: string[], where: string): Promise<void> {
  const before = hh.tasks()
  const services = ids.map((id) => hh.getService(id))
  await hh.store.update((tx) => {
    for (const s of services) {
      const cur = tx.get('services', s.id)
      if (cur) tx.update('services', cur)
    }
  })
  const version = hh.store.version
  await hh.settle()
  const after = hh.tasks()
  const changed = hh.store.version !== version ? diff(before, after) : []
  const statuses = ids.map((id) => hh.getService(id).updateStatus?.state ?? '-')
  expect({ where, changed }, `update states now ${statuses.join(', ')}`).toEqual({ where, changed: [] })
  expect(hh.store.version, `${where}: a full reconcile wrote to the store`).toBe(version)
}

/**
 * Slots of each replicated service: never two tasks running in one slot; once no update is in progress, every
 * slot held by at most one task that should be up, and N slots held (a slot whose task ended and is not to be
 * restarted still counts, as in swarm; slot numbers need not be 1..N after a scale-down).
 */
function checkSlots(hh: Harness, ids: string[], where: string): void {
  for (const id of ids) {
    const svc = hh.getService(id)
    const mode = svc.spec.mode
    if (!('replicated' in mode)) continue
    const replicas = mode.replicated.replicas
    const bySlot = new Map<number, Task[]>()
    for (const t of hh.tasks(id)) {
      if (t.desiredState === 'remove') continue
      let l = bySlot.get(t.slot)
      if (!l) bySlot.set(t.slot, (l = []))
      l.push(t)
    }
    let held = 0
    let stoppedForGood = 0
    const stable = !['updating', 'rollback_started'].includes(svc.updateStatus?.state ?? '')
    for (const [slot, list] of bySlot) {
      const running = list.filter((t) => isDesiredUp(t) && t.status.state === 'running')
      expect(running.length, `${where}: ${id} slot ${slot} runs at most one task`).toBeLessThanOrEqual(1)
      const up = list.filter((t) => isDesiredUp(t) && !isFinished(t))
      if (stable) expect(up.length, `${where}: ${id} slot ${slot} held at most once`).toBeLessThanOrEqual(1)
      if (up.length > 0) held++
      else if (list.some((t) => isFinished(t))) stoppedForGood++
    }
    if (stable) {
      expect(held, `${where}: ${id} holds at most ${replicas} slots`).toBeLessThanOrEqual(replicas)
      expect(held + stoppedForGood, `${where}: ${id} holds ${replicas} slots`).toBeGreaterThanOrEqual(
        replicas,
      )
    }
  }
}

async function simulate(seed: number): Promise<void> {
  const rng = prng(seed)
  // Small commit sizes fill the passes' plans, so that slots are left for the next pass.
  h = await harness({ seed, reconcile: MODE, commitSize: rng.pick([1, 2, 5, 200]) })
  const hh = h
  const nodes = await hh.addNodes(5)
  const ids: string[] = []
  const force = new Map<string, number>()
  for (let i = 0; i < 3; i++) {
    const s = await hh.service(specOf(i, 1 + rng.int(10), rng))
    ids.push(s.id)
    force.set(s.id, 0)
  }
  await hh.advance(1000)
  await fullReconcileChangesNothing(hh, ids, `seed ${seed} start`)
  for (let step = 0; step < STEPS; step++) {
    const where = `seed ${seed} step ${step}`
    const id = rng.pick(ids)
    const action = rng.pick([
      'fail',
      'fail',
      'failMany',
      'exit',
      'nodeDown',
      'nodeUp',
      'drain',
      'activate',
      'scale',
      'update',
      'update',
      'rollback',
      'addNode',
      'allDown',
    ] as const)
    const running = hh.running(id)
    switch (action) {
      case 'fail':
      case 'exit': {
        const t = running.length ? rng.pick(running) : undefined
        if (t) await hh.exec.exit(t.id, action === 'fail' ? 'failed' : 'complete')
        break
      }
      case 'failMany':
        for (const t of running.filter(() => rng.int(2) === 0)) await hh.exec.exit(t.id, 'failed')
        break
      case 'nodeDown':
      case 'nodeUp':
        await hh.setNode(rng.pick(nodes), (n: Node) => ({
          ...n,
          status: { ...n.status, state: action === 'nodeDown' ? 'down' : 'ready' },
        }))
        break
      case 'drain':
      case 'activate':
        await hh.setNode(rng.pick(nodes), (n: Node) => ({
          ...n,
          spec: { ...n.spec, availability: action === 'drain' ? 'drain' : 'active' },
        }))
        break
      case 'scale':
      case 'update': {
        const cur = hh.getService(id)
        const f = (force.get(id) ?? 0) + (action === 'update' ? 1 : 0)
        force.set(id, f)
        const replicas =
          action === 'scale'
            ? rng.int(14)
            : 'replicated' in cur.spec.mode
              ? cur.spec.mode.replicated.replicas
              : 1
        const next = specOf(Number(cur.spec.name.slice(3)), replicas, rng, f)
        await updateService(hh.store, id, action === 'scale' ? { ...cur.spec, mode: next.mode } : next)
        break
      }
      case 'rollback':
        await rollbackService(hh.store, id).catch(() => {})
        break
      case 'allDown':
        // (tasks then wait unplaced; the nodeUp steps bring the nodes back one by one)
        for (const n of nodes)
          await hh.setNode(n, (x: Node) => ({ ...x, status: { ...x.status, state: 'down' } }))
        break
      case 'addNode':
        nodes.push(...(await hh.addNodes(1)))
        break
    }
    // Sometimes check in the middle of things (restart delays, update delays, monitor windows pending).
    await hh.advance(rng.pick([0, 100, 400, 1500, 6000]))
    checkSlots(hh, ids, where)
    await fullReconcileChangesNothing(hh, ids, where)
  }
}

describe('incremental orchestrator', () => {
  for (const seed of SEEDS)
    it(`reaches what a full reconcile reaches, after every step of random events (seed ${seed})`, async () => {
      await simulate(seed)
    }, 120_000)
})

describe('incremental rolling update', () => {
  it('completes when tasks it created are removed before they ever ran (a scale-down while no node is up)', async () => {
    h = await harness({ seed: 7 })
    const hh = h
    const nodes = await hh.addNodes(3)
    const s = await hh.service(
      serviceSpec('web', {
        mode: { replicated: { replicas: 6 } },
        updateConfig: { parallelism: 0, monitor: 1e9 },
      }),
    )
    await hh.advance(1000)
    expect(hh.running(s.id)).toHaveLength(6)
    const setAll = async (state: 'down' | 'ready') => {
      for (const n of nodes) await hh.setNode(n, (x: Node) => ({ ...x, status: { ...x.status, state } }))
    }
    await setAll('down')
    await hh.advance(1000)
    const cur = hh.getService(s.id)
    await updateService(hh.store, s.id, {
      ...cur.spec,
      taskTemplate: { ...cur.spec.taskTemplate, forceUpdate: 1 },
    })
    await hh.advance(1000)
    expect(hh.getService(s.id).updateStatus?.state).toBe('updating')
    // Scaling keeps the spec version (no new update) and removes four slots whose new tasks never ran.
    const scaled = hh.getService(s.id)
    await updateService(hh.store, s.id, { ...scaled.spec, mode: { replicated: { replicas: 2 } } })
    await hh.advance(1000)
    await setAll('ready')
    await hh.advance(5000)
    const running = hh.running(s.id)
    expect(running).toHaveLength(2)
    expect(running.every((t) => t.spec.forceUpdate === 1)).toBe(true)
    expect(hh.getService(s.id).updateStatus?.state).toBe('completed')
    await fullReconcileChangesNothing(hh, [s.id], 'after the update')
  }, 60_000)
})

describe('SlotIndex', () => {
  it('moves the lowest free slot down when a slot below it stops holding a replica', () => {
    const slots = new SlotIndex()
    const s = slots.service('svc')
    for (const n of [1, 2, 3, 4]) s.live.add(n)
    s.freeFrom = 5
    s.unlive(3)
    expect(s.freeFrom).toBe(3)
    s.unlive(4)
    expect(s.freeFrom).toBe(3)
  })

  it('keeps tasks by slot, touches the slots of dropped tasks, and forgets empty slots', () => {
    const slots = new SlotIndex()
    const a = task('a', 'svc', { slot: 1 })
    const b = task('b', 'svc', { slot: 1 })
    slots.put(a, undefined)
    slots.put(b, undefined)
    expect([...(slots.get('svc')?.slots.get(1)?.keys() ?? [])]).toEqual(['a', 'b'])
    slots.drop(a)
    slots.drop(b)
    expect(slots.get('svc')?.slots.has(1)).toBe(false)
    expect([...(slots.get('svc')?.dirty ?? [])]).toEqual([1])
  })
})
