// A join storm is a few raft entries, not one per node: the joins' node objects are committed together,
// and each join still gets its own answer (a refused join its own error, the others their certificates).
import * as pki from '@swarmkit/pki'
import type { RaftNode } from '@swarmkit/raft'
import { ClusterStore, type Node } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { createCluster } from '../src/manager/bootstrap.js'
import { ClusterCA } from '../src/manager/ca.js'
import { joinCommits } from '../src/manager/join-commits.js'
import { answerJoin, type JoinContext } from '../src/manager/joins.js'
import type { ManagerOptions } from '../src/manager/options.js'

const clusterId = pki.generateClusterId()

/** A store holding a cluster as `docker swarm init` leaves it, and the join context of its manager. */
async function cluster() {
  const ca = pki.createRootCA()
  const joinTokens = pki.generateJoinTokens(ca.pem)
  const boot = pki
    .caServer({ ca, joinTokens, clusterId })
    .join(pki.createJoinRequest(joinTokens.manager).request, { source: 'boot' })
  const store = new ClusterStore()
  const options = {
    clusterId,
    nodeId: boot.nodeId,
    credentials: { certificate: boot.certificate, roots: ca.pem },
    raftAddr: '127.0.0.1:1',
    advertiseHost: '127.0.0.1',
    bootstrap: {
      ca,
      joinTokens,
      info: {
        hostname: 'mgr',
        platform: { os: 'linux', architecture: 'x86_64' },
        resources: { nanoCPUs: 0, memoryBytes: 0 },
        engineVersion: 'test',
      },
    },
  } as unknown as ManagerOptions
  await store.update((tx) => createCluster(tx, options, boot.nodeId))
  const ctx: JoinContext = {
    store,
    raft: {} as RaftNode,
    ca: new ClusterCA(clusterId, () => joinTokens),
    joinCommits: joinCommits(store),
    raftId: boot.nodeId,
    raftAddr: '127.0.0.1:1',
    controlAddr: () => '127.0.0.1:2',
    isLeader: () => true,
    promote: async () => {},
    log: () => {},
  }
  return { store, ctx, joinTokens }
}

const join = (ctx: JoinContext, token: string, i: number) =>
  answerJoin(
    ctx,
    {
      op: 'join',
      csr: pki.createJoinRequest(token).request.csr,
      token,
      hostname: `w${i}`,
      advertiseAddr: '',
      raftAddr: '',
    },
    `127.0.1.${i + 1}`,
  ) as Promise<{ nodeId: string; role: string }>

describe('joins', () => {
  it('commits the node objects of joins that arrive together in one transaction', async () => {
    const { store, ctx, joinTokens } = await cluster()
    const before = store.version
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => join(ctx, joinTokens.worker, i)))
    expect(store.version - before).toBe(1)
    const nodes = store.view((tx) => tx.find('nodes', { role: 'worker' }))
    expect(nodes.map((n) => n.id).sort()).toEqual(answers.map((a) => a.nodeId).sort())
    expect(nodes.every((n) => n.status.state === 'unknown')).toBe(true)
  })

  it('refuses a bad token with its own error while the joins beside it succeed', async () => {
    const { store, ctx, joinTokens } = await cluster()
    const bad = pki.rotateJoinToken(joinTokens.worker)
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => join(ctx, i === 7 ? bad : joinTokens.worker, i)),
    )
    const refused = results.flatMap((r, i) =>
      r.status === 'rejected' ? [[i, String(r.reason.message)]] : [],
    )
    expect(refused).toEqual([[7, 'A valid join token is necessary to join this cluster']])
    expect(store.view((tx) => tx.find('nodes', { role: 'worker' })).length).toBe(19)
  })

  it('fails only the join whose node cannot be committed when a batch fails', async () => {
    const { store } = await cluster()
    const commits = joinCommits(store)
    const node = (id: string): Omit<Node, 'meta'> => ({
      id,
      spec: { labels: {}, role: 'worker', availability: 'active' },
      role: 'worker',
      status: { state: 'unknown', addr: '127.0.0.1' },
    })
    // A node ID already in the store: its creation fails, and with it the first transaction of the batch.
    await store.update((tx) => tx.create('nodes', node('taken')))
    const ids = Array.from({ length: 10 }, (_, i) => (i === 4 ? 'taken' : `n${i}`))
    const results = await Promise.allSettled(ids.map((id) => commits.create(node(id))))
    expect(results.map((r) => r.status)).toEqual(ids.map((id) => (id === 'taken' ? 'rejected' : 'fulfilled')))
    expect(store.view((tx) => tx.find('nodes', { role: 'worker' })).length).toBe(10)
  })
})
