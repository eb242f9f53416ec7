// `ca.renew` on a manager: a node asks, over mutual TLS, for a certificate for the role the cluster wants it
// in. A promoted worker becomes a manager in the store here (the leader then adds it to raft); a demoted
// manager gets its worker certificate once the leader has taken it out of raft.

import type * as pki from '@swarmkit/pki'
import type { RaftNode } from '@swarmkit/raft'
import { type ClusterStore, generateId } from '@swarmkit/store'
import type { RpcClient } from '@swarmkit/transport'
import { ENGINE_VERSION } from '../engine-version.js'
import { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL } from '../labels.js'
import type { ClusterCA } from './ca.js'

/** The CA's answer to `ca.renew`: the certificate, and for a promoted node what it needs to start raft. */
export interface RenewAnswer extends pki.CertificateResponse {
  /** The dispatcher of the manager that answered (a demoted node's agent connects there). */
  readonly controlAddr: string
  /** For a manager: its raft member ID and the other members to start with. */
  readonly raftId?: string
  readonly raftPeers?: { id: string; address: string }[]
}

export interface RenewalContext {
  readonly store: ClusterStore
  readonly ca: ClusterCA
  /** This manager's control server (dispatcher) address. */
  readonly controlAddr: () => string
  readonly log: (line: string) => void
}

/**
 * `ca.renew` from a node over mutual TLS: a certificate for the node's desired role. A promoted worker
 * gets a manager certificate and becomes a manager in the store (the leader then adds it to raft); a
 * demoted manager gets a worker certificate once the leader has taken it out of raft.
 */
export async function answerRenewal(
  ctx: RenewalContext,
  nodeId: string,
  p: { csr?: unknown; raftAddr?: unknown },
  source: string,
): Promise<RenewAnswer> {
  const { store, log } = ctx
  const cluster = store.view((tx) => tx.find('clusters')[0])
  if (!cluster) throw new Error('this manager has no cluster yet')
  const node = store.view((tx) => tx.get('nodes', nodeId))
  if (!node) throw new Error(`node ${nodeId} not found`)
  const want = node.spec.role
  if (want === 'worker' && node.role === 'manager')
    throw new Error(`node ${nodeId} is still leaving raft; try again`)
  let raftId: string | undefined
  if (want === 'manager') {
    if (node.role === 'manager' && node.managerStatus) raftId = node.managerStatus.raftId
    else {
      if (typeof p?.raftAddr !== 'string' || !/^[\w.:[\]-]{1,300}:\d{1,5}$/.test(p.raftAddr))
        throw new Error('a node promoted to manager must give its raft address')
      raftId = generateId()
      const raftAddr = p.raftAddr
      await store.update((tx) => {
        const cur = tx.get('nodes', nodeId)
        if (cur?.spec.role !== 'manager' || cur.role !== 'worker')
          throw new Error(`node ${nodeId} changed while it was promoted; try again`)
        const description = cur.description ?? {
          hostname: '',
          platform: { os: 'linux', architecture: 'x86_64' },
          resources: { nanoCPUs: 0, memoryBytes: 0 },
          engine: { engineVersion: ENGINE_VERSION, labels: {}, plugins: [] },
        }
        tx.update('nodes', {
          ...cur,
          role: 'manager',
          managerStatus: { raftId: raftId!, addr: '', leader: false, reachability: 'reachable' },
          description: {
            ...description,
            engine: {
              ...description.engine,
              labels: { ...description.engine.labels, [RAFT_ADDR_LABEL]: raftAddr },
            },
          },
        })
      })
      log(`node ${nodeId} promoted: manager certificate issued, raft member ${raftId}`)
    }
  }
  const response = ctx.ca
    .forCluster(cluster)
    .renew(
      { csr: String(p?.csr ?? '') },
      { source, node: { nodeId, role: want === 'manager' ? 'swarm-manager' : 'swarm-worker' } },
    )
  const raftPeers =
    want === 'manager'
      ? store.view((tx) =>
          tx
            .find('nodes', { role: 'manager' })
            .filter((n) => n.id !== nodeId && n.managerStatus)
            .flatMap((n) => {
              const address = n.description?.engine.labels[RAFT_ADDR_LABEL]
              return address ? [{ id: n.managerStatus!.raftId, address }] : []
            }),
        )
      : undefined
  return {
    ...response,
    controlAddr: ctx.controlAddr(),
    ...(raftId ? { raftId } : {}),
    ...(raftPeers ? { raftPeers } : {}),
  }
}

/**
 * Asks the other managers (the leader first) for a certificate for this node's desired role
 * (`ca.renew`): how a demoted manager gets its worker certificate. Returns the answer and the join
 * address of the manager that gave it.
 */
export async function renewWithOtherManagers(
  ctx: { store: ClusterStore; raft: RaftNode; nodeId: string; managerClient: (address: string) => RpcClient },
  request: { csr: string },
): Promise<{ answer: RenewAnswer; joinAddr: string }> {
  const leader = ctx.raft.leaderId
  const others = ctx.store.view((tx) =>
    tx
      .find('nodes', { role: 'manager' })
      .filter((n) => n.id !== ctx.nodeId && n.managerStatus)
      .sort(
        (a, b) => Number(b.managerStatus!.raftId === leader) - Number(a.managerStatus!.raftId === leader),
      ),
  )
  let last: unknown = new Error('no other manager is known')
  for (const n of others) {
    const address = n.description?.engine.labels[CONTROL_ADDR_LABEL]
    if (!address) continue
    try {
      const answer = (await ctx.managerClient(address).call('ca.renew', request, {
        timeoutMs: 5000,
      })) as RenewAnswer
      return { answer, joinAddr: n.managerStatus!.addr || address }
    } catch (err) {
      last = err
    }
  }
  throw last
}
