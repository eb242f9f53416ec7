import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { followStore } from '../src/store-follow.js'
import { waitFor } from './helpers.js'

const secret = (id: string) => ({ id, spec: { name: id, labels: {}, data: new Uint8Array([1]) } })

describe('followStore', () => {
  it('follows again after the store dropped a watch that fell behind', async () => {
    const store = new ClusterStore({ watchQueueSize: 2 })
    const seen: string[] = []
    const lines: string[] = []
    const stop = new AbortController()
    const done = followStore(
      store,
      { table: 'secrets' },
      (e) => seen.push(e.object.id),
      stop.signal,
      (l) => lines.push(l),
    )
    // Five changes in one commit overflow a queue of two: the watch is dropped.
    await store.update((tx) => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) tx.create('secrets', secret(id))
    })
    await waitFor(() => lines.some((l) => l.includes('dropped')), 'the drop reported')
    await store.update((tx) => tx.create('secrets', secret('later')))
    await waitFor(() => seen.includes('later'), 'a later change followed')
    expect(store.view((tx) => tx.find('secrets').length)).toBe(6)
    stop.abort()
    await done
  })
})
