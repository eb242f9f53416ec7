import { PkiError } from './errors.js'
import { isValidId } from './ids.js'
import { defaultRandom, edGenerate, edPublicKey, type RandomBytes } from './internal/crypto.js'
import { decodePem, decodePemOf, encodePem } from './internal/pem.js'
import {
  decodePkcs8,
  encodeCsr,
  encodeName,
  encodePkcs8,
  encodeTbs,
  keyIdentifier,
  parseCertificateDer,
  parseCsrDer,
  signatureVerifies,
  signCertificate,
} from './internal/x509.js'
import { generateJoinTokens, type JoinTokens } from './tokens.js'
import {
  type Certificate,
  type CertificateRequest,
  type KeyPair,
  NODE_ROLES,
  type NodeRole,
} from './types.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
/** Root CA lifetime: 20 years. */
export const ROOT_CA_VALIDITY_MS = 20 * 365 * DAY
/** Default node certificate lifetime: 90 days. */
export const DEFAULT_NODE_CERT_VALIDITY_MS = 90 * DAY
/** Shortest node certificate lifetime accepted: 1 hour. */
export const MIN_NODE_CERT_VALIDITY_MS = HOUR
/** Node certificates start this long before their issuance, to absorb clock skew. */
export const CERT_BACKDATE_MS = HOUR
/** The root CA's common name. */
export const ROOT_CA_COMMON_NAME = 'swarm-ca'

// ---- keys ----

function checkSeed(key: unknown, what: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 32)
    throw new TypeError(`${what} must be a 32-byte Ed25519 seed`)
  return key
}

/** A new Ed25519 key pair. */
export function generateKeyPair(options: { random?: RandomBytes } = {}): KeyPair {
  const random = options.random ?? defaultRandom
  if (typeof random !== 'function') throw new TypeError('options.random must be a function')
  if (random === defaultRandom) {
    const { seed, publicKey } = edGenerate()
    return { privateKey: seed, publicKey }
  }
  const privateKey = checkSeed(random(32), 'random(32)')
  return { privateKey, publicKey: edPublicKey(privateKey) }
}

/** The key pair of a 32-byte Ed25519 seed. */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  checkSeed(privateKey, 'privateKey')
  return { privateKey, publicKey: edPublicKey(privateKey) }
}

/** PKCS#8 PEM (`PRIVATE KEY`) of an Ed25519 seed, as `openssl genpkey -algorithm ed25519` writes it. */
export function encodePrivateKeyPem(privateKey: Uint8Array): string {
  return encodePem('PRIVATE KEY', encodePkcs8(checkSeed(privateKey, 'privateKey')))
}

/** Reads a PKCS#8 PEM Ed25519 private key (`MALFORMED_PEM`, `MALFORMED_KEY`, `KEY_MISMATCH`). */
export function decodePrivateKeyPem(pem: string | Uint8Array): KeyPair {
  const blocks = decodePemOf(pem, 'PRIVATE KEY')
  if (blocks.length !== 1) throw new PkiError('MALFORMED_PEM', 'expected exactly one PRIVATE KEY block')
  const { seed, publicKey } = decodePkcs8(blocks[0]!)
  const derived = edPublicKey(seed)
  if (publicKey && Buffer.compare(publicKey, derived) !== 0) {
    throw new PkiError('KEY_MISMATCH', 'embedded public key does not match the private key')
  }
  return { privateKey: seed, publicKey: derived }
}

// ---- certificates ----

/** Parses one certificate from PEM or DER (structure only; see `verifyChain`). */
export function parseCertificate(input: string | Uint8Array): Certificate {
  if (typeof input === 'string') {
    const ders = decodePemOf(input, 'CERTIFICATE')
    if (ders.length !== 1)
      throw new PkiError('MALFORMED_PEM', `expected one certificate, found ${ders.length}`)
    return parseCertificateDer(ders[0]!)
  }
  if (input instanceof Uint8Array) return parseCertificateDer(input)
  throw new TypeError('input must be a PEM string or DER bytes')
}

/** Parses every certificate of a PEM bundle, in order. */
export function parseCertificates(pem: string | Uint8Array): Certificate[] {
  return decodePemOf(pem, 'CERTIFICATE').map(parseCertificateDer)
}

/** PEM of one or more certificates. */
export function certificatePem(certs: Certificate | readonly Certificate[]): string {
  const list = Array.isArray(certs) ? certs : [certs as Certificate]
  return list.map((c) => encodePem('CERTIFICATE', c.der)).join('')
}

// ---- CSRs ----

/**
 * A PKCS#10 request signed with `privateKey`. Its subject is informational only: the CA takes nothing
 * from a CSR but the public key.
 */
export function createCSR(privateKey: Uint8Array, options: { commonName?: string } = {}): string {
  checkSeed(privateKey, 'privateKey')
  const cn = options.commonName
  if (cn !== undefined && (typeof cn !== 'string' || cn.length === 0 || cn.length > 64)) {
    throw new TypeError('options.commonName must be a string of 1 to 64 characters')
  }
  const subject = encodeName(cn === undefined ? {} : { commonName: cn })
  return encodePem('CERTIFICATE REQUEST', encodeCsr(subject, privateKey, edPublicKey(privateKey)))
}

/** Parses a PEM or DER CSR and checks its self-signature (`MALFORMED_CSR`, `BAD_CSR_SIGNATURE`, ...). */
export function parseCSR(input: string | Uint8Array): CertificateRequest {
  let der: Uint8Array
  if (typeof input === 'string') {
    const blocks = decodePem(input)
    if (
      blocks.length !== 1 ||
      (blocks[0]!.label !== 'CERTIFICATE REQUEST' && blocks[0]!.label !== 'NEW CERTIFICATE REQUEST')
    ) {
      throw new PkiError('MALFORMED_PEM', 'expected one CERTIFICATE REQUEST block')
    }
    der = blocks[0]!.der
  } else if (input instanceof Uint8Array) der = input
  else throw new TypeError('csr must be a PEM string or DER bytes')
  return parseCsrDer(der)
}

// ---- the root CA ----

/**
 * A certificate authority able to sign: its certificate, its private key (the 32-byte Ed25519 seed; keep
 * it in the replicated store, never in a file) and, during a root rotation, the chain that links it to the
 * old root (certificates sent along with every issued certificate).
 */
export interface RootCA {
  readonly certificate: Certificate
  /** The certificate as PEM: the trust bundle whose digest join tokens carry. */
  readonly pem: string
  readonly privateKey: Uint8Array
  /** Certificates between this CA and the trust anchor, issuer first (empty outside rotation). */
  readonly intermediates: readonly Certificate[]
}

/** A root CA in exportable form (PEM strings), e.g. for the replicated store. */
export interface ExportedRootCA {
  readonly certificate: string
  readonly key: string
  readonly intermediates?: string
}

function toMs(t: Date | number | undefined, what: string): number {
  if (t === undefined) return Date.now()
  const ms = t instanceof Date ? t.getTime() : t
  if (typeof ms !== 'number' || !Number.isFinite(ms))
    throw new TypeError(`${what} must be a Date or epoch milliseconds`)
  return ms
}

function randomSerial(random: RandomBytes): Uint8Array {
  const s = random(16)
  if (!(s instanceof Uint8Array) || s.length !== 16) throw new RangeError('random(16) must return 16 bytes')
  const out = s.slice()
  out[0] = (out[0]! & 0x7f) | 0x40 // positive, 16 octets, never zero
  return out
}

/** Creates a root CA: a new Ed25519 key and a self-signed certificate (CN `swarm-ca`, 20 years). */
export function createRootCA(
  options: { now?: Date | number; validityMs?: number; privateKey?: Uint8Array; random?: RandomBytes } = {},
): RootCA {
  const now = toMs(options.now, 'options.now')
  const validity = options.validityMs ?? ROOT_CA_VALIDITY_MS
  if (!Number.isFinite(validity) || validity < HOUR)
    throw new RangeError('options.validityMs must be at least 1 hour')
  const random = options.random ?? defaultRandom
  const key = options.privateKey ? keyPairFromPrivateKey(options.privateKey) : generateKeyPair({ random })
  const name = encodeName({ commonName: ROOT_CA_COMMON_NAME })
  const ski = keyIdentifier(key.publicKey)
  const tbs = encodeTbs({
    serial: randomSerial(random),
    issuer: name,
    subject: name,
    notBefore: new Date(now - CERT_BACKDATE_MS),
    notAfter: new Date(now - CERT_BACKDATE_MS + validity),
    publicKey: key.publicKey,
    isCA: true,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    subjectKeyId: ski,
  })
  const certificate = parseCertificateDer(signCertificate(tbs, key.privateKey))
  return { certificate, pem: certificatePem(certificate), privateKey: key.privateKey, intermediates: [] }
}

/** The root CA as PEM strings (the private key as PKCS#8). */
export function exportRootCA(ca: RootCA): ExportedRootCA {
  checkRootCA(ca)
  const out: ExportedRootCA = { certificate: ca.pem, key: encodePrivateKeyPem(ca.privateKey) }
  return ca.intermediates.length ? { ...out, intermediates: certificatePem(ca.intermediates) } : out
}

/** Reads an exported root CA, checking that it is a CA and that the key matches the certificate. */
export function importRootCA(exported: ExportedRootCA): RootCA {
  if (typeof exported !== 'object' || exported === null) throw new TypeError('exported must be an object')
  if (typeof exported.certificate !== 'string' || typeof exported.key !== 'string') {
    throw new TypeError('exported.certificate and exported.key must be PEM strings')
  }
  const certificate = parseCertificate(exported.certificate)
  const key = decodePrivateKeyPem(exported.key)
  if (!certificate.isCA || !certificate.keyUsage?.includes('keyCertSign')) {
    throw new PkiError('NOT_A_CA', 'certificate is not a signing CA')
  }
  if (Buffer.compare(certificate.publicKey, key.publicKey) !== 0) {
    throw new PkiError('KEY_MISMATCH', 'private key does not match the CA certificate')
  }
  const intermediates = exported.intermediates ? parseCertificates(exported.intermediates) : []
  return { certificate, pem: certificatePem(certificate), privateKey: key.privateKey, intermediates }
}

function checkRootCA(ca: RootCA): void {
  if (typeof ca !== 'object' || ca === null || !ca.certificate || !(ca.privateKey instanceof Uint8Array)) {
    throw new TypeError('ca must be a RootCA')
  }
}

/** What the CA decides about a node certificate. */
export interface IssueOptions {
  nodeId: string
  role: NodeRole
  clusterId: string
  /** Lifetime in ms (default 90 days, at least 1 hour). */
  validityMs?: number
  /** Issuance time (default now); the certificate starts 1 hour earlier. */
  now?: Date | number
  random?: RandomBytes
}

/** A freshly issued node certificate. */
export interface IssuedCertificate {
  readonly certificate: Certificate
  /** The node certificate as PEM. */
  readonly pem: string
  /** The node certificate followed by the CA's intermediates: what the node presents in TLS. */
  readonly chain: string
}

/**
 * Issues a node certificate for the public key of `csr` (whose signature is checked). Everything else
 * comes from the CA's decision: CN = node ID, OU = role, O = cluster ID, DNS SANs role and node ID
 * (and `swarm-ca` for managers), digital signature and key encipherment, server and client auth.
 */
export function issueNodeCertificate(
  ca: RootCA,
  csr: string | Uint8Array | CertificateRequest,
  options: IssueOptions,
): IssuedCertificate {
  checkRootCA(ca)
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const { nodeId, role, clusterId } = options
  if (!isValidId(nodeId)) throw new TypeError('options.nodeId must be 25 lowercase base-36 characters')
  if (!isValidId(clusterId)) throw new TypeError('options.clusterId must be 25 lowercase base-36 characters')
  if (!NODE_ROLES.includes(role)) throw new TypeError('options.role must be swarm-manager or swarm-worker')
  const validity = options.validityMs ?? DEFAULT_NODE_CERT_VALIDITY_MS
  if (typeof validity !== 'number' || !Number.isFinite(validity) || validity < MIN_NODE_CERT_VALIDITY_MS) {
    throw new RangeError('options.validityMs must be at least 1 hour')
  }
  const request = typeof csr === 'object' && 'publicKey' in csr && 'subject' in csr ? csr : parseCSR(csr)
  const now = toMs(options.now, 'options.now')
  const dnsNames = role === 'swarm-manager' ? [role, nodeId, ROOT_CA_COMMON_NAME] : [role, nodeId]
  const tbs = encodeTbs({
    serial: randomSerial(options.random ?? defaultRandom),
    issuer: ca.certificate.subject.der,
    subject: encodeName({ organization: clusterId, organizationalUnit: role, commonName: nodeId }),
    notBefore: new Date(now - CERT_BACKDATE_MS),
    notAfter: new Date(now - CERT_BACKDATE_MS + validity),
    publicKey: request.publicKey,
    isCA: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extendedKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
    dnsNames,
    subjectKeyId: keyIdentifier(request.publicKey),
    authorityKeyId: ca.certificate.subjectKeyId ?? keyIdentifier(ca.certificate.publicKey),
  })
  const der = signCertificate(tbs, ca.privateKey)
  const pem = encodePem('CERTIFICATE', der)
  let parsed: Certificate | undefined
  return {
    // Parsed when asked: a CA answering a join sends the PEM chain only, and parsing back what it had just
    // encoded took 1.4% of a manager's CPU in a 5,000-node join storm.
    get certificate() {
      parsed ??= parseCertificateDer(der)
      return parsed
    },
    pem,
    chain: pem + certificatePem(ca.intermediates),
  }
}

// ---- root rotation ----

/** A root rotation in progress. */
export interface RootRotation {
  /** The current trust anchor. */
  readonly oldCA: RootCA
  /** The new root; its `intermediates` hold the cross-signed certificate, so what it issues chains to the old root. */
  readonly newCA: RootCA
  /** The new root's certificate signed by the old root key. */
  readonly crossSigned: Certificate
}

/**
 * Starts a root rotation: a new root key and self-signed certificate, and the same subject and key
 * cross-signed by the old root. Issue with `rotation.newCA` while nodes re-issue: their chains
 * (leaf + cross-signed) verify under the old root and, once it is the anchor, under the new one.
 */
export function startRootRotation(
  oldCA: RootCA,
  options: { now?: Date | number; validityMs?: number; privateKey?: Uint8Array; random?: RandomBytes } = {},
): RootRotation {
  checkRootCA(oldCA)
  if (oldCA.intermediates.length)
    throw new PkiError('ROTATION_IN_PROGRESS', 'a root rotation is already in progress')
  const fresh = createRootCA(options)
  const now = toMs(options.now, 'options.now')
  const notAfter = Math.min(fresh.certificate.notAfter.getTime(), oldCA.certificate.notAfter.getTime())
  const tbs = encodeTbs({
    serial: randomSerial(options.random ?? defaultRandom),
    issuer: oldCA.certificate.subject.der,
    subject: fresh.certificate.subject.der,
    notBefore: new Date(now - CERT_BACKDATE_MS),
    notAfter: new Date(notAfter),
    publicKey: fresh.certificate.publicKey,
    isCA: true,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    subjectKeyId: fresh.certificate.subjectKeyId!,
    authorityKeyId: oldCA.certificate.subjectKeyId ?? keyIdentifier(oldCA.certificate.publicKey),
  })
  const crossSigned = parseCertificateDer(signCertificate(tbs, oldCA.privateKey))
  return { oldCA, newCA: { ...fresh, intermediates: [crossSigned] }, crossSigned }
}

/**
 * Ends a rotation once every node holds a certificate from the new root: the new root becomes the trust
 * anchor (no intermediates) and both join tokens are regenerated for its digest (old tokens stop working).
 */
export function finishRootRotation(
  rotation: RootRotation,
  options: { random?: RandomBytes } = {},
): { ca: RootCA; joinTokens: JoinTokens } {
  if (typeof rotation !== 'object' || rotation === null || !rotation.newCA) {
    throw new TypeError('rotation must be a RootRotation')
  }
  const ca: RootCA = { ...rotation.newCA, intermediates: [] }
  return { ca, joinTokens: generateJoinTokens(ca.pem, options) }
}

/** True if `cert` was signed by `issuer`'s key. */
export function isSignedBy(cert: Certificate, issuer: Certificate): boolean {
  return signatureVerifies(cert, issuer.publicKey)
}
