// The manager's control server methods, served over mutual TLS: the dispatcher for agents (register,
// heartbeat, assignments, mesh, status), certificate renewal (`ca.renew`), and what managers ask each other
// (`dispatcher.seen`, `manager.logs`). A node removed from the swarm is refused by its certificate's name.

import type { MeshService } from '@swarmkit/overlay'
import type { Cluster, ClusterStore } from '@swarmkit/store'
import type { Methods } from '@swarmkit/transport'
import type { LogLine } from '../agent.js'
import type { AssignmentsMessage } from '../assignments-message.js'
import { attachmentMethods } from '../attachment-methods.js'
import type { Dispatcher, NodeInfo, TaskStatusUpdate } from '../dispatcher.js'
import { MAX_RELAYED } from '../heartbeat-relay.js'
import type { RenewAnswer } from './renewal.js'

export interface ControlContext {
  readonly dispatcher: Dispatcher
  /** For containers' network attachments (attachments.ts). */
  readonly store?: ClusterStore
  readonly cluster: () => Cluster | undefined
  readonly nodeLogs: (nodeId: unknown, taskIds: unknown, ask: boolean) => Promise<Record<string, LogLine[]>>
  readonly renew: (
    nodeId: string,
    p: { csr?: unknown; raftAddr?: unknown },
    source: string,
  ) => Promise<RenewAnswer>
}

export function controlMethods(manager: ControlContext): Methods {
  const roles = ['swarm-manager', 'swarm-worker']
  const nodeOf = (identity: { commonName: string } | undefined) => {
    if (!identity?.commonName) throw new Error('unauthenticated')
    const id = identity.commonName
    if (manager.cluster()?.removedNodes?.[id])
      throw new Error(`Permission denied: node ${id} was removed from swarm`)
    return id
  }
  const d = manager.dispatcher
  return {
    'dispatcher.register': {
      kind: 'call',
      roles,
      handler: async (p: { info: NodeInfo; addr: string }, ctx) => {
        const id = nodeOf(ctx.identity)
        await d.register(id, p?.info, String(p?.addr ?? ''))
        if (ctx.identity?.organizationalUnit === 'swarm-worker') {
          d.sessions.set(id, ctx.session)
          ctx.session.once('session:close', () => {
            if (d.sessions.get(id) === ctx.session) d.sessions.delete(id)
          })
        }
      },
    },
    'dispatcher.heartbeat': {
      kind: 'call',
      roles,
      handler: (_p, ctx) => d.heard(nodeOf(ctx.identity)),
    },
    'dispatcher.assignments': {
      kind: 'stream',
      roles,
      handler: (_p, ctx): AsyncIterable<AssignmentsMessage> =>
        d.assignments(nodeOf(ctx.identity), ctx.signal),
    },
    'dispatcher.mesh': {
      kind: 'stream',
      roles,
      handler: (_p, ctx): AsyncIterable<MeshService[]> => d.mesh(nodeOf(ctx.identity), ctx.signal),
    },
    'dispatcher.seen': {
      kind: 'call',
      roles: ['swarm-manager'],
      handler: async (p: { nodeId?: unknown }) => {
        if (typeof p?.nodeId !== 'string' || p.nodeId.length > 128)
          throw new TypeError('nodeId: expected a string')
        await d.heartbeat(p.nodeId)
      },
    },
    // A follower's heartbeats, handed on together (heartbeat-relay.ts).
    'dispatcher.heard': {
      kind: 'call',
      roles: ['swarm-manager'],
      handler: async (p: { nodeIds?: unknown }, ctx) => {
        const ids = p?.nodeIds
        if (
          !Array.isArray(ids) ||
          ids.length > MAX_RELAYED ||
          !ids.every((id) => typeof id === 'string' && id.length <= 128)
        )
          throw new TypeError(`nodeIds: expected at most ${MAX_RELAYED} node IDs`)
        // The calling manager relays these nodes: their liveness is judged by its relays (dispatcher.ts).
        d.heardElsewhere(ids, nodeOf(ctx.identity))
      },
    },
    'manager.logs': {
      kind: 'call',
      roles: ['swarm-manager'],
      handler: (p: { nodeId?: unknown; taskIds?: unknown }) => manager.nodeLogs(p?.nodeId, p?.taskIds, false),
    },
    'dispatcher.status': {
      kind: 'call',
      roles,
      handler: (p: TaskStatusUpdate[], ctx) => d.updateStatus(nodeOf(ctx.identity), p),
    },
    // A node attaches its own containers to attachable networks (swarm's resource allocator).
    ...(manager.store
      ? (() => {
          const m = attachmentMethods(manager.store)
          return {
            'attachment.attach': {
              kind: 'call' as const,
              roles,
              handler: (p: unknown, ctx: { identity?: { commonName: string } }) =>
                m.attach(nodeOf(ctx.identity), p),
            },
            'attachment.detach': {
              kind: 'call' as const,
              roles,
              handler: (p: unknown, ctx: { identity?: { commonName: string } }) =>
                m.detach(nodeOf(ctx.identity), p),
            },
          }
        })()
      : {}),
    'ca.renew': {
      kind: 'call',
      roles,
      handler: (p: { csr?: unknown; raftAddr?: unknown }, ctx) =>
        manager.renew(nodeOf(ctx.identity), p, ctx.identity?.commonName ?? 'unknown'),
    },
  }
}
