import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { createService, serviceUpdate, updateService } from '../src/index.js'
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

describe('serviceUpdate', () => {
  it('moves the spec version to the commit version only when the task template changes', async () => {
    const store = new ClusterStore()
    const s = await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 1 } } }))
    const stored = () => store.view((tx) => tx.get('services', s.id))!
    const first = stored().specVersion.index
    // Scaling alone keeps the spec version: no rolling update.
    await updateService(store, s.id, { ...s.spec, mode: { replicated: { replicas: 2 } } })
    expect(stored().specVersion.index).toBe(first)
    // A new task template gets the version of the commit that wrote it (the store stamps it), the same
    // whichever writer made the change: here one that composes it inside its own transaction.
    const template = { ...s.spec.taskTemplate, forceUpdate: 1 }
    await store.update((tx) => {
      const cur = tx.get('services', s.id)!
      tx.update('services', serviceUpdate(cur, { ...cur.spec, taskTemplate: template }, Date.now()))
    })
    const now = stored()
    expect(now.specVersion.index).toBe(now.meta.version)
    expect(now.previousSpecVersion?.index).toBe(first)
    expect(now.previousSpec?.mode).toEqual({ replicated: { replicas: 2 } })
  })

  it("refuses to change a service's mode, for every writer", async () => {
    const store = new ClusterStore()
    const s = await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 1 } } }))
    await expect(updateService(store, s.id, { ...s.spec, mode: { global: {} } })).rejects.toMatchObject({
      name: 'SchedulerError',
      code: 'INVALID_SPEC',
      message: 'service mode cannot be changed',
    })
    expect(store.view((tx) => tx.get('services', s.id))!.spec.mode).toEqual({ replicated: { replicas: 1 } })
  })

  it('refuses what is not a service or a spec with a typed error', async () => {
    const store = new ClusterStore()
    const s = await createService(store, serviceSpec('web', { mode: { replicated: { replicas: 1 } } }))
    const cur = store.view((tx) => tx.get('services', s.id))!
    const bad = (f: () => unknown) => expect(f).toThrow(/^(cur|spec|spec\.mode|now): expected/)
    bad(() => serviceUpdate(undefined as never, s.spec, 0))
    bad(() => serviceUpdate(cur, undefined as never, 0))
    bad(() => serviceUpdate(cur, { ...s.spec, mode: undefined as never }, 0))
    bad(() => serviceUpdate(cur, s.spec, Number.NaN))
  })
})
