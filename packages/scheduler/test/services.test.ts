import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { createService, updateService } from '../src/index.js'
import { serviceSpec } from './fixtures.js'

describe('updateService', () => {
  it('refuses a version the service has moved past, as "update out of sequence"', async () => {
    const store = new ClusterStore()
    const s = await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 1 } } }))
    // Objects returned from inside a transaction carry the pre-commit meta; read the stored one, as the API does.
    const stored = () => store.view((tx) => tx.get('services', s.id))!
    const read = stored().meta.version
    await updateService(store, s.id, { ...s.spec, mode: { replicated: { replicas: 2 } } }, { version: read })
    expect(stored().meta.version).toBeGreaterThan(read)
    // A second writer still holding the first read loses; the service keeps the first writer's spec.
    await expect(
      updateService(store, s.id, { ...s.spec, mode: { replicated: { replicas: 7 } } }, { version: read }),
    ).rejects.toMatchObject({ name: 'StoreError', code: 'SEQUENCE', message: 'update out of sequence' })
    const now = stored()
    expect(now.spec.mode).toEqual({ replicated: { replicas: 2 } })
    // With the current version it goes through.
    const again = await updateService(
      store,
      s.id,
      { ...s.spec, mode: { replicated: { replicas: 3 } } },
      { version: now.meta.version },
    )
    expect(again.spec.mode).toEqual({ replicated: { replicas: 3 } })
  })

  it('rejects a malformed version', async () => {
    const store = new ClusterStore()
    const s = await createService(store, serviceSpec('web'))
    await expect(updateService(store, s.id, s.spec, { version: -1 })).rejects.toThrow(TypeError)
  })
})
