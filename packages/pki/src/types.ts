/** A node's role, carried as the OU of its certificate. */
export type NodeRole = 'swarm-manager' | 'swarm-worker'

/** Both roles, manager first. */
export const NODE_ROLES: readonly NodeRole[] = ['swarm-manager', 'swarm-worker']

/** Who a node certificate says its holder is. */
export interface NodeIdentity {
  /** The node ID: the certificate's subject CN (25 base-36 characters). */
  readonly nodeId: string
  /** The role: the certificate's subject OU. */
  readonly role: NodeRole
  /** The cluster ID: the certificate's subject O. */
  readonly clusterId: string
}

/** The subject of a peer certificate as TLS layers usually report it (node's `getPeerCertificate().subject`). */
export interface TlsSubject {
  /** Common name: the node ID. */
  readonly cn: string | readonly string[] | undefined
  /** Organizational unit: the role. */
  readonly ou: string | readonly string[] | undefined
  /** Organization: the cluster ID. */
  readonly o: string | readonly string[] | undefined
}

/**
 * The subject of a peer certificate with long field names, as `@swarmkit/transport` reports a TLS peer
 * (`PeerIdentity`): `commonName` is the node ID, `organizationalUnit` the role, `organization` the cluster.
 */
export interface CertificateSubject {
  readonly commonName: string | readonly string[] | undefined
  readonly organizationalUnit?: string | readonly string[] | undefined
  readonly organization?: string | readonly string[] | undefined
}

/** Any of the identity shapes `authorize` accepts. */
export type PeerIdentityLike = NodeIdentity | TlsSubject | CertificateSubject

/** A distinguished name, reduced to the attributes swarm uses, plus its exact encoding. */
export interface DistinguishedName {
  readonly commonName: string | undefined
  readonly organizationalUnit: readonly string[]
  readonly organization: readonly string[]
  /** Every attribute as `[oid, value]`, in order. */
  readonly attributes: readonly (readonly [string, string])[]
  /** The DER encoding, compared byte for byte when chaining. */
  readonly der: Uint8Array
}

/** An X.509 key usage bit, by its RFC 5280 name. */
export type KeyUsage =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly'

/** A parsed X.509 v3 certificate. Parsing checks structure only; see `verifyChain` for trust. */
export interface Certificate {
  /** The DER encoding. */
  readonly der: Uint8Array
  /** The signed part (TBSCertificate) as DER. */
  readonly tbs: Uint8Array
  readonly version: number
  /** Serial number, lowercase hex. */
  readonly serialNumber: string
  readonly issuer: DistinguishedName
  readonly subject: DistinguishedName
  readonly notBefore: Date
  readonly notAfter: Date
  /** Subject public key algorithm OID (`1.3.101.112` for Ed25519). */
  readonly publicKeyAlgorithm: string
  /** The subject public key bits (32 bytes for Ed25519). */
  readonly publicKey: Uint8Array
  /** Signature algorithm OID (only Ed25519 is accepted). */
  readonly signatureAlgorithm: string
  readonly signature: Uint8Array
  /** basicConstraints cA. */
  readonly isCA: boolean
  readonly pathLength: number | undefined
  /** Key usages, or undefined when the extension is absent. */
  readonly keyUsage: readonly KeyUsage[] | undefined
  /** Extended key usage OIDs, or undefined when the extension is absent. */
  readonly extendedKeyUsage: readonly string[] | undefined
  readonly dnsNames: readonly string[]
  readonly subjectKeyId: Uint8Array | undefined
  readonly authorityKeyId: Uint8Array | undefined
}

/** A parsed PKCS#10 certification request whose signature has been checked. */
export interface CertificateRequest {
  readonly der: Uint8Array
  readonly subject: DistinguishedName
  /** Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array
}

/** An Ed25519 key pair. `privateKey` is the 32-byte RFC 8032 seed: keep it secret. */
export interface KeyPair {
  readonly privateKey: Uint8Array
  readonly publicKey: Uint8Array
}

/**
 * Time source and timers; inject a fake one to test time-dependent behaviour deterministically. `now()` is
 * wall-clock time (ms since the Unix epoch, compared with certificate validity). The same shape as
 * `@swarmkit/transport`'s `Clock`, which is monotonic; pki depends on no swarmkit package, so it owns its own,
 * and any transport `ManualClock` started at an epoch time fits it structurally.
 */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Node's timers hold at most 2^31-1 ms (24.8 days); a longer delay fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface LongTimer {
  timer: ReturnType<typeof setTimeout> | undefined
}

/**
 * The real clock (Date.now and global timers; timers are unref'd so they never hold the process open). Delays
 * longer than a Node timer can hold (a renewal 45 days out) are waited for in steps.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle: LongTimer = { timer: undefined }
    const arm = (left: number): void => {
      const step = Math.min(left, MAX_TIMER_MS)
      handle.timer = setTimeout(() => (left > step ? arm(left - step) : fn()), step)
      handle.timer.unref?.()
    }
    arm(Math.max(0, Number.isFinite(ms) ? ms : 0))
    return handle
  },
  clearTimeout: (h) => clearTimeout((h as LongTimer | undefined)?.timer),
}
