import { afterEach, describe, expect, it } from 'vitest'
import { serviceSpec, taskSpec } from './fixtures.js'
import { countBy, type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

describe('replicated orchestrator', () => {
  it('runs slots 1..N spread over the nodes', async () => {
    h = await harness()
    await h.addNodes(3)
    const s = await h.service(serviceSpec('web', { mode: { replicated: { replicas: 6 } } }))
    await h.settle()
    const running = h.running(s.id)
    expect(running.map((t) => t.slot).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
    expect([...countBy(running, (t) => t.nodeId).values()]).toEqual([2, 2, 2])
  })
})
