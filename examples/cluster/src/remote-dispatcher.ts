// A worker's view of the dispatcher on a manager, over its mutual TLS connection, and the check of the
// managers list a heartbeat answer brings (it comes from the network).

import type { MeshService } from '@swarmkit/overlay'
import type { RpcClient } from '@swarmkit/transport'
import type { AssignmentsMessage } from './assignments-message.js'
import type { DispatcherApi, HeartbeatAnswer, TaskStatusUpdate } from './dispatcher.js'

/** The shortest bound on a heartbeat call (what it was before it followed the period). */
const MIN_HEARTBEAT_BOUND_MS = 2000

/**
 * A worker's heartbeat call, bounded by the heartbeat period its manager last gave (5 s by default), never
 * less than 2 s: a manager that does not answer within that counts as gone and the worker fails over. A
 * fixed 2 s made a loaded manager look gone: at 5,000 nodes workers failed over and registered again by the
 * thousand, which loaded the managers further. The node is down only after three periods, so a worker still
 * fails over in time.
 */
export function boundedHeartbeat(
  call: (timeoutMs: number) => Promise<HeartbeatAnswer>,
): () => Promise<HeartbeatAnswer> {
  let periodMs = 5000
  const learn = (answer: HeartbeatAnswer) => {
    const p = answer?.periodMs
    if (typeof p === 'number' && Number.isFinite(p) && p > 0) periodMs = Math.min(p, 60_000)
    return answer
  }
  return () => call(Math.max(MIN_HEARTBEAT_BOUND_MS, periodMs)).then(learn)
}

export /** The agent's view of a dispatcher on another manager, over mutual TLS (the connection of the moment). */
function remoteDispatcher(client: () => RpcClient): DispatcherApi {
  const heartbeat = boundedHeartbeat((timeoutMs) => client().call('dispatcher.heartbeat', {}, { timeoutMs }))
  return {
    register: (_id, info, addr) => client().call('dispatcher.register', { info, addr }),
    // A manager that does not answer within the period counts as gone (the worker then fails over).
    heartbeat: (_id) => heartbeat(),
    assignments: (_id, signal) =>
      client().stream('dispatcher.assignments', {}, { signal }) as AsyncIterable<AssignmentsMessage>,
    updateStatus: (_id, updates: readonly TaskStatusUpdate[]) => client().call('dispatcher.status', updates),
    mesh: (_id, signal) => client().stream('dispatcher.mesh', {}, { signal }) as AsyncIterable<MeshService[]>,
  }
}

/** The managers list of a heartbeat answer, checked (it comes from the network). */
export function checkManagers(list: unknown): { addr: string; control: string }[] | undefined {
  if (!Array.isArray(list) || list.length > 100) return undefined
  const ok = (a: unknown) => typeof a === 'string' && a.length <= 300 && /^[\w.:[\]-]*:\d{1,5}$/.test(a)
  const out = list.filter(
    (m) => typeof m === 'object' && m !== null && ok(m.control) && (m.addr === '' || ok(m.addr)),
  )
  return out.map((m) => ({ addr: String(m.addr), control: String(m.control) }))
}
