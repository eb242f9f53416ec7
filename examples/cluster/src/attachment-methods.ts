// The calls a node makes for its containers' network attachments, on a manager's store (over the node's
// mutual TLS session, or in-process on a manager node): attach one container to a network, detach it.

import type { ClusterStore } from '@swarmkit/store'
import { type AttachAnswer, attachNetwork, checkAttachRequest, detachNetwork } from './attachments.js'

export interface AttachmentMethods {
  attach(nodeId: string, request: unknown): Promise<AttachAnswer>
  detach(nodeId: string, attachmentId: unknown): Promise<void>
}

export function attachmentMethods(store: Pick<ClusterStore, 'update'>): AttachmentMethods {
  return {
    attach: async (nodeId, request) => {
      const req = checkAttachRequest(request)
      return store.update((tx) => attachNetwork(tx, nodeId, req))
    },
    detach: (nodeId, attachmentId) => store.update((tx) => detachNetwork(tx, nodeId, attachmentId)),
  }
}
