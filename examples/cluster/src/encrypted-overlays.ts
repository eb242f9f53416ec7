// A worker's side of encrypted overlay networks (`--opt encrypted`): from the keys and encrypted networks in
// its network view (network-keys.ts, sent only to nodes with a task on such a network), it programs IPsec in
// its own network namespace through overlay's ipsecDataPlane: per peer node, ESP transport-mode states with
// `rfc4106(gcm(aes))` for every key and an outbound policy for the marked VXLAN packets of those networks
// (`ip xfrm state/policy`), and nftables marking plus a drop of unsealed inbound VXLAN.
//
// It fails closed: until IPsec is in place (no keys yet, or a kernel without ESP or AES-GCM), the encrypted
// networks are left out of what the node builds (no VXLAN device, no forwarding entries), and a task on one
// is rejected with the reason, never attached in clear.

import {
  type IpsecDataPlane,
  type IpsecPlanInput,
  ipsecDataPlane,
  newKeyRing,
  type SwarmView,
} from '@swarmkit/overlay'
import type { NodeView } from './network-view.js'

export interface EncryptedOverlaysOptions {
  /** The data plane (default: overlay's, in this process's namespace). */
  readonly plane?: IpsecDataPlane
  /**
   * Rejects when this kernel cannot seal (checked once, before anything is installed, so that the answer
   * does not wait for a first peer). Default: installs and removes a loopback ESP state pair.
   */
  readonly probe?: () => Promise<void>
  readonly log?: (line: string) => void
}

/** Whether the kernel makes ESP states with rfc4106(gcm(aes)): a pair for 127.0.0.1 <-> 127.0.0.2, removed at once. */
async function probeKernel(): Promise<void> {
  const plane = ipsecDataPlane()
  try {
    await plane.apply({
      local: '127.0.0.1',
      peers: ['127.0.0.2'],
      ring: newKeyRing(),
      vnis: [],
      table: 'swarmkit_ipsec_probe',
    })
  } finally {
    await plane.clear().catch(() => {})
  }
}

export interface EncryptedOverlays {
  /** Brings the kernel's IPsec to `view` for the node `local` (nothing is touched without encrypted networks). */
  sync(view: NodeView, local: { id: string; addr: string }): Promise<void>
  /** `view` without the encrypted networks this node cannot seal now (what the data plane may build). */
  sealedView(view: NodeView): SwarmView
  /** Why a task on `networks` must not be attached here (an encrypted network not sealed), or undefined. */
  refusal(networks: readonly string[], view: NodeView): string | undefined
  /** Removes what it installed. */
  clear(): Promise<void>
}

/** nftables table and xfrm reqid of one node (nodes sharing a namespace do not clash). */
function names(nodeId: string): { table: string; reqid: number } {
  let h = 0x811c9dc5
  for (const c of nodeId) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return { table: `swarmkit_ipsec_${h.toString(36)}`, reqid: 0x5c000000 + (h & 0xffff) + 1 }
}

/**
 * What IPsec must hold on node `local` for `view`: the peers are the other nodes with a task on one of the
 * encrypted networks; undefined when the view has no encrypted network. Throws when the keys are missing.
 */
export function ipsecInputOf(
  view: NodeView,
  local: { id: string; addr: string },
): IpsecPlanInput | undefined {
  const s = view.security
  if (!s || s.encrypted.length === 0) return undefined
  const encrypted = new Set(s.encrypted)
  if (s.keys.length === 0) throw new Error('no encryption keys from the managers yet')
  const vteps = new Map(view.nodes.map((n) => [n.id, n.vtep]))
  const peers = new Set<string>()
  for (const t of view.tasks)
    if (t.node !== local.id && Object.keys(t.addresses).some((n) => encrypted.has(n))) {
      const vtep = vteps.get(t.node)
      if (vtep && vtep !== local.addr) peers.add(vtep)
    }
  const { table, reqid } = names(local.id)
  return {
    local: local.addr,
    peers: [...peers].sort(),
    ring: { keys: [...s.keys].sort((a, b) => b.tag - a.tag).map((k) => ({ ...k })), rotatedAt: 0 },
    vnis: view.networks.filter((n) => encrypted.has(n.id)).map((n) => n.vni),
    table,
    reqid,
  }
}

export function encryptedOverlays(options: EncryptedOverlaysOptions = {}): EncryptedOverlays {
  const log = options.log ?? (() => {})
  const plane = options.plane ?? ipsecDataPlane()
  /** Why the encrypted networks are not sealed now; undefined once they are (or when there are none). */
  let failure: string | undefined
  let installed = false
  let lastError = ''
  let capability: Promise<string | undefined> | undefined
  const probe = options.probe ?? probeKernel
  const fail = (why: string) => {
    failure = why
    if (failure !== lastError) log(`encrypted overlays: not sealed, left out: ${failure}`)
    lastError = failure
  }

  return {
    async sync(view, local) {
      let input: IpsecPlanInput | undefined
      try {
        input = ipsecInputOf(view, local)
      } catch (err) {
        failure = (err as Error).message
        return
      }
      if (!input) {
        failure = undefined
        if (installed) {
          installed = false
          await plane
            .clear()
            .catch((err) => log(`encrypted overlays: clearing IPsec: ${(err as Error).message}`))
        }
        return
      }
      capability ??= probe().then(
        () => undefined,
        (err) => (err as Error).message,
      )
      const cannot = await capability
      if (cannot !== undefined) return fail(cannot)
      try {
        installed = true
        await plane.apply(input)
        failure = undefined
        lastError = ''
      } catch (err) {
        fail((err as Error).message)
      }
    },

    sealedView(view) {
      const encrypted = new Set(view.security?.encrypted ?? [])
      const { security: _, ...plain } = view
      if (encrypted.size === 0 || failure === undefined) return plain
      // Fail closed: the encrypted networks are not built at all while they cannot be sealed.
      const tasks = view.tasks.flatMap((t) => {
        const addresses = Object.fromEntries(Object.entries(t.addresses).filter(([n]) => !encrypted.has(n)))
        return Object.keys(addresses).length === 0 ? [] : [{ ...t, addresses }]
      })
      return { ...plain, networks: view.networks.filter((n) => !encrypted.has(n.id)), tasks }
    },

    refusal(networks, view) {
      const encrypted = new Set(view.security?.encrypted ?? [])
      const hit = networks.filter((n) => encrypted.has(n))
      if (hit.length === 0) return undefined
      if (failure === undefined) return undefined
      return `encrypted overlay network ${hit.join(', ')} cannot be sealed on this node, so the task is not attached to it in clear: ${failure}`
    },

    async clear() {
      if (!installed) return
      installed = false
      await plane.clear().catch((err) => log(`encrypted overlays: clearing IPsec: ${(err as Error).message}`))
    },
  }
}
