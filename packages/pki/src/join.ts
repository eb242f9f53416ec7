import {
  createCSR,
  generateKeyPair,
  type IssuedCertificate,
  issueNodeCertificate,
  parseCertificates,
  parseCSR,
  type RootCA,
} from './certificates.js'
import { PkiError } from './errors.js'
import { generateNodeId } from './ids.js'
import type { RandomBytes } from './internal/crypto.js'
import { checkJoinTokenCA, type JoinTokens, parseJoinToken, roleForJoinToken } from './tokens.js'
import { type Clock, type KeyPair, type NodeIdentity, type NodeRole, systemClock } from './types.js'
import { verifyChain } from './verify.js'

// ---- messages (plain data: any transport can carry them) ----

/** The CA's answer to "what is your root?": fetched without trust, checked against the token. */
export interface RootCAResponse {
  /** The root CA bundle (PEM) whose SHA-256 the join token carries. */
  readonly certificate: string
}

/** A joiner's request for its first certificate. */
export interface JoinRequest {
  /** PKCS#10 PEM; only its public key is used. */
  readonly csr: string
  /** The worker or manager join token. */
  readonly token: string
}

/** A node's request to renew its certificate (sent over mutual TLS; identity comes from the peer). */
export interface RenewRequest {
  readonly csr: string
}

/** The CA's answer to a join or renewal. */
export interface CertificateResponse {
  readonly nodeId: string
  readonly role: NodeRole
  /** The node certificate followed by intermediates (PEM). */
  readonly certificate: string
}

/** Size limits on what a CA accepts from the network. */
export const MAX_CSR_PEM_LENGTH = 8 * 1024
/** Longest join token a CA accepts from the network. */
export const MAX_TOKEN_LENGTH = 256
/** Longest root CA bundle (PEM) accepted from the network. */
export const MAX_ROOT_BUNDLE_LENGTH = 64 * 1024

// ---- rate limiting ----

/** Per-source token buckets. */
export interface RateLimiter {
  /** Takes one token for `source`; false when its bucket is empty. */
  tryTake(source: string): boolean
  readonly size: number
}

/** A rate limiter's bucket size, refill rate, how many sources it tracks, and its clock. */
export interface RateLimiterOptions {
  /** Bucket size: requests allowed in a burst (default 10). */
  burst?: number
  /** Tokens added per second (default 1). */
  perSecond?: number
  /** Sources tracked at most; the least recently seen are forgotten beyond it (default 10,000). */
  maxSources?: number
  clock?: Pick<Clock, 'now'>
}

/** A token-bucket limiter keyed by source (e.g. the remote address). */
export function rateLimiter(options: RateLimiterOptions = {}): RateLimiter {
  const burst = options.burst ?? 10
  const perSecond = options.perSecond ?? 1
  const maxSources = options.maxSources ?? 10_000
  if (!Number.isFinite(burst) || burst < 1) throw new RangeError('options.burst must be at least 1')
  if (!Number.isFinite(perSecond) || perSecond <= 0)
    throw new RangeError('options.perSecond must be positive')
  if (!Number.isInteger(maxSources) || maxSources < 1)
    throw new RangeError('options.maxSources must be a positive integer')
  const clock = options.clock ?? systemClock
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    tryTake(source) {
      if (typeof source !== 'string') throw new TypeError('source must be a string')
      const now = clock.now()
      const b = buckets.get(source) ?? { tokens: burst, at: now }
      buckets.delete(source) // re-insert: Map order is least recently seen first
      b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * perSecond)
      b.at = now
      const ok = b.tokens >= 1
      if (ok) b.tokens -= 1
      buckets.set(source, b)
      if (buckets.size > maxSources) buckets.delete(buckets.keys().next().value!)
      return ok
    },
    get size() {
      return buckets.size
    },
  }
}

// ---- the CA side ----

/** What a CA server signs with, which join tokens it honours, and its limits. */
export interface CAServerOptions {
  /** The signing CA now (a function, so rotations take effect at once). */
  ca: RootCA | (() => RootCA)
  /** The current join tokens (a function, so token rotation takes effect at once). */
  joinTokens: JoinTokens | (() => JoinTokens)
  clusterId: string
  /**
   * The trust bundle handed to joiners (default: the signing CA's certificate). During a root rotation
   * pass the old root's PEM: the join tokens carry its digest and the cross-signed chain leads to it.
   */
  roots?: string | (() => string)
  /** Node certificate lifetime (default 90 days). */
  certificateValidityMs?: number
  /** Per-source issuance limits (default 10 burst, 1 per second). */
  rateLimit?: RateLimiterOptions
  clock?: Pick<Clock, 'now'>
  random?: RandomBytes
  /** New node IDs (default: 128 random bits in base 36). */
  newNodeId?: () => string
}

/** The certificate authority's half of the join protocol, free of any transport. */
export interface CAServer {
  /** Answers a joiner's unauthenticated request for the root CA. */
  getRootCA(): RootCAResponse
  /**
   * Handles a join: rate limit by `source`, token compared in constant time (manager first) decides the
   * role, a new node ID, a certificate for the CSR's key. Throws `RATE_LIMITED`, `INVALID_JOIN_TOKEN`
   * ("A valid join token is necessary to join this cluster"), `MALFORMED_CSR`, `BAD_CSR_SIGNATURE`, ...
   */
  join(request: JoinRequest, context: { source: string }): CertificateResponse
  /**
   * Renews the certificate of an authenticated node. The caller states the node's current identity
   * (role from the store, so a promotion or demotion takes effect); the CSR gives only the key.
   */
  renew(
    request: RenewRequest,
    context: { source: string; node: { nodeId: string; role: NodeRole } },
  ): CertificateResponse
}

function checkRequestFields(request: unknown, withToken: boolean): asserts request is JoinRequest {
  if (typeof request !== 'object' || request === null)
    throw new PkiError('MALFORMED_CSR', 'request must be an object')
  const r = request as { csr?: unknown; token?: unknown }
  if (typeof r.csr !== 'string') throw new PkiError('MALFORMED_CSR', 'request.csr must be a PEM string')
  if (r.csr.length > MAX_CSR_PEM_LENGTH)
    throw new PkiError('TOO_LARGE', `CSR longer than ${MAX_CSR_PEM_LENGTH}`)
  if (withToken && (typeof r.token !== 'string' || r.token.length > MAX_TOKEN_LENGTH)) {
    throw new PkiError('INVALID_JOIN_TOKEN', 'A valid join token is necessary to join this cluster')
  }
}

/** The CA side of joining and renewal. */
export function caServer(options: CAServerOptions): CAServer {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const caOf = typeof options.ca === 'function' ? options.ca : () => options.ca as RootCA
  const tokensOf =
    typeof options.joinTokens === 'function' ? options.joinTokens : () => options.joinTokens as JoinTokens
  if (typeof options.clusterId !== 'string') throw new TypeError('options.clusterId must be a string')
  const rootsOf =
    options.roots === undefined
      ? () => caOf().pem
      : typeof options.roots === 'function'
        ? options.roots
        : () => options.roots as string
  const clock = options.clock ?? systemClock
  const limiter = rateLimiter({ ...options.rateLimit, clock: options.rateLimit?.clock ?? clock })
  const newNodeId = options.newNodeId ?? (() => generateNodeId(options.random))
  const issue = (csr: string, nodeId: string, role: NodeRole): CertificateResponse => {
    const ca = caOf()
    const issued: IssuedCertificate = issueNodeCertificate(ca, parseCSR(csr), {
      nodeId,
      role,
      clusterId: options.clusterId,
      now: clock.now(),
      ...(options.certificateValidityMs !== undefined ? { validityMs: options.certificateValidityMs } : {}),
      ...(options.random ? { random: options.random } : {}),
    })
    return { nodeId, role, certificate: issued.chain }
  }
  const limit = (source: string) => {
    if (typeof source !== 'string') throw new TypeError('context.source must be a string')
    if (!limiter.tryTake(source))
      throw new PkiError('RATE_LIMITED', `too many certificate requests from ${source}`)
  }
  return {
    getRootCA: () => ({ certificate: rootsOf() }),
    join(request, context) {
      limit(context?.source)
      checkRequestFields(request, true)
      const role = roleForJoinToken(request.token, tokensOf())
      return issue(request.csr, newNodeId(), role)
    },
    renew(request, context) {
      limit(context?.source)
      checkRequestFields(request, false)
      const node = context.node
      if (!node || typeof node.nodeId !== 'string') throw new TypeError('context.node must name the node')
      return issue(request.csr, node.nodeId, node.role)
    },
  }
}

// ---- the joiner side ----

/**
 * Checks the root CA fetched from a remote (without trusting it) against the digest in the join token.
 * Returns the trust bundle; throws `CA_MISMATCH` "remote CA does not match fingerprint".
 */
export function verifyRootCAResponse(token: string, response: RootCAResponse): string {
  const parsed = parseJoinToken(token)
  if (typeof response !== 'object' || response === null || typeof response.certificate !== 'string') {
    throw new PkiError('MALFORMED_PEM', 'root CA response must carry a PEM certificate')
  }
  if (response.certificate.length > MAX_ROOT_BUNDLE_LENGTH)
    throw new PkiError('TOO_LARGE', 'root CA bundle too large')
  checkJoinTokenCA(parsed, response.certificate)
  const roots = parseCertificates(response.certificate)
  for (const r of roots)
    if (!r.isCA) throw new PkiError('NOT_A_CA', 'remote root is not a certificate authority')
  return response.certificate
}

/** A join request for `token`, with a new key pair unless one is given. */
export function createJoinRequest(
  token: string,
  options: { key?: KeyPair; random?: RandomBytes } = {},
): { key: KeyPair; request: JoinRequest } {
  parseJoinToken(token)
  const key = options.key ?? generateKeyPair(options.random ? { random: options.random } : {})
  return { key, request: { csr: createCSR(key.privateKey), token } }
}

/** Everything a node needs for mutual TLS. */
export interface NodeCredentials {
  readonly identity: NodeIdentity
  readonly key: KeyPair
  /** Node certificate and intermediates (PEM). */
  readonly certificate: string
  /** Trust anchors (PEM). */
  readonly roots: string
}

/**
 * Accepts the CA's answer: the chain must verify under the trusted roots, carry our public key and
 * the role asked for (if given). Returns the node's credentials.
 */
export function acceptCertificateResponse(
  response: CertificateResponse,
  options: { key: KeyPair; roots: string; now?: Date | number; expectedRole?: NodeRole },
): NodeCredentials {
  if (typeof options !== 'object' || options === null || !(options.key?.publicKey instanceof Uint8Array)) {
    throw new TypeError("options.key must be the joiner's KeyPair")
  }
  if (typeof options.roots !== 'string') throw new TypeError('options.roots must be the trusted root PEM')
  if (typeof response !== 'object' || response === null || typeof response.certificate !== 'string') {
    throw new PkiError('MALFORMED_PEM', 'certificate response must carry a PEM chain')
  }
  const chain = parseCertificates(response.certificate)
  const verified = verifyChain(chain, {
    roots: options.roots,
    ...(options.now !== undefined ? { now: options.now } : {}),
  })
  if (Buffer.compare(chain[0]!.publicKey, options.key.publicKey) !== 0) {
    throw new PkiError('KEY_MISMATCH', 'issued certificate is not for our key')
  }
  if (verified.identity.nodeId !== response.nodeId || verified.identity.role !== response.role) {
    throw new PkiError('NOT_A_NODE_CERTIFICATE', 'certificate does not match the response')
  }
  if (options.expectedRole && verified.identity.role !== options.expectedRole) {
    throw new PkiError(
      'NOT_A_NODE_CERTIFICATE',
      `expected role ${options.expectedRole}, got ${verified.identity.role}`,
    )
  }
  return {
    identity: verified.identity,
    key: options.key,
    certificate: response.certificate,
    roots: options.roots,
  }
}
