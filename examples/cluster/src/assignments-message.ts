// What a node's assignment stream carries (swarm's AssignmentsMessage): first the node's complete set of
// tasks, then only what changed — tasks new to the node or changed, and the IDs of tasks that left it. A
// reconnecting agent gets a complete set again. A set is cut into messages of at most
// MAX_ASSIGNMENTS_PER_MESSAGE items so that no frame grows with the tasks on a node; the parts of a complete
// set are marked `more` until the last, and the agent applies the set only once it has all of it.

import type { Assignment } from './dispatcher.js'
import { isNetworkViewUpdate, type NetworkViewUpdate } from './network-view.js'

export interface AssignmentsMessage {
  readonly kind: 'assignments'
  /** `complete`: `update` is the node's whole set (continued while `more`); `incremental`: changes only. */
  readonly type: 'complete' | 'incremental'
  /** Tasks new to the node or changed since the previous message (all of them in a complete set). */
  readonly update: Assignment[]
  /** Tasks that left the node (reaped, removed, moved) since the previous message; empty in a complete set. */
  readonly remove: string[]
  /** A complete set continues in the next message. */
  readonly more?: boolean
  /** Changes to the node's network view (network-view.ts), when it changed. */
  readonly view?: NetworkViewUpdate
}

/** Items (updates plus removals) per message: keeps a frame far below the transport's 4 MiB limit. */
export const MAX_ASSIGNMENTS_PER_MESSAGE = 500

const MAX_ID = 256

/**
 * The messages that carry a complete set or a set of changes, each with at most `max` items; the view rides
 * on the first. No message for an incremental set with no changes and no view.
 */
export function assignmentsMessages(
  type: AssignmentsMessage['type'],
  update: readonly Assignment[],
  remove: readonly string[],
  view: NetworkViewUpdate | undefined,
  max = MAX_ASSIGNMENTS_PER_MESSAGE,
): AssignmentsMessage[] {
  if (type === 'incremental' && update.length === 0 && remove.length === 0 && !view) return []
  const out: AssignmentsMessage[] = []
  let u = 0
  let r = 0
  do {
    const ups = update.slice(u, u + max)
    u += ups.length
    const rms = remove.slice(r, r + max - ups.length)
    r += rms.length
    const more = u < update.length || r < remove.length
    out.push({
      kind: 'assignments',
      type,
      update: ups,
      remove: rms,
      ...(type === 'complete' && more ? { more: true } : {}),
      ...(out.length === 0 && view ? { view } : {}),
    })
  } while (u < update.length || r < remove.length)
  return out
}

/** Whether a stream item is an assignments message (checked: it comes from the network). */
export function checkAssignmentsMessage(m: unknown): AssignmentsMessage {
  const x = m as Partial<AssignmentsMessage> | null
  if (typeof x !== 'object' || x === null || x.kind !== 'assignments')
    throw new TypeError('assignments message: expected { kind: "assignments" }')
  if (x.type !== 'complete' && x.type !== 'incremental')
    throw new TypeError('assignments message: type must be "complete" or "incremental"')
  if (!Array.isArray(x.update) || !Array.isArray(x.remove))
    throw new TypeError('assignments message: update and remove must be lists')
  if (x.update.length + x.remove.length > MAX_ASSIGNMENTS_PER_MESSAGE)
    throw new TypeError(`assignments message: more than ${MAX_ASSIGNMENTS_PER_MESSAGE} items`)
  for (const a of x.update)
    if (typeof a?.taskId !== 'string' || a.taskId.length > MAX_ID || typeof a.spec !== 'object' || !a.spec)
      throw new TypeError('assignments message: every update needs a taskId and a spec')
  if (!x.remove.every((id) => typeof id === 'string' && id.length <= MAX_ID))
    throw new TypeError('assignments message: remove holds task IDs')
  if (x.more !== undefined && typeof x.more !== 'boolean')
    throw new TypeError('assignments message: more must be a boolean')
  if (x.view !== undefined && !isNetworkViewUpdate(x.view))
    throw new TypeError('assignments message: view must be a network view update')
  return x as AssignmentsMessage
}
