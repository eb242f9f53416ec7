// Differential tests: the DER/X.509 code is written by hand for a narrow Ed25519 profile, so every kind of
// certificate it issues (roots, cross-signed roots, node certificates for both roles, at any time and
// validity) is read back by two independent implementations, node:crypto's X509Certificate (OpenSSL inside
// Node) and the openssl CLI, and each field they see must be the field we meant to write.
import { createHash, createPublicKey, X509Certificate } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CERT_BACKDATE_MS,
  type Certificate,
  createCSR,
  createRootCA,
  generateClusterId,
  generateKeyPair,
  generateNodeId,
  issueNodeCertificate,
  parseCertificate,
  ROOT_CA_COMMON_NAME,
  ROOT_CA_VALIDITY_MS,
  type RootCA,
  startRootRotation,
} from '../src/index.js'
import { openssl, seededRandom } from './helpers.js'

const DAY = 86_400_000
const base64url = (b: Uint8Array) => Buffer.from(b).toString('base64url')

interface Issued {
  kind: string
  pem: string
  ours: Certificate
  issuerPem: string
  /** The validity we asked for, in ms: compared with what the other readers see, not with our own parser. */
  notBefore: number
  notAfter: number
  /** The subject we asked for, as node:crypto prints it. */
  subject?: string[]
}

/** Every kind of certificate the package issues, from one seed. */
function issueAll(seed: number, at: number, validityDays: number): Issued[] {
  const random = seededRandom(seed)
  const ca = createRootCA({ now: at, random })
  const clusterId = generateClusterId(random)
  const notBefore = at - CERT_BACKDATE_MS
  const rootNotAfter = notBefore + ROOT_CA_VALIDITY_MS
  const root = { notBefore, notAfter: rootNotAfter, subject: [`CN=${ROOT_CA_COMMON_NAME}`] }
  const node = (ca: RootCA, role: 'swarm-manager' | 'swarm-worker', kind: string): Issued => {
    const key = generateKeyPair({ random })
    const nodeId = generateNodeId(random)
    const issued = issueNodeCertificate(ca, createCSR(key.privateKey), {
      nodeId,
      role,
      clusterId,
      now: at,
      random,
      validityMs: validityDays * DAY,
    })
    return {
      kind,
      pem: issued.pem.split(/(?<=-----END CERTIFICATE-----\n?)/)[0]!,
      ours: issued.certificate,
      issuerPem: ca.pem,
      notBefore,
      notAfter: notBefore + validityDays * DAY,
      subject: [`CN=${nodeId}`, `O=${clusterId}`, `OU=${role}`],
    }
  }
  const rotation = startRootRotation(ca, { now: at, random })
  return [
    { kind: 'root', pem: ca.pem, ours: ca.certificate, issuerPem: ca.pem, ...root },
    node(ca, 'swarm-manager', 'manager'),
    node(ca, 'swarm-worker', 'worker'),
    {
      kind: 'cross-signed root',
      pem: pemOf(rotation.crossSigned),
      ours: rotation.crossSigned,
      issuerPem: ca.pem,
      ...root,
    },
    {
      kind: 'new root',
      pem: rotation.newCA.pem,
      ours: rotation.newCA.certificate,
      issuerPem: rotation.newCA.pem,
      ...root,
    },
    node(rotation.newCA, 'swarm-worker', 'worker under the new root'),
  ]
}

function pemOf(cert: Certificate): string {
  const b64 = Buffer.from(cert.der).toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.length % 65 === 0 ? '' : '\n'}-----END CERTIFICATE-----\n`
}

/** Our distinguished name in the order and form node:crypto prints it (`CN=…\nOU=…`). */
function dnLines(dn: Certificate['subject']): string[] {
  const short: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.11': 'OU', '2.5.4.10': 'O' }
  return dn.attributes.map(([oid, value]) => `${short[oid] ?? oid}=${value}`)
}

function checkWithNodeCrypto({ kind, pem, ours, issuerPem, notBefore, notAfter, subject }: Issued): void {
  const x = new X509Certificate(pem)
  const issuer = new X509Certificate(issuerPem)
  const at = `${kind}`
  const seconds = (ms: number) => Math.floor(ms / 1000) * 1000
  expect(new Date(x.validFrom).getTime(), `${at}: notBefore as asked`).toBe(seconds(notBefore))
  expect(new Date(x.validTo).getTime(), `${at}: notAfter as asked`).toBe(seconds(notAfter))
  if (subject) expect(x.subject.split('\n').sort(), `${at}: subject as asked`).toEqual([...subject].sort())
  expect(new Uint8Array(x.raw), at).toEqual(ours.der)
  expect(x.fingerprint256.replaceAll(':', '').toLowerCase(), at).toBe(
    createHash('sha256').update(ours.der).digest('hex'),
  )
  expect(x.serialNumber.toLowerCase().replace(/^0+/, ''), at).toBe(ours.serialNumber.replace(/^0+/, ''))
  expect(x.subject.split('\n').sort(), at).toEqual(dnLines(ours.subject).sort())
  expect(x.issuer.split('\n').sort(), at).toEqual(dnLines(ours.issuer).sort())
  expect(new Date(x.validFrom).getTime(), at).toBe(Math.floor(ours.notBefore.getTime() / 1000) * 1000)
  expect(new Date(x.validTo).getTime(), at).toBe(Math.floor(ours.notAfter.getTime() / 1000) * 1000)
  expect(x.ca, at).toBe(ours.isCA)
  const jwk = x.publicKey.export({ format: 'jwk' })
  expect(jwk, at).toMatchObject({ kty: 'OKP', crv: 'Ed25519', x: base64url(ours.publicKey) })
  expect(x.verify(issuer.publicKey), `${at}: signature under its issuer's key`).toBe(true)
  expect(x.checkIssued(issuer), `${at}: issued by its issuer`).toBe(true)
  const san = x.subjectAltName ? x.subjectAltName.split(', ').map((s) => s.replace(/^DNS:/, '')) : []
  expect(san.sort(), at).toEqual([...ours.dnsNames].sort())
  expect((x.keyUsage ?? []).sort(), `${at}: extended key usage`).toEqual(
    [...(ours.extendedKeyUsage ?? [])].sort(),
  )
  // Our own parser agrees with itself on what node:crypto hands back.
  expect(parseCertificate(x.toString()).der).toEqual(ours.der)
  expect(createPublicKey(pem).asymmetricKeyType).toBe('ed25519')
}

/** openssl x509 -text reads the same fields (one call per certificate: its parser, not Node's). */
function checkWithOpenssl({ kind, pem, ours }: Issued): void {
  const r = openssl(
    [
      'x509',
      '-in',
      'c.pem',
      '-noout',
      '-serial',
      '-subject',
      '-issuer',
      '-nameopt',
      'RFC2253',
      '-ext',
      'basicConstraints,keyUsage,extendedKeyUsage,subjectAltName',
    ],
    { 'c.pem': pem },
  )
  expect(r.status, `${kind}: ${r.stderr}`).toBe(0)
  const out = r.stdout
  expect(/serial=([0-9A-F]+)/.exec(out)?.[1]?.toLowerCase().replace(/^0+/, ''), kind).toBe(
    ours.serialNumber.replace(/^0+/, ''),
  )
  const rfc2253 = (dn: Certificate['subject']) =>
    dnLines(dn)
      .reverse()
      .map((l) => l.replaceAll(',', '\\,'))
      .join(',')
  expect(out, kind).toContain(`subject=${rfc2253(ours.subject)}`)
  expect(out, kind).toContain(`issuer=${rfc2253(ours.issuer)}`)
  expect(out, kind).toContain(ours.isCA ? 'CA:TRUE' : 'CA:FALSE')
  const usages: Record<string, string> = {
    digitalSignature: 'Digital Signature',
    keyCertSign: 'Certificate Sign',
    cRLSign: 'CRL Sign',
    keyEncipherment: 'Key Encipherment',
  }
  for (const u of ours.keyUsage ?? []) expect(out, `${kind}: key usage ${u}`).toContain(usages[u] ?? u)
  for (const name of ours.dnsNames) expect(out, kind).toContain(`DNS:${name}`)
}

describe('differential: what we issue, node:crypto and openssl read the same way', () => {
  it('node:crypto X509Certificate agrees on every field of every kind of certificate (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 30 }),
        fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2090, 0, 1) }),
        fc.integer({ min: 1, max: 3650 }),
        (seed, at, validityDays) => {
          for (const issued of issueAll(seed, at, validityDays)) checkWithNodeCrypto(issued)
        },
      ),
      { numRuns: 40 },
    )
  })

  it('the openssl CLI agrees on serial, names, constraints, usages and names of every kind', () => {
    for (const seed of [1, 2, 3]) {
      for (const issued of issueAll(seed, Date.UTC(2026, 5, 1), 90)) checkWithOpenssl(issued)
    }
  })
})
