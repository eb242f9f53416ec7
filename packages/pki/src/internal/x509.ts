// X.509 v3 certificates, PKCS#10 requests and PKCS#8 Ed25519 keys: building and strict parsing.
import { PkiError } from '../errors.js'
import type { Certificate, CertificateRequest, DistinguishedName, KeyUsage } from '../types.js'
import { edSign, edVerify, sha256 } from './crypto.js'
import {
  ascii,
  bitString,
  bool,
  concat,
  type DerNode,
  decodeDer,
  expectTag,
  explicit,
  ia5String,
  octetString,
  oid,
  readBitString,
  readBoolean,
  readOctetAlignedBits,
  readOctetString,
  readOid,
  readSmallInteger,
  readString,
  readTime,
  readUnsignedInteger,
  seq,
  seqOf,
  setOf,
  smallInteger,
  TAG,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der.js'

export const OID = {
  ed25519: '1.3.101.112',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

const KEY_USAGES: readonly KeyUsage[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
]

/** Certificates larger than this are refused before decoding. */
export const MAX_CERT_SIZE = 16 * 1024

function malformed(code: 'MALFORMED_CERTIFICATE' | 'MALFORMED_CSR' | 'MALFORMED_KEY', fn: () => void): void {
  try {
    fn()
  } catch (err) {
    if (err instanceof PkiError && err.code === 'MALFORMED_DER')
      throw new PkiError(code, err.message, { cause: err })
    throw err
  }
}

// ---- names ----

export interface NameInput {
  commonName?: string
  organizationalUnit?: string
  organization?: string
}

export function encodeName(n: NameInput): Uint8Array {
  const rdns: Uint8Array[] = []
  const add = (o: string, v: string | undefined) => {
    if (v !== undefined) rdns.push(setOf(seq(oid(o), utf8String(v))))
  }
  add(OID.organization, n.organization)
  add(OID.organizationalUnit, n.organizationalUnit)
  add(OID.commonName, n.commonName)
  return seq(...rdns)
}

export function parseName(node: DerNode | undefined, what: string): DistinguishedName {
  const rdns = seqOf(node, what)
  const attributes: [string, string][] = []
  for (const rdn of rdns) {
    const atvs = seqOf(rdn, `${what} RDN`, TAG.SET)
    if (atvs.length === 0) throw new PkiError('MALFORMED_DER', `${what}: empty RDN`)
    for (const atv of atvs) {
      const parts = seqOf(atv, `${what} attribute`)
      if (parts.length !== 2) throw new PkiError('MALFORMED_DER', `${what}: attribute is not a pair`)
      attributes.push([
        readOid(parts[0], `${what} attribute type`),
        readString(parts[1], `${what} attribute value`),
      ])
    }
  }
  const pick = (o: string) => attributes.filter(([k]) => k === o).map(([, v]) => v)
  const cns = pick(OID.commonName)
  return {
    commonName: cns.length === 1 ? cns[0] : undefined,
    organizationalUnit: pick(OID.organizationalUnit),
    organization: pick(OID.organization),
    attributes,
    der: node!.raw,
  }
}

// ---- keys ----

const ED25519_ALG = seq(oid(OID.ed25519))

export function encodeSpki(publicKey: Uint8Array): Uint8Array {
  return seq(ED25519_ALG, bitString(publicKey))
}

function parseAlgorithm(node: DerNode | undefined, what: string): string {
  const parts = seqOf(node, what)
  if (parts.length < 1 || parts.length > 2)
    throw new PkiError('MALFORMED_DER', `${what}: bad AlgorithmIdentifier`)
  const o = readOid(parts[0], what)
  if (o === OID.ed25519 && parts.length !== 1) {
    throw new PkiError('MALFORMED_DER', `${what}: Ed25519 takes no parameters (RFC 8410)`)
  }
  return o
}

function parseSpki(node: DerNode | undefined): { algorithm: string; key: Uint8Array } {
  const parts = seqOf(node, 'subjectPublicKeyInfo')
  if (parts.length !== 2) throw new PkiError('MALFORMED_DER', 'subjectPublicKeyInfo: expected 2 fields')
  const algorithm = parseAlgorithm(parts[0], 'subjectPublicKeyInfo algorithm')
  const key = readBitString(parts[1], 'subjectPublicKey').bytes
  if (algorithm === OID.ed25519 && key.length !== 32) {
    throw new PkiError('MALFORMED_DER', 'Ed25519 public key must be 32 bytes')
  }
  return { algorithm, key }
}

/** PKCS#8 (RFC 8410 OneAsymmetricKey, version 1) encoding of an Ed25519 seed. */
export function encodePkcs8(seed: Uint8Array): Uint8Array {
  return seq(smallInteger(0), ED25519_ALG, octetString(octetString(seed)))
}

/** Decodes a PKCS#8 Ed25519 private key (v1, or v2 with an embedded public key). */
export function decodePkcs8(der: Uint8Array): { seed: Uint8Array; publicKey: Uint8Array | undefined } {
  let out: { seed: Uint8Array; publicKey: Uint8Array | undefined } | undefined
  malformed('MALFORMED_KEY', () => {
    const parts = seqOf(decodeDer(der, { maxSize: 4096 }), 'PrivateKeyInfo')
    if (parts.length < 3 || parts.length > 5)
      throw new PkiError('MALFORMED_DER', 'PrivateKeyInfo: bad field count')
    const version = readSmallInteger(parts[0], 'PrivateKeyInfo version')
    if (version !== 0 && version !== 1)
      throw new PkiError('MALFORMED_DER', `PrivateKeyInfo version ${version}`)
    const alg = parseAlgorithm(parts[1], 'privateKeyAlgorithm')
    if (alg !== OID.ed25519)
      throw new PkiError('UNSUPPORTED_ALGORITHM', `private key algorithm ${alg} is not Ed25519`)
    const inner = decodeDer(readOctetString(parts[2], 'privateKey'), { maxSize: 64 })
    const seed = readOctetString(inner, 'CurvePrivateKey')
    if (seed.length !== 32) throw new PkiError('MALFORMED_DER', 'Ed25519 private key must be 32 bytes')
    let publicKey: Uint8Array | undefined
    for (const extra of parts.slice(3)) {
      if (extra.tag === 0xa0) continue // attributes
      if (extra.tag === 0x81 && version === 1) {
        const v = extra.value
        if (v.length !== 33 || v[0] !== 0) throw new PkiError('MALFORMED_DER', 'bad embedded public key')
        publicKey = v.subarray(1)
        continue
      }
      throw new PkiError('MALFORMED_DER', 'PrivateKeyInfo: unexpected field')
    }
    out = { seed: seed.slice(), publicKey }
  })
  return out!
}

// ---- certificates ----

export interface TbsInput {
  serial: Uint8Array
  issuer: Uint8Array
  subject: Uint8Array
  notBefore: Date
  notAfter: Date
  publicKey: Uint8Array
  isCA: boolean
  keyUsage: readonly KeyUsage[]
  extendedKeyUsage?: readonly string[]
  dnsNames?: readonly string[]
  subjectKeyId: Uint8Array
  authorityKeyId?: Uint8Array
}

function extension(o: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(o), bool(true), octetString(value)) : seq(oid(o), octetString(value))
}

function encodeKeyUsage(usages: readonly KeyUsage[]): Uint8Array {
  let bits = 0
  let highest = -1
  for (const u of usages) {
    const i = KEY_USAGES.indexOf(u)
    bits |= 1 << (15 - i)
    highest = Math.max(highest, i)
  }
  const nbytes = highest < 8 ? 1 : 2
  const bytes = nbytes === 1 ? Uint8Array.of(bits >> 8) : Uint8Array.of(bits >> 8, bits & 0xff)
  const unused = nbytes * 8 - (highest + 1)
  return bitString(bytes, unused)
}

/** RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the public key bits. */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, 20)
}

export function encodeTbs(t: TbsInput): Uint8Array {
  const exts: Uint8Array[] = [
    extension(OID.basicConstraints, true, t.isCA ? seq(bool(true)) : seq()),
    extension(OID.keyUsage, true, encodeKeyUsage(t.keyUsage)),
  ]
  if (t.extendedKeyUsage?.length)
    exts.push(extension(OID.extKeyUsage, false, seq(...t.extendedKeyUsage.map(oid))))
  if (t.dnsNames?.length) {
    exts.push(extension(OID.subjectAltName, false, seq(...t.dnsNames.map((n) => tlv(0x82, ia5Bytes(n))))))
  }
  exts.push(extension(OID.subjectKeyIdentifier, false, octetString(t.subjectKeyId)))
  if (t.authorityKeyId)
    exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, t.authorityKeyId))))
  return seq(
    explicit(0, smallInteger(2)),
    unsignedInteger(t.serial),
    ED25519_ALG,
    t.issuer,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subject,
    encodeSpki(t.publicKey),
    explicit(3, seq(...exts)),
  )
}

function ia5Bytes(s: string): Uint8Array {
  return ia5String(s).subarray(2)
}

export function signCertificate(tbs: Uint8Array, seed: Uint8Array): Uint8Array {
  return seq(tbs, ED25519_ALG, bitString(edSign(tbs, seed)))
}

export function parseCertificateDer(der: Uint8Array): Certificate {
  if (!(der instanceof Uint8Array)) throw new TypeError('der must be a Uint8Array')
  if (der.length > MAX_CERT_SIZE)
    throw new PkiError('TOO_LARGE', `certificate exceeds ${MAX_CERT_SIZE} bytes`)
  let cert: Certificate | undefined
  malformed('MALFORMED_CERTIFICATE', () => {
    cert = parseCertificateNode(decodeDer(der, { maxSize: MAX_CERT_SIZE }))
  })
  return cert!
}

function parseCertificateNode(root: DerNode): Certificate {
  const top = seqOf(root, 'Certificate')
  if (top.length !== 3) throw new PkiError('MALFORMED_DER', 'Certificate: expected 3 fields')
  const tbsNode = top[0]!
  const outerAlg = parseAlgorithm(top[1], 'signatureAlgorithm')
  const signature = readOctetAlignedBits(top[2], 'signatureValue')
  const f = seqOf(tbsNode, 'TBSCertificate')
  let i = 0
  let version = 1
  if (f[0]?.tag === 0xa0) {
    const v = f[0].children!
    if (v.length !== 1) throw new PkiError('MALFORMED_DER', 'version: expected one INTEGER')
    version = readSmallInteger(v[0], 'version') + 1
    if (version !== 2 && version !== 3) throw new PkiError('MALFORMED_DER', `unsupported version ${version}`)
    i++
  }
  const serial = readUnsignedInteger(f[i++], 'serialNumber')
  if (serial.length > 21) throw new PkiError('MALFORMED_DER', 'serialNumber longer than 20 octets')
  const innerAlg = parseAlgorithm(f[i++], 'signature')
  if (innerAlg !== outerAlg) throw new PkiError('MALFORMED_DER', 'signature algorithms disagree')
  if (outerAlg !== OID.ed25519) {
    throw new PkiError('UNSUPPORTED_ALGORITHM', `signature algorithm ${outerAlg} is not Ed25519`)
  }
  const issuer = parseName(f[i++], 'issuer')
  const validity = seqOf(f[i++], 'validity')
  if (validity.length !== 2) throw new PkiError('MALFORMED_DER', 'validity: expected 2 times')
  const notBefore = readTime(validity[0], 'notBefore')
  const notAfter = readTime(validity[1], 'notAfter')
  const subject = parseName(f[i++], 'subject')
  const spki = parseSpki(f[i++])
  let isCA = false
  let pathLength: number | undefined
  let keyUsage: KeyUsage[] | undefined
  let extendedKeyUsage: string[] | undefined
  let dnsNames: string[] = []
  let subjectKeyId: Uint8Array | undefined
  let authorityKeyId: Uint8Array | undefined
  // issuerUniqueID [1], subjectUniqueID [2]: skipped (v2/v3 only)
  while (f[i] && (f[i]!.tag === 0x81 || f[i]!.tag === 0xa1 || f[i]!.tag === 0x82 || f[i]!.tag === 0xa2)) {
    if (version < 2) throw new PkiError('MALFORMED_DER', 'unique identifiers need version 2 or 3')
    i++
  }
  if (f[i]?.tag === 0xa3) {
    if (version !== 3) throw new PkiError('MALFORMED_DER', 'extensions need version 3')
    const wrapped = f[i++]!.children!
    if (wrapped.length !== 1) throw new PkiError('MALFORMED_DER', 'extensions: expected one SEQUENCE')
    const exts = seqOf(wrapped[0], 'extensions')
    if (exts.length === 0) throw new PkiError('MALFORMED_DER', 'extensions: empty')
    const seen = new Set<string>()
    for (const ext of exts) {
      const p = seqOf(ext, 'extension')
      if (p.length < 2 || p.length > 3) throw new PkiError('MALFORMED_DER', 'extension: bad field count')
      const id = readOid(p[0], 'extnID')
      if (seen.has(id)) throw new PkiError('MALFORMED_DER', `duplicate extension ${id}`)
      seen.add(id)
      let critical = false
      if (p.length === 3) {
        critical = readBoolean(p[1], 'critical')
        if (!critical) throw new PkiError('MALFORMED_DER', 'critical FALSE must be omitted in DER')
      }
      const value = readOctetString(p[p.length - 1], 'extnValue')
      switch (id) {
        case OID.basicConstraints: {
          const bc = seqOf(decodeDer(value), 'basicConstraints')
          let j = 0
          if (bc[j]?.tag === TAG.BOOLEAN) {
            isCA = readBoolean(bc[j++], 'cA')
            if (!isCA) throw new PkiError('MALFORMED_DER', 'cA FALSE must be omitted in DER')
          }
          if (bc[j]) pathLength = readSmallInteger(bc[j++], 'pathLenConstraint')
          if (j !== bc.length) throw new PkiError('MALFORMED_DER', 'basicConstraints: extra fields')
          break
        }
        case OID.keyUsage: {
          const { bytes, unused } = readBitString(decodeDer(value), 'keyUsage')
          if (bytes.length > 2) throw new PkiError('MALFORMED_DER', 'keyUsage too long')
          keyUsage = []
          const nbits = bytes.length * 8 - unused
          for (let b = 0; b < nbits && b < KEY_USAGES.length; b++) {
            if (bytes[b >> 3]! & (0x80 >> (b & 7))) keyUsage.push(KEY_USAGES[b]!)
          }
          break
        }
        case OID.extKeyUsage: {
          const list = seqOf(decodeDer(value), 'extKeyUsage')
          if (list.length === 0) throw new PkiError('MALFORMED_DER', 'extKeyUsage: empty')
          extendedKeyUsage = list.map((n) => readOid(n, 'KeyPurposeId'))
          break
        }
        case OID.subjectAltName: {
          const names = seqOf(decodeDer(value), 'subjectAltName')
          if (names.length === 0) throw new PkiError('MALFORMED_DER', 'subjectAltName: empty')
          dnsNames = names.filter((n) => n.tag === 0x82).map((n) => ascii(n.value, 'dNSName'))
          break
        }
        case OID.subjectKeyIdentifier:
          subjectKeyId = readOctetString(decodeDer(value), 'subjectKeyIdentifier')
          break
        case OID.authorityKeyIdentifier: {
          const aki = seqOf(decodeDer(value), 'authorityKeyIdentifier')
          const kid = aki.find((n) => n.tag === 0x80)
          authorityKeyId = kid?.value
          break
        }
        default:
          if (critical) throw new PkiError('MALFORMED_DER', `unknown critical extension ${id}`)
      }
    }
  }
  if (i !== f.length) throw new PkiError('MALFORMED_DER', 'TBSCertificate: unexpected trailing fields')
  return {
    der: root.raw,
    tbs: tbsNode.raw,
    version,
    serialNumber: Buffer.from(serial).toString('hex'),
    issuer,
    subject,
    notBefore,
    notAfter,
    publicKeyAlgorithm: spki.algorithm,
    publicKey: spki.key,
    signatureAlgorithm: outerAlg,
    signature,
    isCA,
    pathLength,
    keyUsage,
    extendedKeyUsage,
    dnsNames,
    subjectKeyId,
    authorityKeyId,
  }
}

/** Does `issuer`'s key verify `cert`'s signature? */
export function signatureVerifies(cert: Certificate, issuerPublicKey: Uint8Array): boolean {
  return edVerify(cert.signature, cert.tbs, issuerPublicKey)
}

// ---- PKCS#10 ----

export function encodeCsr(subject: Uint8Array, seed: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const info = seq(smallInteger(0), subject, encodeSpki(publicKey), tlv(0xa0))
  return seq(info, ED25519_ALG, bitString(edSign(info, seed)))
}

export const MAX_CSR_SIZE = 8 * 1024

/** A CSR's structure without checking its signature (see {@link parseCsrDer}). */
export function decodeCsrDer(der: Uint8Array): {
  request: CertificateRequest
  info: Uint8Array
  signature: Uint8Array
} {
  if (der.length > MAX_CSR_SIZE) throw new PkiError('TOO_LARGE', `CSR exceeds ${MAX_CSR_SIZE} bytes`)
  let out: { request: CertificateRequest; info: Uint8Array; signature: Uint8Array } | undefined
  malformed('MALFORMED_CSR', () => {
    const root = decodeDer(der, { maxSize: MAX_CSR_SIZE })
    const top = seqOf(root, 'CertificationRequest')
    if (top.length !== 3) throw new PkiError('MALFORMED_DER', 'CertificationRequest: expected 3 fields')
    const alg = parseAlgorithm(top[1], 'signatureAlgorithm')
    const signature = readOctetAlignedBits(top[2], 'signature')
    const f = seqOf(top[0], 'CertificationRequestInfo')
    if (f.length !== 4) throw new PkiError('MALFORMED_DER', 'CertificationRequestInfo: expected 4 fields')
    if (readSmallInteger(f[0], 'version') !== 0) throw new PkiError('MALFORMED_DER', 'CSR version must be 0')
    const subject = parseName(f[1], 'subject')
    const spki = parseSpki(f[2])
    expectTag(f[3], 0xa0, 'attributes')
    if (alg !== OID.ed25519 || spki.algorithm !== OID.ed25519) {
      throw new PkiError('UNSUPPORTED_ALGORITHM', 'only Ed25519 certificate requests are accepted')
    }
    out = { request: { der: root.raw, subject, publicKey: spki.key }, info: top[0]!.raw, signature }
  })
  return out!
}

/** Parses a CSR and checks its self-signature (proof that the requester holds the key). */
export function parseCsrDer(der: Uint8Array): CertificateRequest {
  const { request, info, signature } = decodeCsrDer(der)
  if (!edVerify(signature, info, request.publicKey)) {
    throw new PkiError('BAD_CSR_SIGNATURE', 'certificate request signature does not verify')
  }
  return request
}

export { concat }
