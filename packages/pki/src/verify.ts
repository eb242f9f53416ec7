import { parseCertificate, parseCertificates } from './certificates.js'
import { PkiError } from './errors.js'
import { isValidId } from './ids.js'
import { signatureVerifies } from './internal/x509.js'
import {
  type Certificate,
  NODE_ROLES,
  type NodeIdentity,
  type NodeRole,
  type PeerIdentityLike,
} from './types.js'

/** Longest chain accepted (leaf, intermediates, root). */
export const MAX_CHAIN_LENGTH = 4

/** Removed nodes, denied until their certificates expire. */
export interface RevocationList {
  /** Denies `nodeId` until `until` (the expiry of the last certificate issued to it). */
  revoke(nodeId: string, until: Date | number): void
  /** True if `nodeId` is denied at `now` (default: the current time). */
  isRevoked(nodeId: string, now?: Date | number): boolean
  /** Forgets entries whose certificates have all expired; returns how many were dropped. */
  prune(now?: Date | number): number
  /** The entries, for persisting in the replicated store. */
  entries(): { nodeId: string; until: number }[]
  readonly size: number
}

function ms(t: Date | number | undefined, what: string): number {
  if (t === undefined) return Date.now()
  const v = t instanceof Date ? t.getTime() : t
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`${what} must be a Date or epoch milliseconds`)
  return v
}

/** A new revocation list, optionally restored from `entries()`. */
export function revocationList(entries: Iterable<{ nodeId: string; until: number }> = []): RevocationList {
  const map = new Map<string, number>()
  const list: RevocationList = {
    revoke(nodeId, until) {
      if (typeof nodeId !== 'string' || nodeId.length === 0)
        throw new TypeError('nodeId must be a non-empty string')
      const u = ms(until, 'until')
      map.set(nodeId, Math.max(u, map.get(nodeId) ?? -Infinity))
    },
    isRevoked(nodeId, now) {
      const until = map.get(nodeId)
      return until !== undefined && ms(now, 'now') < until
    },
    prune(now) {
      const t = ms(now, 'now')
      let n = 0
      for (const [id, until] of map) {
        if (until <= t) {
          map.delete(id)
          n++
        }
      }
      return n
    },
    entries: () => [...map].map(([nodeId, until]) => ({ nodeId, until })),
    get size() {
      return map.size
    },
  }
  for (const e of entries) list.revoke(e.nodeId, e.until)
  return list
}

/**
 * The identity a node certificate carries: CN = node ID, OU = role, O = cluster ID.
 * Throws `NOT_A_NODE_CERTIFICATE` when the subject is not a swarm node's.
 */
export function nodeIdentity(cert: Certificate | string | Uint8Array): NodeIdentity {
  const c =
    typeof cert === 'object' && cert !== null && 'tbs' in cert ? cert : parseCertificate(cert as string)
  const { commonName, organizationalUnit, organization } = c.subject
  if (commonName === undefined || organizationalUnit.length !== 1 || organization.length !== 1) {
    throw new PkiError(
      'NOT_A_NODE_CERTIFICATE',
      'certificate subject is not CN=<node>, OU=<role>, O=<cluster>',
    )
  }
  const role = organizationalUnit[0] as NodeRole
  if (!NODE_ROLES.includes(role))
    throw new PkiError('NOT_A_NODE_CERTIFICATE', `unknown role ${JSON.stringify(role)}`)
  if (!isValidId(commonName) || !isValidId(organization[0])) {
    throw new PkiError('NOT_A_NODE_CERTIFICATE', 'node or cluster ID is malformed')
  }
  return { nodeId: commonName, role, clusterId: organization[0] }
}

/** What `verifyChain` and `authorize` check beyond the signatures. */
export interface VerifyOptions {
  /** Trust anchors: PEM bundle or parsed certificates. */
  roots: string | readonly Certificate[]
  /** Time of the check (default now). */
  now?: Date | number
  /** The cluster the peer must belong to (`WRONG_CLUSTER` otherwise). */
  clusterId?: string
  /** Roles accepted (`UNAUTHORIZED_ROLE` otherwise). */
  roles?: readonly NodeRole[]
  /** Removed nodes (`REVOKED`). */
  revocations?: RevocationList
}

/** A verified chain. */
export interface VerifiedChain {
  readonly identity: NodeIdentity
  /** Leaf first, ending with the trust anchor that verified it. */
  readonly path: readonly Certificate[]
}

function checkTime(c: Certificate, now: number, what: string): void {
  if (now < c.notBefore.getTime()) {
    throw new PkiError('NOT_YET_VALID', `${what} is not valid before ${c.notBefore.toISOString()}`)
  }
  if (now > c.notAfter.getTime())
    throw new PkiError('EXPIRED', `${what} expired at ${c.notAfter.toISOString()}`)
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.compare(a, b) === 0
}

/** Could `issuer` have issued `cert` (names, key identifiers)? Signature not checked. */
function mayIssue(cert: Certificate, issuer: Certificate): boolean {
  if (!sameBytes(cert.issuer.der, issuer.subject.der)) return false
  if (cert.authorityKeyId && issuer.subjectKeyId && !sameBytes(cert.authorityKeyId, issuer.subjectKeyId))
    return false
  return true
}

/**
 * Verifies a node certificate chain (leaf first, then intermediates; PEM bundle or parsed) against trust
 * anchors, then the node's identity against the options. Throws a `PkiError` whose code names the reason:
 * `EXPIRED`, `NOT_YET_VALID`, `UNKNOWN_ISSUER`, `BAD_SIGNATURE`, `NOT_A_CA`, `CHAIN_TOO_LONG`,
 * `NOT_A_NODE_CERTIFICATE`, `WRONG_CLUSTER`, `UNAUTHORIZED_ROLE`, `REVOKED`.
 */
export function verifyChain(
  chain: string | Uint8Array | readonly Certificate[],
  options: VerifyOptions,
): VerifiedChain {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const certs = Array.isArray(chain)
    ? (chain as readonly Certificate[])
    : chain instanceof Uint8Array
      ? [parseCertificate(chain)]
      : parseCertificates(chain as string)
  if (certs.length === 0) throw new TypeError('chain must hold at least one certificate')
  if (certs.length > MAX_CHAIN_LENGTH)
    throw new PkiError('CHAIN_TOO_LONG', `chain longer than ${MAX_CHAIN_LENGTH}`)
  const roots = typeof options.roots === 'string' ? parseCertificates(options.roots) : options.roots
  if (!Array.isArray(roots) || roots.length === 0)
    throw new TypeError('options.roots must hold at least one certificate')
  const now = ms(options.now, 'options.now')
  const leaf = certs[0]!
  if (leaf.isCA) throw new PkiError('NOT_A_NODE_CERTIFICATE', 'the leaf certificate is a CA')
  if (leaf.keyUsage && !leaf.keyUsage.includes('digitalSignature')) {
    throw new PkiError(
      'NOT_A_NODE_CERTIFICATE',
      'the leaf certificate may not sign (no digitalSignature usage)',
    )
  }
  checkTime(leaf, now, 'certificate')
  const path: Certificate[] = [leaf]
  let current = leaf
  const intermediates = certs.slice(1)
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_CHAIN_LENGTH)
      throw new PkiError('CHAIN_TOO_LONG', `no trust anchor within ${MAX_CHAIN_LENGTH}`)
    let badSignature = false
    const anchor = roots.find((r) => {
      if (!mayIssue(current, r)) return false
      if (signatureVerifies(current, r.publicKey)) return true
      badSignature = true
      return false
    })
    if (anchor) {
      checkCA(anchor, now, 'trust anchor', path.length - 1)
      path.push(anchor)
      break
    }
    const next = intermediates.find((c) => {
      if (path.includes(c) || !mayIssue(current, c)) return false
      if (signatureVerifies(current, c.publicKey)) return true
      badSignature = true
      return false
    })
    if (!next) {
      if (badSignature) throw new PkiError('BAD_SIGNATURE', 'certificate signature does not verify')
      throw new PkiError('UNKNOWN_ISSUER', 'certificate signed by unknown authority')
    }
    checkCA(next, now, 'intermediate', path.length - 1)
    path.push(next)
    current = next
  }
  const identity = nodeIdentity(leaf)
  checkPolicy(identity, options, now)
  return { identity, path }
}

/** `below` counts the intermediate CAs between this CA and the leaf (for pathLenConstraint). */
function checkCA(c: Certificate, now: number, what: string, below: number): void {
  if (!c.isCA || (c.keyUsage && !c.keyUsage.includes('keyCertSign'))) {
    throw new PkiError('NOT_A_CA', `${what} is not a certificate authority`)
  }
  if (c.pathLength !== undefined && below > c.pathLength) {
    throw new PkiError('CHAIN_TOO_LONG', `${what} allows at most ${c.pathLength} intermediates below it`)
  }
  checkTime(c, now, what)
}

function checkPolicy(
  identity: NodeIdentity,
  p: { roles?: readonly NodeRole[]; clusterId?: string; revocations?: RevocationList },
  now: number,
): void {
  if (p.roles !== undefined && !p.roles.includes(identity.role)) {
    throw new PkiError(
      'UNAUTHORIZED_ROLE',
      `Permission denied: remote certificate not part of OUs: [${p.roles.join(' ')}]`,
    )
  }
  if (p.revocations?.isRevoked(identity.nodeId, now)) {
    throw new PkiError('REVOKED', `Permission denied: node ${identity.nodeId} was removed from swarm`)
  }
  if (p.clusterId !== undefined && identity.clusterId !== p.clusterId) {
    throw new PkiError(
      'WRONG_CLUSTER',
      `Permission denied: remote certificate not part of organization: ${p.clusterId}`,
    )
  }
}

/** Who may call: the policy of `authorize`. */
export interface AuthorizePolicy {
  /** Roles (certificate OUs) allowed. */
  roles: readonly NodeRole[]
  /** The cluster ID the certificate's O must equal. */
  clusterId: string
  /** Removed nodes, denied until their certificates expire. */
  revocations?: RevocationList
  /** Time for the revocation check (default now). */
  now?: Date | number
}

function single(v: string | readonly string[] | undefined, what: string): string {
  const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : []
  if (list.length !== 1 || typeof list[0] !== 'string') {
    throw new PkiError('NOT_A_NODE_CERTIFICATE', `peer certificate must have exactly one ${what}`)
  }
  return list[0]
}

/**
 * Authorizes an already TLS-verified peer, swarm's way: its role (OU) must be among `roles`, it must not be
 * revoked, and its organization (O) must be `clusterId`. `identity` may be a {@link NodeIdentity}
 * `{ nodeId, role, clusterId }`, a TLS subject `{ cn, ou, o }` (e.g. node's `getPeerCertificate().subject`
 * as `{ cn: s.CN, ou: s.OU, o: s.O }`), or `{ commonName, organizationalUnit, organization }` (the
 * transport's `PeerIdentity`): CN is the node ID, OU the role, O the cluster ID, each exactly one value.
 * Returns the node identity or throws `UNAUTHORIZED_ROLE`, `REVOKED`, `WRONG_CLUSTER` or
 * `NOT_A_NODE_CERTIFICATE`, with swarm's "Permission denied: …" messages.
 */
export function authorize(identity: PeerIdentityLike, policy: AuthorizePolicy): NodeIdentity {
  if (typeof identity !== 'object' || identity === null) throw new TypeError('identity must be an object')
  if (typeof policy !== 'object' || policy === null || !Array.isArray(policy.roles)) {
    throw new TypeError('policy.roles must be an array of roles')
  }
  if (typeof policy.clusterId !== 'string') throw new TypeError('policy.clusterId must be a string')
  let id: NodeIdentity
  if ('nodeId' in identity) {
    id = identity
  } else {
    const [cn, ou, o] =
      'commonName' in identity
        ? [identity.commonName, identity.organizationalUnit, identity.organization]
        : [identity.cn, identity.ou, identity.o]
    const role = single(ou, 'OU') as NodeRole
    if (!NODE_ROLES.includes(role)) {
      throw new PkiError(
        'UNAUTHORIZED_ROLE',
        `Permission denied: remote certificate not part of OUs: [${policy.roles.join(' ')}]`,
      )
    }
    id = { nodeId: single(cn, 'CN'), role, clusterId: single(o, 'O') }
  }
  checkPolicy(id, policy, ms(policy.now, 'policy.now'))
  return id
}

/**
 * A ready-made TLS authorization hook: returns `true` for an authorized peer and throws the
 * {@link authorize} error otherwise, e.g. `tlsTransport({ …, authorize: authorizer({ roles, clusterId }) })`.
 * `policy.now` is ignored: each call checks revocation at the current time.
 */
export function authorizer(policy: Omit<AuthorizePolicy, 'now'>): (identity: PeerIdentityLike) => true {
  if (typeof policy !== 'object' || policy === null || !Array.isArray(policy.roles)) {
    throw new TypeError('policy.roles must be an array of roles')
  }
  if (typeof policy.clusterId !== 'string') throw new TypeError('policy.clusterId must be a string')
  const fixed: AuthorizePolicy = { roles: [...policy.roles], clusterId: policy.clusterId }
  if (policy.revocations) fixed.revocations = policy.revocations
  return (identity) => {
    authorize(identity, fixed)
    return true
  }
}
