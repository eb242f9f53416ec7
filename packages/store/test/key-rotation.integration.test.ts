import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage, RaftNode } from '@swarmkit/raft'
import { MemoryNetwork } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { ClusterStore, KeyManager } from '../src/index.js'
import { secret } from './fixtures.js'

// Data key rotation on a live manager: new entries under the new DEK, a snapshot taken under it, the old DEK
// retired; the manager restarts from disk with only the new key and every object intact.

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function start(dir: string) {
  const keys = await KeyManager.open(join(dir, 'swarm-node.keys'))
  const storage = await FileLogStorage.open(join(dir, 'raft'), { segmentBytes: 64 * 1024, ...keys.hooks() })
  let node: RaftNode | undefined
  const store = new ClusterStore({ proposer: (cmd, o) => node!.propose(cmd, o) })
  node = new RaftNode({
    id: 'm1',
    peers: ['m1'],
    transport: new MemoryNetwork({ seed: 1 }).transport('m1'),
    storage,
    stateMachine: store,
    snapshotThreshold: 10,
    trailingEntries: 2,
  })
  await node.start()
  await until(() => node!.role === 'leader', 'leadership')
  return { keys, storage, store, node }
}

describe('data key rotation', () => {
  it('retires the old DEK behind a snapshot taken under the new one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-rotate-'))
    made.push(dir)
    let m = await start(dir)
    for (let i = 0; i < 15; i++)
      await m.store.update((tx) => tx.create('secrets', secret(`old${i}`, `old${i}`)))
    const rotatedAt = m.node.commitIndex
    await m.keys.rotateDataKey()
    expect(m.keys.hasPreviousKeys).toBe(true)
    for (let i = 0; i < 25; i++)
      await m.store.update((tx) => tx.create('secrets', secret(`new${i}`, `new${i}`)))
    // Wait for a snapshot (sealed under the new DEK) that covers everything written under the old one.
    let covered = 0
    await until(async () => {
      covered = (await m.storage.snapshot())?.meta.index ?? 0
      return covered > rotatedAt
    }, 'a snapshot past the rotation')
    await m.keys.retirePreviousKeys(covered)
    expect(m.keys.hasPreviousKeys).toBe(false)
    await m.store.update((tx) => tx.create('secrets', secret('after', 'after')))
    const version = m.store.version
    await m.node.stop()
    await m.storage.close()
    m.keys.close()

    m = await start(dir)
    expect(m.keys.hasPreviousKeys).toBe(false)
    await until(() => m.store.version >= version, 'replay')
    const names = m.store.view((tx) => tx.find('secrets').map((s) => s.spec.name))
    expect(names.length).toBe(41)
    expect(names).toContain('old0')
    expect(names).toContain('after')
    await m.node.stop()
    await m.storage.close()
    m.keys.close()
  })
})
