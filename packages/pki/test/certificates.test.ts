import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createCSR,
  createRootCA,
  exportRootCA,
  generateKeyPair,
  importRootCA,
  issueNodeCertificate,
  keyPairFromPrivateKey,
  nodeIdentity,
  parseCertificate,
  parseCSR,
  startRootRotation,
  verifyChain,
} from '../src/index.js'
import { seededRandom } from './helpers.js'

const HOUR = 3_600_000
const id = fc.stringMatching(/^[0-9a-z]{25}$/)

describe('issued certificates (property)', () => {
  const random = seededRandom(31)
  const now = Date.UTC(2026, 3, 1)
  const ca = createRootCA({ now, random })

  it('carry exactly what the CA decided, for any IDs, role and lifetime', () => {
    fc.assert(
      fc.property(
        id,
        id,
        fc.constantFrom('swarm-manager' as const, 'swarm-worker' as const),
        fc.integer({ min: 1, max: 10 * 365 * 24 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (nodeId, clusterId, role, hours, seed) => {
          const key = keyPairFromPrivateKey(seed)
          const issued = issueNodeCertificate(ca, createCSR(key.privateKey), {
            nodeId,
            role,
            clusterId,
            validityMs: hours * HOUR,
            now,
            random,
          })
          const c = parseCertificate(issued.pem)
          expect(nodeIdentity(c)).toEqual({ nodeId, role, clusterId })
          expect(c.notBefore.getTime()).toBe(now - HOUR)
          expect(c.notAfter.getTime()).toBe(now - HOUR + hours * HOUR)
          expect(c.dnsNames).toEqual(role === 'swarm-manager' ? [role, nodeId, 'swarm-ca'] : [role, nodeId])
          expect(c.keyUsage).toEqual(['digitalSignature', 'keyEncipherment'])
          expect(Buffer.compare(c.publicKey, key.publicKey)).toBe(0)
          expect(Buffer.compare(c.der, issued.certificate.der)).toBe(0)
          expect(verifyChain(issued.chain, { roots: [ca.certificate], now, clusterId }).identity.nodeId).toBe(
            nodeId,
          )
        },
      ),
      { seed: 8, numRuns: 40 },
    )
  })

  it('round-trips CSRs for any key and common name', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.string({ minLength: 1, maxLength: 64 }),
        (seed, cn) => {
          const csr = parseCSR(createCSR(seed, { commonName: cn }))
          expect(csr.subject.commonName).toBe(cn)
          expect(Buffer.compare(csr.publicKey, keyPairFromPrivateKey(seed).publicKey)).toBe(0)
        },
      ),
      { seed: 9, numRuns: 40 },
    )
  })

  it('exports and imports a CA in rotation with its cross-signed intermediate', () => {
    const rotation = startRootRotation(ca, { now, random })
    const back = importRootCA(exportRootCA(rotation.newCA))
    expect(back.intermediates).toHaveLength(1)
    const issued = issueNodeCertificate(back, createCSR(generateKeyPair({ random }).privateKey), {
      nodeId: 'n'.repeat(25),
      role: 'swarm-worker',
      clusterId: 'c'.repeat(25),
      now,
      random,
    })
    expect(verifyChain(issued.chain, { roots: ca.pem, now }).path).toHaveLength(3)
  })
})
