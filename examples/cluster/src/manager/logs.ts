// `docker service logs` across the cluster: a task's log lines come from the agent of the node it ran on,
// whether that is this node, a worker connected to this manager, or a node connected to another manager.

import type { ClusterStore } from '@swarmkit/store'
import type { RpcClient } from '@swarmkit/transport'
import type { LogLine } from '../agent.js'
import type { Dispatcher } from '../dispatcher.js'
import { CONTROL_ADDR_LABEL } from '../labels.js'

export interface LogsContext {
  readonly nodeId: string
  readonly store: ClusterStore
  readonly dispatcher: Dispatcher
  /** This node's own agent. */
  readonly localLogs: ((taskIds: string[]) => Promise<Record<string, LogLine[]>>) | undefined
  /** A mutual TLS client to another manager's control server. */
  readonly managerClient: (address: string) => RpcClient
}

/**
 * Log lines of tasks on `nodeId`: from this node's agent, a worker connected here, or (when `ask` is set)
 * whichever other manager has it.
 */
export async function nodeLogs(
  ctx: LogsContext,
  nodeId: unknown,
  taskIds: unknown,
  ask: boolean,
): Promise<Record<string, LogLine[]>> {
  if (typeof nodeId !== 'string' || !Array.isArray(taskIds) || taskIds.length > 10_000)
    throw new TypeError('expected { nodeId, taskIds }')
  const ids = taskIds.filter((t): t is string => typeof t === 'string')
  if (nodeId === ctx.nodeId) return (await ctx.localLogs?.(ids)) ?? {}
  const session = ctx.dispatcher.sessions.get(nodeId)
  if (session)
    return (await session.call('agent.logs', ids, { timeoutMs: 5000 })) as Record<string, LogLine[]>
  if (!ask) return {}
  const managers = ctx.store.view((tx) =>
    tx
      .find('nodes', { role: 'manager' })
      .filter((n) => n.id !== ctx.nodeId && n.status.state === 'ready')
      .map((n) => n.description?.engine.labels[CONTROL_ADDR_LABEL])
      .filter((a): a is string => !!a),
  )
  for (const address of managers) {
    const client = ctx.managerClient(address)
    const got = (await client
      .call('manager.logs', { nodeId, taskIds: ids }, { timeoutMs: 5000 })
      .catch(() => ({}))) as Record<string, LogLine[]>
    if (Object.keys(got).length > 0) return got
  }
  return {}
}
