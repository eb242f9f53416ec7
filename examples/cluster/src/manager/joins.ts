// `docker swarm join` on the manager side: the join listener's requests. The CA checks the token and issues;
// a worker gets its node object, a manager becomes a raft learner first (promoted to voter once caught up).

import type * as pki from '@swarmkit/pki'
import type { RaftNode } from '@swarmkit/raft'
import type { ClusterStore, Node } from '@swarmkit/store'
import { ENGINE_VERSION } from '../engine-version.js'
import type { JoinAnswer, JoinMessage } from '../join.js'
import { RAFT_ADDR_LABEL } from '../labels.js'
import type { ClusterCA } from './ca.js'
import type { JoinCommits } from './join-commits.js'

const toStoreRole = (role: pki.NodeRole) => (role === 'swarm-manager' ? 'manager' : 'worker')

export interface JoinContext {
  readonly store: ClusterStore
  readonly raft: RaftNode
  readonly ca: ClusterCA
  /** Commits the joins' node objects together (join-commits.ts). */
  readonly joinCommits: JoinCommits
  /** This manager's raft member ID and address (a joining manager's first peer). */
  readonly raftId: string
  readonly raftAddr: string
  /** This manager's control server (dispatcher) address. */
  readonly controlAddr: () => string
  readonly isLeader: () => boolean
  /** Makes a raft learner a voter once it has caught up. */
  readonly promote: (raftId: string) => Promise<void>
  readonly log: (line: string) => void
}

/** Answers a join request (or a request for the root CA) that came in on the join listener. */
export async function answerJoin(ctx: JoinContext, m: JoinMessage, source: string): Promise<unknown> {
  const { store, raft, log } = ctx
  const cluster = store.view((tx) => tx.find('clusters')[0])
  if (!cluster) throw new Error('this manager has no cluster yet')
  const ca = ctx.ca.forCluster(cluster)
  if (m.op === 'rootCA') return ca.getRootCA()
  if (typeof m.hostname !== 'string' || m.hostname.length > 255) throw new Error('hostname must be a string')
  const response = ca.join({ csr: m.csr, token: m.token }, { source })
  const role = toStoreRole(response.role)
  if (role === 'manager') {
    if (!ctx.isLeader()) {
      const leader = store.view(
        (tx) => tx.find('nodes', { role: 'manager' }, (n) => !!n.managerStatus?.leader)[0],
      )
      throw new Error(`join managers through the leader${leader ? ` at ${leader.managerStatus!.addr}` : ''}`)
    }
    if (typeof m.raftAddr !== 'string' || !/^[\w.:[\]-]{1,300}:\d{1,5}$/.test(m.raftAddr))
      throw new Error('a joining manager must give its raft address')
  }
  const addr = typeof m.advertiseAddr === 'string' && m.advertiseAddr ? m.advertiseAddr : source
  // A manager is a raft learner first (it gets the log without voting), promoted to voter once it has
  // caught up (by the role reconciler, which sees the member already there).
  if (role === 'manager') await raft.addMember(response.nodeId, { address: m.raftAddr })
  // Committed with the other joins that wait (join-commits.ts): one raft entry per burst, not per node.
  const node: Omit<Node, 'meta'> = {
    id: response.nodeId,
    spec: { labels: {}, role, availability: 'active' },
    role,
    description: {
      hostname: m.hostname,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCPUs: 0, memoryBytes: 0 },
      engine: {
        engineVersion: ENGINE_VERSION,
        labels: role === 'manager' ? { [RAFT_ADDR_LABEL]: m.raftAddr } : {},
        plugins: [],
      },
    },
    status: { state: 'unknown', addr: addr.replace(/^::ffff:/, '') },
    ...(role === 'manager'
      ? {
          managerStatus: {
            raftId: response.nodeId,
            addr: '',
            leader: false,
            reachability: 'reachable' as const,
          },
        }
      : {}),
  }
  await ctx.joinCommits.create(node)
  let raftPeers: JoinAnswer['raftPeers']
  if (role === 'manager') {
    void ctx.promote(response.nodeId)
    raftPeers = [{ id: ctx.raftId, address: ctx.raftAddr }]
  }
  log(`node ${response.nodeId} (${m.hostname}) joined as ${role}`)
  const answer: JoinAnswer = {
    ...response,
    controlAddr: ctx.controlAddr(),
    ...(raftPeers ? { raftPeers } : {}),
  }
  return answer
}
