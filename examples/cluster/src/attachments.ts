// Network attachments of standalone containers (`docker run --network NAME` on an `--attachable` overlay),
// the managers' side (swarm's resource allocator): a node asks for an attachment of one of its containers,
// and gets a task with no service, its node and the network, which the task address allocator gives an
// address to and which every node's network view then carries (its forwarding entries, its name in DNS).
// Only attachable networks are given out (moby's words when not); a node can only remove its own.
//
// Attachment tasks are not the orchestrator's (no service), not the scheduler's (placed on the asking node
// and running from the start), and not sent to the node's agent (it has no container to run for them).

import { generateId, type Task, type Tx } from '@swarmkit/store'

/** `spec.runtime` of an attachment task (swarm's `NetworkAttachmentSpec`). */
export const ATTACHMENT_RUNTIME = 'attachment'
/** The label of an attachment task naming its container. */
export const ATTACHMENT_CONTAINER_LABEL = 'com.docker.swarm.attachment.container-id'

export function isAttachmentTask(t: Pick<Task, 'spec'>): boolean {
  return t.spec.runtime === ATTACHMENT_RUNTIME
}

export interface AttachRequest {
  /** The network's name or ID, as the user gave it. */
  readonly target: string
  readonly containerId: string
  /** The container's name (its name in DNS on the network). */
  readonly containerName?: string
  readonly aliases?: string[]
}

export type AttachAnswer =
  | { readonly attachmentId: string; readonly networkId: string }
  | { readonly error: { readonly code: 'NotFound' | 'PermissionDenied'; readonly message: string } }

/** Checks an attach request (it comes from the network). */
export function checkAttachRequest(p: unknown): AttachRequest {
  const r = p as Partial<AttachRequest> | undefined
  const str = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max
  if (
    typeof r !== 'object' ||
    r === null ||
    !str(r.target, 256) ||
    !/^[0-9a-f]{12,64}$/.test(String(r.containerId)) ||
    (r.containerName !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/.test(String(r.containerName))) ||
    (r.aliases !== undefined &&
      (!Array.isArray(r.aliases) || r.aliases.length > 32 || !r.aliases.every((a) => str(a, 255))))
  )
    throw new TypeError('attach request: expected { target, containerId, containerName?, aliases? }')
  return {
    target: r.target!,
    containerId: r.containerId!,
    ...(r.containerName ? { containerName: r.containerName } : {}),
    ...(r.aliases?.length ? { aliases: [...r.aliases] } : {}),
  }
}

/** Creates the attachment task of `nodeId`'s container on the network (resource allocator's AttachNetwork). */
export function attachNetwork(tx: Tx, nodeId: string, req: AttachRequest, now = Date.now()): AttachAnswer {
  const networks = tx.find('networks')
  const byName = networks.filter((n) => n.spec.name === req.target)
  const network =
    networks.find((n) => n.id === req.target) ??
    (byName.length === 1 ? byName[0] : undefined) ??
    (req.target.length >= 3 ? oneWithPrefix(networks, req.target) : undefined)
  if (!network || network.pendingDelete)
    return { error: { code: 'NotFound', message: `network ${req.target} not found` } }
  if (!network.spec.attachable || network.spec.ingress)
    return {
      error: { code: 'PermissionDenied', message: `network ${req.target} not manually attachable` },
    }
  const id = generateId()
  const aliases = req.aliases ? { aliases: req.aliases } : {}
  tx.create('tasks', {
    id,
    spec: {
      containerSpec: { image: '' },
      runtime: ATTACHMENT_RUNTIME,
      networks: [{ target: network.id, ...aliases }],
    },
    serviceId: '',
    slot: 0,
    nodeId,
    labels: { [ATTACHMENT_CONTAINER_LABEL]: req.containerId },
    serviceAnnotations: { name: req.containerName ?? req.containerId.slice(0, 12), labels: {} },
    status: { timestamp: now, state: 'running', message: 'network attachment' },
    desiredState: 'running',
    networks: [{ networkId: network.id, addresses: [], ...aliases }],
  } as unknown as Task)
  return { attachmentId: id, networkId: network.id }
}

function oneWithPrefix<T extends { id: string }>(items: T[], prefix: string): T | undefined {
  const hits = items.filter((n) => n.id.startsWith(prefix))
  return hits.length === 1 ? hits[0] : undefined
}

/** Removes an attachment of `nodeId` (resource allocator's DetachNetwork); a gone one is fine. */
export function detachNetwork(tx: Tx, nodeId: string, attachmentId: unknown): void {
  if (typeof attachmentId !== 'string' || attachmentId.length === 0 || attachmentId.length > 128)
    throw new TypeError('detach request: expected an attachment ID')
  const t = tx.get('tasks', attachmentId)
  if (!t) return
  if (!isAttachmentTask(t) || t.nodeId !== nodeId)
    throw new Error(`attachment ${attachmentId} doesn't belong to this node`)
  tx.delete('tasks', attachmentId)
}

/**
 * Drops the attachments of a node that is removed from the swarm (swarmkit's RemoveNode orphans them):
 * its containers are out of reach, and their tasks would hold their networks and addresses for ever.
 */
export function removeNodeAttachments(tx: Tx, nodeId: string): void {
  for (const t of tx.find('tasks', { nodeId }, isAttachmentTask)) tx.delete('tasks', t.id)
}
