/**
 * @packageDocumentation
 * The compliance suite for the store the scheduler and orchestrators run on (`SchedulerStore`: `view`,
 * `update`, `watch`). A local `ClusterStore` passes it, and so must a replicated one (over raft) or any other
 * store a user brings:
 *
 * ```ts
 * import { ClusterStore } from '@swarmkit/store'
 * import { schedulerStoreCompliance } from '@swarmkit/scheduler/testing'
 * schedulerStoreCompliance('local ClusterStore', () => ({ store: new ClusterStore() }))
 * ```
 *
 * It needs vitest (an optional peer dependency).
 */
import { isStoreError, type NewObject, type Node, type StoreEvent } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import type { SchedulerStore } from '../store.js'

/** A store to test, and how to release it. */
export interface SchedulerStoreFixture {
  readonly store: SchedulerStore
  close?(): void | Promise<void>
}

function node(id: string): NewObject<Node> {
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: {
      hostname: id,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCPUs: 4e9, memoryBytes: 8 * 2 ** 30 },
      engine: { engineVersion: '28.2.2', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr: '127.0.0.1' },
  }
}

async function take(watch: AsyncIterator<StoreEvent>, n: number, timeoutMs = 20_000): Promise<StoreEvent[]> {
  const out: StoreEvent[] = []
  const deadline = Date.now() + timeoutMs
  while (out.length < n) {
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`timed out waiting for ${n} watch events (got ${out.length})`)
    let timer: ReturnType<typeof setTimeout> | undefined
    const next = await Promise.race([
      watch.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} watch events`)), left)
      }),
    ]).finally(() => clearTimeout(timer))
    if (next.done) throw new Error('watch ended early')
    out.push(next.value)
  }
  return out
}

/** Registers the `SchedulerStore` contract cases under `describe(name)` for the store `factory` makes. */
export function schedulerStoreCompliance(
  name: string,
  factory: () => SchedulerStoreFixture | Promise<SchedulerStoreFixture>,
): void {
  if (typeof name !== 'string') throw new TypeError('name must be a string')
  if (typeof factory !== 'function') throw new TypeError('factory must be a function')

  describe(`${name}: SchedulerStore compliance`, () => {
    const open: SchedulerStoreFixture[] = []
    afterEach(async () => {
      for (const f of open.splice(0)) await f.close?.()
    })
    async function fresh(): Promise<SchedulerStore> {
      const f = await factory()
      open.push(f)
      return f.store
    }

    it('commits an update atomically and shows it to later views at a higher version', async () => {
      const store = await fresh()
      const before = store.view((tx) => tx.version)
      await store.update((tx) => {
        tx.create('nodes', node('n1'))
        tx.create('nodes', node('n2'))
      })
      const after = store.view((tx) => ({
        version: tx.version,
        ids: tx
          .find('nodes')
          .map((n) => n.id)
          .sort(),
      }))
      expect(after.ids).toEqual(['n1', 'n2'])
      expect(after.version).toBeGreaterThan(before)
    })

    it('changes nothing when the update callback throws, and rejects with its error', async () => {
      const store = await fresh()
      const boom = new Error('boom')
      await expect(
        store.update((tx) => {
          tx.create('nodes', node('n1'))
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(store.view((tx) => tx.get('nodes', 'n1'))).toBeUndefined()
    })

    it('refuses a write of an object at a stale version (SEQUENCE)', async () => {
      const store = await fresh()
      await store.update((tx) => tx.create('nodes', node('n1')))
      const stale = store.view((tx) => tx.get('nodes', 'n1')!)
      await store.update((tx) =>
        tx.update('nodes', { ...stale, spec: { ...stale.spec, labels: { a: '1' } } }),
      )
      const err = await store
        .update((tx) => tx.update('nodes', { ...stale, spec: { ...stale.spec, labels: { b: '2' } } }))
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(isStoreError(err, 'SEQUENCE')).toBe(true)
      expect(store.view((tx) => tx.get('nodes', 'n1')!.spec.labels)).toEqual({ a: '1' })
    })

    it("delivers a transaction's changes together, in order, under the version it committed at", async () => {
      const store = await fresh()
      const watch = store.watch({ table: 'nodes' })
      try {
        await store.update((tx) => {
          tx.create('nodes', node('n1'))
          tx.create('nodes', node('n2'))
        })
        const events = await take(watch, 2)
        expect(events.map((e) => [e.action, e.object.id])).toEqual([
          ['create', 'n1'],
          ['create', 'n2'],
        ])
        expect(events[0]!.version).toBe(events[1]!.version)
        expect(events[0]!.version).toBe(store.view((tx) => tx.version))
      } finally {
        watch.close()
      }
    })

    it('resumes a watch from a version: the changes after it first, then live ones', async () => {
      const store = await fresh()
      await store.update((tx) => tx.create('nodes', node('n1')))
      const from = store.view((tx) => tx.version)
      await store.update((tx) => tx.create('nodes', node('n2')))
      await store.update((tx) => tx.delete('nodes', 'n1'))
      const watch = store.watch({ table: 'nodes', fromVersion: from })
      try {
        const replayed = await take(watch, 2)
        expect(replayed.map((e) => [e.action, e.object.id])).toEqual([
          ['create', 'n2'],
          ['delete', 'n1'],
        ])
        await store.update((tx) => tx.create('nodes', node('n3')))
        const live = await take(watch, 1)
        expect([live[0]!.action, live[0]!.object.id]).toEqual(['create', 'n3'])
        expect(live[0]!.version).toBeGreaterThan(replayed[1]!.version)
      } finally {
        watch.close()
      }
    })
  })
}
