import { clusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import {
  createOrchestrator,
  createScheduler,
  createService,
  createTestExecutor,
  isSchedulerError,
} from '../src/index.js'

// The README's example, run as written.
describe('README example', () => {
  it('spreads 6 replicas evenly over two zones and refuses a bad constraint', async () => {
    const store = clusterStore()
    await store.update((tx) => {
      for (const [i, zone] of ['east', 'west', 'west'].entries()) {
        tx.create('nodes', {
          id: `node${i}`,
          spec: { labels: { zone }, role: 'worker', availability: 'active' },
          role: 'worker',
          description: {
            hostname: `host${i}`,
            platform: { os: 'linux', architecture: 'x86_64' },
            resources: { nanoCPUs: 4e9, memoryBytes: 8 * 2 ** 30 },
            engine: { engineVersion: '28.2.2', labels: {}, plugins: [] },
          },
          status: { state: 'ready', addr: `10.0.0.${i + 1}` },
        })
      }
    })
    const scheduler = createScheduler({ store })
    const orchestrator = createOrchestrator({ store })
    const workers = createTestExecutor({ store })
    scheduler.start()
    orchestrator.start()
    workers.start()
    const web = await createService(store, {
      name: 'web',
      labels: {},
      mode: { replicated: { replicas: 6 } },
      taskTemplate: {
        containerSpec: { image: 'nginx:alpine' },
        placement: {
          constraints: ['node.role==worker'],
          preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }],
        },
      },
    })
    for await (const _ of store.watch({ table: 'tasks' })) {
      const running = store.view((tx) =>
        tx.find('tasks', { serviceId: web.id }, (t) => t.status.state === 'running'),
      )
      if (running.length === 6) break
    }
    const running = store.view((tx) => tx.find('tasks', { serviceId: web.id }))
    expect(running.filter((t) => t.nodeId === 'node0')).toHaveLength(3)
    await Promise.all([workers.stop(), orchestrator.stop(), scheduler.stop()])
    const bad = await createService(store, {
      name: 'bad',
      labels: {},
      mode: { replicated: { replicas: 1 } },
      taskTemplate: { containerSpec: { image: 'x' }, placement: { constraints: ['node.labels.zone=east'] } },
    }).catch((e: unknown) => e)
    expect(isSchedulerError(bad, 'INVALID_CONSTRAINT')).toBe(true)
    expect((bad as Error).message).toBe('constraint expected one operator from ==, !=')
  })
})
