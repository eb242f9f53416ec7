// A slot holding two live tasks (e.g. a deposed leader's stale write that committed) is reconciled to one, as
// swarmkit's orchestrator does: the current, running one stays, the others are shut down.
import { generateId, type Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { serviceSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

describe('duplicate tasks in a slot', () => {
  it('keeps one running task per slot and shuts the others down', async () => {
    h = await harness()
    await h.addNodes(2)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 3 } } }))
    await h.settle()
    const [victim] = h.running(s.id)
    // What a stale leader's orchestrator wrote: a second running task for a slot that already has one.
    await h.store.update((tx) => {
      const { meta: _meta, ...rest } = tx.get('tasks', victim!.id) as Task
      tx.create('tasks', { ...rest, id: generateId() } as unknown as Task)
    })
    await h.settle()
    const running = h.running(s.id)
    expect(running).toHaveLength(3)
    expect(new Set(running.map((t) => t.slot)).size).toBe(3)
    const inSlot = h.tasks(s.id).filter((t) => t.slot === victim!.slot)
    expect(inSlot.filter((t) => t.desiredState === 'running')).toHaveLength(1)
  })
})
