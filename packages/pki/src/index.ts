/**
 * @packageDocumentation
 * `@swarmkit/pki`: swarm's public key infrastructure with Ed25519 (`node:crypto`) and standard X.509
 * that `openssl` and `node:tls` accept.
 *
 * - Root CA: {@link createRootCA}, {@link exportRootCA}, {@link importRootCA}.
 * - Node keys, CSRs and certificates: {@link generateKeyPair}, {@link createCSR}, {@link parseCSR},
 *   {@link issueNodeCertificate}, {@link parseCertificate}.
 * - Trust: {@link verifyChain}, {@link nodeIdentity}, {@link authorize}, {@link authorizer},
 *   {@link revocationList}.
 * - Tokens: {@link generateJoinToken}, {@link parseJoinToken}, {@link checkJoinTokenCA},
 *   {@link rotateJoinToken}, {@link generateUnlockKey}, {@link parseUnlockKey}.
 * - Joining: {@link caServer} (CA side), {@link verifyRootCAResponse}, {@link createJoinRequest},
 *   {@link acceptCertificateResponse} (joiner side), {@link rateLimiter}.
 * - Renewal: {@link renewalScheduler}, {@link renewalTime}. Root rotation: {@link startRootRotation},
 *   {@link finishRootRotation}.
 * - TLS: {@link tlsOptions}, {@link verifyTlsPeer}, {@link peerCertificateIdentity},
 *   {@link joinServerTlsOptions}, {@link joinerTlsOptions}.
 *
 * Every run-time failure is a {@link PkiError} with a `code`; programmer errors are TypeError/RangeError.
 */
export {
  CERT_BACKDATE_MS,
  certificatePem,
  createCSR,
  createRootCA,
  DEFAULT_NODE_CERT_VALIDITY_MS,
  decodePrivateKeyPem,
  type ExportedRootCA,
  encodePrivateKeyPem,
  exportRootCA,
  finishRootRotation,
  generateKeyPair,
  type IssuedCertificate,
  type IssueOptions,
  importRootCA,
  isSignedBy,
  issueNodeCertificate,
  keyPairFromPrivateKey,
  MIN_NODE_CERT_VALIDITY_MS,
  parseCertificate,
  parseCertificates,
  parseCSR,
  ROOT_CA_COMMON_NAME,
  ROOT_CA_VALIDITY_MS,
  type RootCA,
  type RootRotation,
  startRootRotation,
} from './certificates.js'
export { isPkiError, PkiError, type PkiErrorCode } from './errors.js'
export { generateClusterId, generateId, generateNodeId, isValidId } from './ids.js'
export type { RandomBytes } from './internal/crypto.js'
export {
  acceptCertificateResponse,
  type CAServer,
  type CAServerOptions,
  type CertificateResponse,
  caServer,
  createJoinRequest,
  type JoinRequest,
  MAX_CSR_PEM_LENGTH,
  MAX_ROOT_BUNDLE_LENGTH,
  MAX_TOKEN_LENGTH,
  type NodeCredentials,
  type RateLimiter,
  type RateLimiterOptions,
  type RenewRequest,
  type RootCAResponse,
  rateLimiter,
  verifyRootCAResponse,
} from './join.js'
export {
  type CertificateLifetime,
  type RenewalEvents,
  type RenewalScheduler,
  type RenewalSchedulerOptions,
  renewalScheduler,
  renewalTime,
} from './renewal.js'
export {
  type JoinerTlsOptions,
  type JoinServerTlsOptions,
  joinerTlsOptions,
  joinServerTlsOptions,
  type NodeTlsOptions,
  type PeerPolicy,
  peerCertificateIdentity,
  type TlsCredentials,
  tlsOptions,
  verifyTlsPeer,
} from './tls.js'
export {
  caDigest,
  checkJoinTokenCA,
  encodeUnlockKey,
  generateJoinToken,
  generateJoinTokens,
  generateUnlockKey,
  JOIN_TOKEN_LENGTH,
  type JoinToken,
  type JoinTokens,
  joinTokensEqual,
  parseJoinToken,
  parseUnlockKey,
  roleForJoinToken,
  rotateJoinToken,
} from './tokens.js'
export {
  type Certificate,
  type CertificateRequest,
  type CertificateSubject,
  type Clock,
  type DistinguishedName,
  type KeyPair,
  type KeyUsage,
  NODE_ROLES,
  type NodeIdentity,
  type NodeRole,
  type PeerIdentityLike,
  systemClock,
  type TlsSubject,
} from './types.js'
export {
  type AuthorizePolicy,
  authorize,
  authorizer,
  MAX_CHAIN_LENGTH,
  nodeIdentity,
  type RevocationList,
  revocationList,
  type VerifiedChain,
  type VerifyOptions,
  verifyChain,
} from './verify.js'
