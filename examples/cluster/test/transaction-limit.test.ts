// One transaction, one raft entry: the store refuses a command over its limit (1.5 MiB, swarm's) with a clear
// error, so raft must take every command the store lets through. Raft's own proposal limit defaulted to
// 1 MiB, so a transaction between the two passed the store's check and then failed in raft.
import { StoreError } from '@swarmkit/store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, initSwarm } from './helpers.js'

const config = (name: string, bytes: number) => ({
  id: `cfg${name}`.padEnd(25, '0'),
  spec: { name, labels: {}, data: new Uint8Array(bytes).fill(0x61) },
})

describe('the largest transaction', () => {
  let n: ClusterNode | undefined
  beforeAll(async () => {
    n = await initSwarm('txlimit')
  }, 60_000)
  afterAll(() => closeNodes(n))

  it('commits a transaction the store accepts, however close to its limit', async () => {
    const store = n!.daemon.manager!.store
    // Three configs of 450 KiB: 1.3 MiB in one command, under the store's 1.5 MiB.
    await store.update((tx) => {
      for (const name of ['big-a', 'big-b', 'big-c']) tx.create('configs', config(name, 450 * 1024))
    })
    expect(store.view((tx) => tx.find('configs').length)).toBe(3)
  })

  it('refuses a larger one with a clear error, and nothing of it is written', async () => {
    const store = n!.daemon.manager!.store
    const err = await store
      .update((tx) => {
        for (const name of ['big-d', 'big-e', 'big-f', 'big-g'])
          tx.create('configs', config(name, 450 * 1024))
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('INVALID_ARGUMENT')
    expect((err as Error).message).toMatch(/transaction too large/)
    expect(store.view((tx) => tx.find('configs').length)).toBe(3)
  })
})
