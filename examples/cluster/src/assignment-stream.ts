// One node's assignment stream on the dispatcher: the complete set first, then for each burst of commits only
// the tasks the fan-out marked for the node (assignment-fanout.ts), compared with what the stream sent
// before, and the changes to the node's network view. What was sent is remembered per stream, so a new
// stream (a reconnecting agent) starts again from a complete set.

import type { SwarmView } from '@swarmkit/overlay'
import type { AssignmentFanout } from './assignment-fanout.js'
import { type AssignmentsMessage, assignmentsMessages } from './assignments-message.js'
import type { Assignment } from './dispatcher.js'
import { diffView, type NetworkViewUpdate, type SentView } from './network-view.js'

export interface AssignmentStreamSource {
  readonly fanout: AssignmentFanout
  /** Every task the node is to hold now. */
  all(nodeId: string): Assignment[]
  /** The task's assignment if it is the node's to hold now, else undefined (it left the node). */
  one(nodeId: string, taskId: string): Assignment | undefined
  /** The node's network view now. */
  view(nodeId: string): SwarmView
}

/** The messages of `nodeId`'s stream until `signal` aborts (or the dispatcher's store closes). */
export async function* assignmentStream(
  source: AssignmentStreamSource,
  nodeId: string,
  signal: AbortSignal,
): AsyncGenerator<AssignmentsMessage> {
  // Subscribed before the complete set is read: a commit in between is marked, and sent again only if the
  // set did not have it already.
  const changes = source.fanout.subscribe(nodeId, signal)
  const sent = new Map<string, Assignment>()
  let sentView: SentView | undefined
  const view = (): NetworkViewUpdate | undefined => {
    const next = diffView(sentView, source.view(nodeId))
    const holds = next.sent.networks.size > 0
    changes.holdsView = holds
    // An empty view at a stream's start needs no message (nodes without overlay tasks never get one).
    if (sentView === undefined && !holds) return undefined
    sentView = next.sent
    return next.update
  }
  try {
    const all = source.all(nodeId)
    for (const a of all) sent.set(a.taskId, a)
    yield* assignmentsMessages('complete', all, [], view())
    for (;;) {
      const change = await changes.next()
      if (!change) return
      const update: Assignment[] = []
      const remove: string[] = []
      for (const id of change.tasks) {
        const a = source.one(nodeId, id)
        if (a) {
          if (sent.get(id) === a) continue
          sent.set(id, a)
          update.push(a)
        } else if (sent.delete(id)) remove.push(id)
      }
      yield* assignmentsMessages('incremental', update, remove, change.view ? view() : undefined)
    }
  } finally {
    changes.close()
  }
}
