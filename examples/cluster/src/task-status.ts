// How the managers take a worker's task status reports: only the node's own tasks, only forward in the task
// state machine, and only fields that pass their checks (a node names endpoints on its own address alone, so
// the routing mesh never forwards traffic elsewhere on a worker's word). The dispatcher commits them in batches.

import { isIP } from 'node:net'
import type { PortConfig, TaskState, Tx } from '@swarmkit/store'
import { TASK_STATES, taskStateRank } from '@swarmkit/store'
import type { TaskStatusUpdate } from './dispatcher.js'
import { ENDPOINT_LABEL, ENDPOINTS_LABEL } from './labels.js'

/**
 * The states a task only passes through on its way to running: an agent may hold their reports for the next
 * state (agent.ts), and a report that carries a later state of the same task makes them moot here.
 */
export const PASSING_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'accepted',
  'preparing',
  'starting',
])

/** A node's status reports applied in `tx`: only its own tasks, and only forward in the task state machine. */
export function applyStatuses(
  tx: Tx,
  nodeId: string,
  updates: readonly TaskStatusUpdate[],
  now: number,
): void {
  const nodeAddr = tx.get('nodes', nodeId)?.status.addr
  // A task's highest state in this report: a state it passed through on the way there is not written first
  // (the transaction would keep only the last write anyway; this saves building and checking the others).
  const highest = updates.length > 1 ? highestRanks(updates) : undefined
  for (const u of updates) {
    if (highest && PASSING_STATES.has(u.state) && highest.get(u.taskId)! > taskStateRank(u.state)) continue
    const t = tx.get('tasks', u.taskId)
    if (!t || t.nodeId !== nodeId) continue
    // A node may only name endpoints on its own address (the mesh forwards traffic there).
    const endpoint =
      u.state === 'running' && validEndpoint(u.endpoint) && u.endpoint.address === nodeAddr
        ? `${u.endpoint.address}:${u.endpoint.port}`
        : undefined
    const perPort = endpoint ? endpointPorts(u.endpoint) : undefined
    const labels = endpoint
      ? { ...t.labels, [ENDPOINT_LABEL]: endpoint, ...(perPort ? { [ENDPOINTS_LABEL]: perPort } : {}) }
      : t.labels
    if (taskStateRank(u.state) <= taskStateRank(t.status.state)) {
      // The same state again with a new endpoint: a restarted agent took the running task over.
      if (
        endpoint &&
        u.state === t.status.state &&
        (t.labels?.[ENDPOINT_LABEL] !== endpoint || t.labels?.[ENDPOINTS_LABEL] !== perPort)
      )
        tx.update('tasks', { ...t, ...(labels ? { labels } : {}) })
      continue
    }
    tx.update('tasks', {
      ...t,
      ...(labels ? { labels } : {}),
      status: {
        timestamp: now,
        state: u.state,
        message: String(u.message).slice(0, 1024),
        ...(u.err ? { err: String(u.err).slice(0, 1024) } : {}),
        ...(validPorts(u.ports) ? { portStatus: { ports: u.ports } } : {}),
        ...(validContainerStatus(u.containerStatus) ? { containerStatus: { ...u.containerStatus } } : {}),
      },
    })
  }
}

const KNOWN_STATES: ReadonlySet<unknown> = new Set(TASK_STATES)

/** Each task's highest state in a report (a state that is none is left to the checks above, as before). */
function highestRanks(updates: readonly TaskStatusUpdate[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const u of updates) {
    if (!KNOWN_STATES.has(u?.state)) continue
    const r = taskStateRank(u.state)
    if (r > (out.get(u.taskId) ?? -1)) out.set(u.taskId, r)
  }
  return out
}

function validEndpoint(e: unknown): e is { address: string; port: number } {
  const x = e as { address?: unknown; port?: unknown } | undefined
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.address === 'string' &&
    isIP(x.address) !== 0 &&
    Number.isInteger(x.port) &&
    (x.port as number) >= 1 &&
    (x.port as number) <= 65535
  )
}

/** The per-port forwarders of an endpoint as the label holds them (`tcp/80=34567,udp/53=40001`), if valid. */
function endpointPorts(e: unknown): string | undefined {
  const ports = (e as { ports?: unknown }).ports
  if (!Array.isArray(ports) || ports.length === 0 || ports.length > 64) return undefined
  const port = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535
  const ok = ports.every(
    (p: { protocol?: unknown; targetPort?: unknown; port?: unknown }) =>
      typeof p === 'object' &&
      p !== null &&
      (p.protocol === 'tcp' || p.protocol === 'udp') &&
      port(p.targetPort) &&
      port(p.port),
  )
  return ok
    ? ports
        .map(
          (p: { protocol: string; targetPort: number; port: number }) =>
            `${p.protocol}/${p.targetPort}=${p.port}`,
        )
        .join(',')
    : undefined
}

/** The label of {@link endpointPorts} read back: `protocol/targetPort` -> port. */
export function parseEndpointPorts(label: string | undefined): Map<string, number> {
  const out = new Map<string, number>()
  for (const item of (label ?? '').split(',')) {
    const m = /^(tcp|udp)\/(\d{1,5})=(\d{1,5})$/.exec(item)
    if (m) out.set(`${m[1]}/${m[2]}`, Number(m[3]))
  }
  return out
}

function validContainerStatus(c: unknown): c is { containerId: string; pid: number; exitCode: number } {
  const x = c as { containerId?: unknown; pid?: unknown; exitCode?: unknown } | undefined
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.containerId === 'string' &&
    x.containerId.length <= 128 &&
    Number.isSafeInteger(x.pid) &&
    Number.isSafeInteger(x.exitCode)
  )
}

function validPorts(ports: unknown): ports is PortConfig[] {
  return (
    Array.isArray(ports) &&
    ports.length > 0 &&
    ports.length <= 64 &&
    ports.every(
      (p: PortConfig) =>
        typeof p === 'object' &&
        p !== null &&
        ['tcp', 'udp', 'sctp'].includes(p.protocol) &&
        Number.isInteger(p.targetPort) &&
        Number.isInteger(p.publishedPort) &&
        p.publishMode === 'host',
    )
  )
}
