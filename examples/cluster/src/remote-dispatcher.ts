// A worker's view of the dispatcher on a manager, over its mutual TLS connection, and the check of the
// managers list a heartbeat answer brings (it comes from the network).

import type { MeshService } from '@swarmkit/overlay'
import type { RpcClient } from '@swarmkit/transport'
import type { AssignmentsMessage } from './assignments-message.js'
import type { DispatcherApi, TaskStatusUpdate } from './dispatcher.js'

export /** The agent's view of a dispatcher on another manager, over mutual TLS (the connection of the moment). */
function remoteDispatcher(client: () => RpcClient): DispatcherApi {
  return {
    register: (_id, info, addr) => client().call('dispatcher.register', { info, addr }),
    // A manager that does not answer within 2 s counts as gone (the worker then fails over).
    heartbeat: (_id) => client().call('dispatcher.heartbeat', {}, { timeoutMs: 2000 }),
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
