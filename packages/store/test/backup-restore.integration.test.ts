import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage, RaftNode } from '@swarmkit/raft'
import { MemoryNetwork } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import { backupStateDir, ClusterStore, KeyManager } from '../src/index.js'
import { network, secret } from './fixtures.js'

// Swarm's backup and restore: back up a manager's state directory, lose every manager, restore one from the
// backup with --force-new-cluster, find the network and the secret again, then grow back to three managers.

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

interface Manager {
  id: string
  keys: KeyManager
  storage: FileLogStorage
  store: ClusterStore
  node: RaftNode
}

async function startManager(
  net: MemoryNetwork,
  dir: string,
  id: string,
  peers: string[],
  options: { unlockKey?: string; forceNewCluster?: boolean } = {},
): Promise<Manager> {
  const keys = await KeyManager.open(
    join(dir, 'certificates', 'swarm-node.keys'),
    options.unlockKey ? { unlockKey: options.unlockKey } : {},
  )
  const storage = await FileLogStorage.open(join(dir, 'raft'), { ...keys.hooks() })
  let node: RaftNode | undefined
  const store = new ClusterStore({ proposer: (cmd, o) => node!.propose(cmd, o) })
  node = new RaftNode({
    id,
    peers,
    transport: net.transport(id),
    storage,
    stateMachine: store,
    forceNewCluster: options.forceNewCluster ?? false,
  })
  await node.start()
  return { id, keys, storage, store, node }
}

async function stop(m: Manager): Promise<void> {
  await m.node.stop()
  await m.storage.close()
  m.keys.close()
}

describe('backup and restore', () => {
  it('restores a wiped cluster from one backup with forceNewCluster and grows back to three', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-restore-'))
    made.push(root)
    const net = new MemoryNetwork({ seed: 11 })
    const ids = ['m1', 'm2', 'm3']
    const managers = await Promise.all(ids.map((id) => startManager(net, join(root, id), id, ids)))
    await until(() => managers.some((m) => m.node.role === 'leader'), 'a leader')
    // m1 is locked too: its backup stays locked under the key in force when it was taken.
    const unlockKey = await managers[0]!.keys.enableAutolock()
    await managers[0]!.store.update((tx) => {
      tx.create('networks', network('net1', 'Unimatrix-01'))
      tx.create('secrets', secret('sec1', 'missing_drones', 'Seven of Nine'))
    })
    await until(() => managers.every((m) => m.store.view((tx) => tx.get('secrets', 'sec1'))), 'replication')
    for (const m of managers) await stop(m)

    // Back up m1 (stopped, as swarm requires), then lose every manager.
    await backupStateDir(join(root, 'm1'), join(root, 'backup'))
    for (const id of ids) rmSync(join(root, id), { recursive: true, force: true })

    // Restore the backup onto a new manager's state directory and start it as a one-member cluster.
    const restored = join(root, 'm1')
    await backupStateDir(join(root, 'backup'), restored)
    await expect(KeyManager.open(join(restored, 'certificates', 'swarm-node.keys'))).resolves.toMatchObject({
      locked: true,
    })
    const net2 = new MemoryNetwork({ seed: 12 })
    const m1 = await startManager(net2, restored, 'm1', ['m1'], { unlockKey, forceNewCluster: true })
    await until(() => m1.node.role === 'leader', 'the restored manager to lead')
    expect(m1.node.members()).toEqual({ voters: ['m1'], learners: [] })
    expect(m1.store.view((tx) => tx.lookup('networks', 'Unimatrix-01').id)).toBe('net1')
    const data = m1.store.view((tx) => tx.lookup('secrets', 'missing_drones').spec.data)
    expect(new TextDecoder().decode(data)).toBe('Seven of Nine')
    await m1.store.update((tx) => tx.create('networks', network('net2', 'after-restore')))

    // Grow back to three: new managers (new IDs) join and catch up.
    const joiners: Manager[] = []
    for (const id of ['m4', 'm5']) {
      // A joiner starts with the existing members as peers (it is not among them, so it never campaigns).
      const m = await startManager(net2, join(root, id), id, m1.node.members().voters)
      joiners.push(m)
      await m1.node.addMember(id, { learner: false })
    }
    await until(() => m1.node.members().voters.length === 3, 'three voters')
    const all = [m1, ...joiners]
    await until(
      () =>
        all.every(
          (m) =>
            m.store.view((tx) => tx.find('networks').length) === 2 && m.store.version === m1.store.version,
        ),
      'the joiners to catch up',
    )
    for (const m of all) {
      expect(m.store.view((tx) => tx.lookup('secrets', 'missing_drones').id)).toBe('sec1')
    }
    // And the grown cluster takes writes from any member.
    await joiners[1]!.store.update((tx) => tx.create('networks', network('net3', 'grown')))
    await until(
      () => all.every((m) => m.store.view((tx) => tx.get('networks', 'net3'))),
      'replication to all three',
    )
    for (const m of all) await stop(m)
  })
})
