// Engine API: `docker node ls/inspect/update/promote/demote/rm`.

import type { Node, ReadTx } from '@swarmkit/store'
import { removeNodeAttachments } from '../attachments.js'
import { nodeJsonText, nodeSpecFromDocker, nodeToDocker } from '../docker-json.js'
import { ApiError } from '../errors.js'
import { ACCEPTED, nodeFilter, parseFilters } from '../filters.js'
import { jsonArray, nodeListCache } from './node-list.js'
import { checkVersion, lookup, type Route, type RouteContext, version } from './route.js'

/** moby's checks before a demotion: never the last manager, never below a reachable majority. */
function checkDemotion(tx: ReadTx, n: Node): void {
  const managersLeft = tx.find('nodes').filter((m) => m.id !== n.id && m.spec.role === 'manager')
  if (managersLeft.length === 0)
    throw new ApiError(
      400,
      'rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm',
    )
  if (!n.managerStatus) return
  const voters = tx.find('nodes').filter((m) => m.id !== n.id && m.managerStatus)
  const reachable = voters.filter(
    (m) => m.managerStatus!.reachability === 'reachable' && m.status.state === 'ready',
  ).length
  if (reachable < (voters.length >> 1) + 1)
    throw new ApiError(
      400,
      "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum",
    )
}

/**
 * Whether a node's stored leader flag is out of date against `leaderRaftId`, the leader raft knows now: swarm's
 * control API fills `ManagerStatus.Leader` in from the raft members at each request, and the flag in the store
 * is written by a new leader only once its duties have started, a second or more after the election on a
 * large swarm.
 */
function staleLeaderFlag(n: Node, leaderRaftId: string | null): boolean {
  const ms = n.managerStatus
  return !!ms && ms.leader !== (ms.raftId === leaderRaftId)
}

/** A node's JSON with the leader as raft knows it (the cached JSON is copied, never changed). */
function withLeader(n: Node, leaderRaftId: string | null): Record<string, unknown> {
  const json = nodeToDocker(n)
  if (!staleLeaderFlag(n, leaderRaftId)) return json
  const Leader = n.managerStatus!.raftId === leaderRaftId
  return { ...json, ManagerStatus: { ...(json.ManagerStatus as object), Leader } }
}

const nodeBytes = new WeakMap<Node, Buffer>()

/** The same as bytes, kept per node object (only a manager with a stale flag is serialized). */
function bytesWithLeader(n: Node, leaderRaftId: string | null): Buffer {
  if (staleLeaderFlag(n, leaderRaftId)) return Buffer.from(JSON.stringify(withLeader(n, leaderRaftId)))
  let bytes = nodeBytes.get(n)
  if (!bytes) nodeBytes.set(n, (bytes = Buffer.from(nodeJsonText(n))))
  return bytes
}

export function nodeRoutes({ view, update, mgr }: RouteContext): Route[] {
  const lists = nodeListCache()
  return [
    [
      'GET',
      /^\/nodes$/,
      ({ query }) => {
        const filters = query.get('filters')
        const match = nodeFilter(parseFilters(filters, ACCEPTED.nodes))
        const leader = mgr().raft.leaderId
        const nodes = view((tx) => tx.find('nodes').filter(match))
        // Kept while the nodes are the same objects (node-list.ts); built from each node's kept bytes:
        // serializing the whole list per request held the loop for hundreds of milliseconds at 5,000 nodes
        // (node-ls-cost.test.ts).
        return {
          body: lists.answer(nodes, leader, filters, () =>
            jsonArray(nodes.map((n) => bytesWithLeader(n, leader))),
          ),
        }
      },
    ],
    [
      'GET',
      /^\/nodes\/([^/]+)$/,
      ({ params }) => ({
        json: view((tx) => withLeader(lookup(tx, 'nodes', params[0]!, 'node'), mgr().raft.leaderId)),
      }),
    ],
    [
      'POST',
      /^\/nodes\/([^/]+)\/update$/,
      async ({ params, query, body }) => {
        const v = version(query)
        const spec = nodeSpecFromDocker(body)
        await update((tx) => {
          const n = lookup(tx, 'nodes', params[0]!, 'node')
          checkVersion(n.meta.version, v)
          if (n.spec.role === 'manager' && spec.role === 'worker') checkDemotion(tx, n)
          // A role change takes effect through the leader (raft membership) and the node (a new certificate).
          tx.update('nodes', { ...n, spec })
        })
        return {}
      },
    ],

    [
      'DELETE',
      /^\/nodes\/([^/]+)$/,
      async ({ params, query }) => {
        const force = query.get('force') === '1' || query.get('force') === 'true'
        await update((tx) => {
          const n = lookup(tx, 'nodes', params[0]!, 'node')
          if (n.role === 'manager' || n.managerStatus)
            throw new ApiError(
              400,
              `rpc error: code = FailedPrecondition desc = node ${n.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`,
            )
          if (n.status.state !== 'down' && !force)
            throw new ApiError(
              400,
              `rpc error: code = FailedPrecondition desc = node ${n.id} is not down and can't be removed`,
            )
          const c = tx.find('clusters')[0]
          // Its certificate is refused from now on (until it would have expired).
          if (c)
            tx.update('clusters', {
              ...c,
              removedNodes: { ...c.removedNodes, [n.id]: { expiry: Date.now() + 90 * 24 * 3600 * 1000 } },
            })
          removeNodeAttachments(tx, n.id)
          tx.delete('nodes', n.id)
        })
        return {}
      },
    ],
  ]
}
