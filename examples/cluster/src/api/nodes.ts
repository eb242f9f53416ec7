// Engine API: `docker node ls/inspect/update/promote/demote/rm`.

import type { Node, ReadTx } from '@swarmkit/store'
import { removeNodeAttachments } from '../attachments.js'
import { nodeSpecFromDocker, nodeToDocker, nodeToDockerText } from '../docker-json.js'
import { ApiError } from '../errors.js'
import { ACCEPTED, nodeFilter, parseFilters } from '../filters.js'
import { JsonText } from '../http-json.js'
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

export function nodeRoutes({ view, update }: RouteContext): Route[] {
  return [
    [
      'GET',
      /^\/nodes$/,
      ({ query }) => {
        const match = nodeFilter(parseFilters(query.get('filters'), ACCEPTED.nodes))
        // Each node's text is kept while its object is the same: a listing joins them (see JsonText).
        const texts = view((tx) => tx.find('nodes').filter(match).map(nodeToDockerText))
        return { json: new JsonText(`[${texts.join(',')}]`) }
      },
    ],
    [
      'GET',
      /^\/nodes\/([^/]+)$/,
      ({ params }) => ({ json: view((tx) => nodeToDocker(lookup(tx, 'nodes', params[0]!, 'node'))) }),
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
