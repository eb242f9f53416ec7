// Who still uses a network when `docker network rm` asks (swarmkit's controlapi RemoveNetwork, after its
// service check): a standalone container's attachment that is meant to run and has not ended refuses the
// removal with moby's words. Service tasks are left to the store's own reference check: a removed service's
// tasks are on their way out and must not hold the network up.

import type { Task, Tx } from '@swarmkit/store'
import { isAttachmentTask } from './attachments.js'

const LIVE = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'])

/** moby's refusal when a live attachment task is on the network, or undefined when none is. */
export function attachmentUsing(tx: Tx, networkId: string): string | undefined {
  // swarmkit's rule: desired state and observed state both at most `running`.
  const live = (t: Task) =>
    isAttachmentTask(t) &&
    (t.desiredState === 'ready' || t.desiredState === 'running') &&
    LIVE.has(t.status.state)
  const t = tx.find('tasks', { referencedNetworkId: networkId }, live)[0]
  return t && `rpc error: code = FailedPrecondition desc = network ${networkId} is in use by task ${t.id}`
}
