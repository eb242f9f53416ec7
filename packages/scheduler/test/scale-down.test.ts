// Which slots a scale-down removes (swarm's order), and that choosing them costs a bounded number of lookups
// per slot: the comparator of a sort that looked each slot's tasks up again cost a 60,000-slot service
// hundreds of milliseconds of a manager's event loop in every pass of a scale-down (issue #18).
import type { Task } from '@swarmkit/store'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { slotsToRemove } from '../src/internal/scale-down.js'
import { task } from './fixtures.js'

/** The order as the orchestrator chose it before (sorts with comparators over the slots' tasks). */
function reference(live: Set<number>, active: Map<number, Task[]>, replicas: number): number[] {
  const slots = [...live].sort((a, b) => a - b)
  const running = (s: number) => (active.get(s) ?? []).some((t) => t.status.state === 'running')
  slots.sort((a, b) => Number(running(b)) - Number(running(a)))
  const perNode = new Map<string, number>()
  const ranked = slots.map((slot) => {
    const list = active.get(slot) ?? []
    const only = list.length === 1 ? list[0] : undefined
    if (!only?.nodeId) return { slot, index: Number.POSITIVE_INFINITY }
    const n = (perNode.get(only.nodeId) ?? 0) + 1
    perNode.set(only.nodeId, n)
    return { slot, index: n }
  })
  ranked.sort((a, b) => a.index - b.index)
  return ranked.slice(replicas).map((r) => r.slot)
}

const slotTask = (slot: number, nodeId: string, running: boolean, k = 0): Task =>
  task(`t${slot}-${k}`, 'svc', {
    slot,
    nodeId,
    status: { timestamp: 0, state: running ? 'running' : 'assigned', message: '' },
  })

describe('slotsToRemove', () => {
  it('removes what swarm removes: idle slots, then the busiest nodes first', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            slot: fc.integer({ min: 1, max: 60 }),
            node: fc.constantFrom('', 'a', 'b', 'c'),
            running: fc.boolean(),
            tasks: fc.integer({ min: 0, max: 2 }),
          }),
          { maxLength: 40 },
        ),
        fc.integer({ min: 0, max: 40 }),
        (rows, replicas) => {
          const live = new Set<number>()
          const active = new Map<number, Task[]>()
          for (const r of rows) {
            live.add(r.slot)
            if (!active.has(r.slot))
              active.set(
                r.slot,
                Array.from({ length: r.tasks }, (_, k) => slotTask(r.slot, r.node, r.running, k)),
              )
          }
          expect(slotsToRemove(live, active, replicas)).toEqual(reference(live, active, replicas))
        },
      ),
      { seed: 18, numRuns: 500 },
    )
  })

  it('looks each slot up a bounded number of times, however many slots', () => {
    const n = 20_000
    const live = new Set<number>()
    const tasks = new Map<number, Task[]>()
    for (let s = 1; s <= n; s++) {
      live.add(s)
      tasks.set(s, [slotTask(s, `node${s % 100}`, s % 7 !== 0)])
    }
    let lookups = 0
    const active = new Map(tasks)
    active.get = (k: number) => {
      lookups++
      return tasks.get(k)
    }
    const removed = slotsToRemove(live, active, n - n / 5)
    expect(removed).toHaveLength(n / 5)
    expect(lookups).toBeLessThanOrEqual(2 * n)
  })
})
