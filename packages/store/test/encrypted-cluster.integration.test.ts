import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage, RaftNode } from '@swarmkit/raft'
import { MemoryNetwork } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { ClusterStore, KeyManager } from '../src/index.js'
import { network, secret } from './fixtures.js'

// A 3-manager cluster with durable, encrypted raft logs: a secret written through it never reaches any disk in
// plaintext. The same run without encryption finds it, so the scan is known to work.

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

function filesContaining(dir: string, needle: Buffer): string[] {
  const hits: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && readFileSync(join(e.parentPath, e.name)).includes(needle))
      hits.push(join(e.parentPath, e.name))
  }
  return hits
}

async function runCluster(encrypted: boolean, value: string): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'store-cluster-'))
  made.push(root)
  const net = new MemoryNetwork({ seed: 7 })
  const ids = ['m1', 'm2', 'm3']
  const members = await Promise.all(
    ids.map(async (id) => {
      const dir = join(root, id)
      const keys = encrypted ? await KeyManager.open(join(dir, 'certificates', 'swarm-node.keys')) : null
      const storage = await FileLogStorage.open(join(dir, 'raft'), {
        nodeId: id,
        clusterId: 'c1',
        ...keys?.hooks(),
      })
      let node: RaftNode | undefined
      const store = new ClusterStore({ proposer: (cmd, o) => node!.propose(cmd, o) })
      node = new RaftNode({ id, peers: ids, transport: net.transport(id), storage, stateMachine: store })
      return { id, keys, storage, store, node }
    }),
  )
  await Promise.all(members.map((m) => m.node.start()))
  await until(() => members.some((m) => m.node.role === 'leader'), 'a leader')
  const writer = members[1]!.store
  await writer.update((tx) => {
    tx.create('networks', network('net1', 'appnet'))
    tx.create('secrets', secret('sec1', 'db_pass', value))
  })
  await until(
    () => members.every((m) => m.store.view((tx) => tx.get('secrets', 'sec1')) !== undefined),
    'replication',
  )
  for (const m of members) {
    expect(new TextDecoder().decode(m.store.view((tx) => tx.get('secrets', 'sec1'))!.spec.data)).toBe(value)
  }
  for (const m of members) {
    await m.node.stop()
    await m.storage.close()
    m.keys?.close()
  }
  return root
}

describe('secrets at rest', () => {
  it('never reach the disk in plaintext on any of 3 managers', async () => {
    const value = 'Seven of Nine, tertiary adjunct'
    const root = await runCluster(true, value)
    expect(filesContaining(root, Buffer.from(value))).toEqual([])
    expect(filesContaining(root, Buffer.from(value.slice(0, 12)))).toEqual([])
  })

  it('(control) are found by the same scan without encryption', async () => {
    const value = 'Seven of Nine, tertiary adjunct'
    const root = await runCluster(false, value)
    expect(filesContaining(root, Buffer.from(value)).length).toBeGreaterThanOrEqual(3)
  })
})
