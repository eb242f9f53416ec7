import { createOrchestrator } from '@swarmkit/scheduler'
import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { scopedStore } from '../src/leader-scope.js'
import { waitFor } from './helpers.js'

describe('scopedStore', () => {
  it("keeps the store's spec limits: the orchestrator scales a service past the default 10,000 tasks", async () => {
    const store = new ClusterStore({ limits: { maxReplicas: 20_000 } })
    await store.update((tx) =>
      tx.create('services', {
        id: 'svc',
        spec: {
          name: 'big',
          labels: {},
          taskTemplate: { containerSpec: { image: 'busybox' } },
          mode: { replicated: { replicas: 10_500 } },
        },
        specVersion: { index: 1 },
      }),
    )
    const orchestrator = createOrchestrator({ store: scopedStore(store, 1) })
    const errors: Error[] = []
    orchestrator.on('error', (e: Error) => errors.push(e))
    orchestrator.start()
    try {
      await waitFor(
        () => store.view((tx) => tx.find('tasks', { serviceId: 'svc' }).length) === 10_500,
        '10,500 tasks',
        60_000,
      )
    } finally {
      await orchestrator.stop()
    }
    expect(errors).toEqual([])
  }, 90_000)
})
