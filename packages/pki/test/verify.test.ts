import { describe, expect, it } from 'vitest'
import {
  authorize,
  authorizer,
  type Certificate,
  createCSR,
  createRootCA,
  exportRootCA,
  generateClusterId,
  generateKeyPair,
  generateNodeId,
  importRootCA,
  isPkiError,
  issueNodeCertificate,
  nodeIdentity,
  type PkiErrorCode,
  parseCertificate,
  revocationList,
  verifyChain,
} from '../src/index.js'
import { seededRandom } from './helpers.js'

const random = seededRandom(21)
const now = Date.UTC(2026, 5, 1)
const HOUR = 3_600_000
const clusterId = generateClusterId(random)
const ca = createRootCA({ now, random })

function issue(
  role: 'swarm-manager' | 'swarm-worker' = 'swarm-worker',
  o: { at?: number; ca?: typeof ca; clusterId?: string } = {},
) {
  const key = generateKeyPair({ random })
  return issueNodeCertificate(o.ca ?? ca, createCSR(key.privateKey), {
    nodeId: generateNodeId(random),
    role,
    clusterId: o.clusterId ?? clusterId,
    now: o.at ?? now,
    random,
  })
}

function codeOf(fn: () => unknown): PkiErrorCode | 'ok' {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (isPkiError(err)) return err.code
    throw err
  }
}

function tamper(cert: Certificate, at: (der: Uint8Array) => number): Uint8Array {
  const der = cert.der.slice()
  der[at(der)]! ^= 0x01
  return der
}

describe('verifyChain', () => {
  it('accepts a good certificate and returns its identity', () => {
    const issued = issue('swarm-manager')
    const r = verifyChain(issued.chain, { roots: ca.pem, now, clusterId })
    expect(r.identity).toEqual(nodeIdentity(issued.certificate))
    expect(r.path.map((c) => c.subject.commonName)).toEqual([r.identity.nodeId, 'swarm-ca'])
  })

  it('names each reason', () => {
    const issued = issue()
    expect(codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now: now + 91 * 24 * HOUR }))).toBe(
      'EXPIRED',
    )
    expect(codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now: now - 2 * HOUR }))).toBe(
      'NOT_YET_VALID',
    )
    // backdated one hour: valid 59 minutes before issuance
    expect(codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now: now - HOUR + 60_000 }))).toBe('ok')
    const foreign = createRootCA({ now, random })
    expect(codeOf(() => verifyChain(issued.chain, { roots: foreign.pem, now }))).toBe('UNKNOWN_ISSUER')
    expect(
      codeOf(() => verifyChain(issue('swarm-worker', { ca: foreign }).chain, { roots: ca.pem, now })),
    ).toBe('UNKNOWN_ISSUER')
    expect(
      codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now, clusterId: generateClusterId(random) })),
    ).toBe('WRONG_CLUSTER')
    expect(codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now, roles: ['swarm-manager'] }))).toBe(
      'UNAUTHORIZED_ROLE',
    )
    const revocations = revocationList()
    revocations.revoke(nodeIdentity(issued.certificate).nodeId, issued.certificate.notAfter)
    expect(codeOf(() => verifyChain(issued.chain, { roots: ca.pem, now, revocations }))).toBe('REVOKED')
  })

  it('refuses a bad signature, whichever byte of the signed part or signature changes', () => {
    const issued = issue()
    const cert = issued.certificate
    // last byte of the signature
    const sig = tamper(cert, (d) => d.length - 1)
    expect(codeOf(() => verifyChain(sig, { roots: ca.pem, now }))).toBe('BAD_SIGNATURE')
    // a byte of the subject public key (inside the signed part; names unchanged)
    const keyAt = Buffer.from(cert.der).indexOf(Buffer.from(cert.publicKey))
    const key = tamper(cert, () => keyAt + 5)
    expect(codeOf(() => verifyChain(key, { roots: ca.pem, now }))).toBe('BAD_SIGNATURE')
  })

  it('refuses a CA as the leaf and a leaf as an issuer', () => {
    expect(codeOf(() => verifyChain(ca.pem, { roots: ca.pem, now }))).toBe('NOT_A_NODE_CERTIFICATE')
  })

  it('refuses an expired root', () => {
    const shortRoot = createRootCA({ now, random, validityMs: 3 * HOUR })
    const issued = issue('swarm-worker', { ca: shortRoot })
    expect(codeOf(() => verifyChain(issued.chain, { roots: shortRoot.pem, now: now + 5 * HOUR }))).toBe(
      'EXPIRED',
    )
  })
})

describe('revocationList', () => {
  it('denies removed nodes until their certificates expire, then forgets them', () => {
    const list = revocationList()
    list.revoke('a', now + HOUR)
    list.revoke('a', now) // an earlier expiry never shortens the entry
    expect(list.isRevoked('a', now)).toBe(true)
    expect(list.isRevoked('b', now)).toBe(false)
    expect(list.isRevoked('a', now + HOUR)).toBe(false)
    expect(list.prune(now)).toBe(0)
    expect(list.prune(now + HOUR)).toBe(1)
    expect(list.size).toBe(0)
  })

  it('restores from its entries', () => {
    const list = revocationList()
    list.revoke('x', now + HOUR)
    const again = revocationList(list.entries())
    expect(again.isRevoked('x', now)).toBe(true)
  })
})

describe('authorize', () => {
  const issued = issue('swarm-worker')
  const id = nodeIdentity(issued.certificate)

  it('accepts a node identity, a TLS subject { cn, ou, o } or a transport identity', () => {
    expect(authorize(id, { roles: ['swarm-worker'], clusterId })).toEqual(id)
    const transportIdentity = {
      commonName: id.nodeId,
      organizationalUnit: id.role,
      organization: id.clusterId,
    }
    expect(authorize(transportIdentity, { roles: ['swarm-worker'], clusterId })).toEqual(id)
    const hook = authorizer({ roles: ['swarm-worker'], clusterId })
    expect(hook(transportIdentity)).toBe(true)
    expect(() => hook({ ...transportIdentity, organization: 'other' })).toThrow(
      'Permission denied: remote certificate not part of organization',
    )
    expect(() => hook({ commonName: id.nodeId })).toThrow(
      expect.objectContaining({ code: 'NOT_A_NODE_CERTIFICATE' }),
    )
    expect(
      authorize(
        { cn: id.nodeId, ou: [id.role], o: id.clusterId },
        { roles: ['swarm-worker', 'swarm-manager'], clusterId },
      ),
    ).toEqual(id)
  })

  it("uses swarm's messages, checking role, then removal, then organization", () => {
    expect(() => authorize(id, { roles: ['swarm-manager'], clusterId })).toThrow(
      'Permission denied: remote certificate not part of OUs: [swarm-manager]',
    )
    const revocations = revocationList([{ nodeId: id.nodeId, until: now + HOUR }])
    expect(() => authorize(id, { roles: ['swarm-worker'], clusterId: 'other', revocations, now })).toThrow(
      `Permission denied: node ${id.nodeId} was removed from swarm`,
    )
    expect(() => authorize(id, { roles: ['swarm-worker'], clusterId: 'other' })).toThrow(
      'Permission denied: remote certificate not part of organization: other',
    )
    expect(
      codeOf(() =>
        authorize({ cn: id.nodeId, ou: 'admin', o: clusterId }, { roles: ['swarm-worker'], clusterId }),
      ),
    ).toBe('UNAUTHORIZED_ROLE')
    expect(
      codeOf(() =>
        authorize(
          { cn: undefined, ou: 'swarm-worker', o: clusterId },
          { roles: ['swarm-worker'], clusterId },
        ),
      ),
    ).toBe('NOT_A_NODE_CERTIFICATE')
    expect(() => authorize(id, { roles: 'swarm-worker' as never, clusterId })).toThrow(TypeError)
  })
})

describe('root CA export and import', () => {
  it('round-trips through PEM and checks the key matches', () => {
    const exported = exportRootCA(ca)
    expect(exported.key).toContain('-----BEGIN PRIVATE KEY-----')
    const back = importRootCA(exported)
    expect(back.pem).toBe(ca.pem)
    expect(Buffer.compare(back.privateKey, ca.privateKey)).toBe(0)
    const other = exportRootCA(createRootCA({ now, random }))
    expect(codeOf(() => importRootCA({ certificate: ca.pem, key: other.key }))).toBe('KEY_MISMATCH')
    const leaf = issue()
    expect(codeOf(() => importRootCA({ certificate: leaf.pem, key: other.key }))).toBe('NOT_A_CA')
  })

  it('has the swarm root shape', () => {
    const c = parseCertificate(ca.pem)
    expect(c.subject.commonName).toBe('swarm-ca')
    expect(c.isCA).toBe(true)
    expect(c.notAfter.getTime() - c.notBefore.getTime()).toBe(20 * 365 * 24 * HOUR)
  })
})

describe('issueNodeCertificate', () => {
  it('validates its arguments', () => {
    const csr = createCSR(generateKeyPair({ random }).privateKey)
    const base = { nodeId: generateNodeId(random), role: 'swarm-worker' as const, clusterId, now }
    expect(() => issueNodeCertificate(ca, csr, { ...base, validityMs: HOUR - 1 })).toThrow(RangeError)
    expect(() => issueNodeCertificate(ca, csr, { ...base, nodeId: 'Bad' })).toThrow(TypeError)
    expect(() => issueNodeCertificate(ca, csr, { ...base, role: 'admin' as never })).toThrow(TypeError)
    expect(issueNodeCertificate(ca, csr, { ...base, validityMs: HOUR }).certificate.notAfter.getTime()).toBe(
      now,
    )
  })
})
