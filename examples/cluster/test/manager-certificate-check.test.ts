// The joiner's checks of a join listener's root CA and certificate (join.ts), remembered on success: a
// success is not checked again while the chain is valid; anything else is checked in full every time.
import * as pki from '@swarmkit/pki'
import { describe, expect, it } from 'vitest'
import { rootsVouchedFor } from '../src/join.js'
import { managerCertificateCheck } from '../src/manager-certificate-check.js'

const HOUR = 3_600_000
const clusterId = pki.generateClusterId()
const ca = pki.createRootCA()
const other = pki.createRootCA()

function leaf(root: pki.RootCA, role: pki.NodeRole): Uint8Array {
  const issued = pki.issueNodeCertificate(root, pki.createCSR(pki.generateKeyPair().privateKey), {
    nodeId: pki.generateNodeId(),
    role,
    clusterId,
    validityMs: 3 * HOUR, // backdated by an hour: valid until two hours from now
  })
  return issued.certificate.der
}

/** The check with its chain verifications counted and its clock in the test's hands. */
function counted() {
  let calls = 0
  let now = Date.now()
  const check = managerCertificateCheck({
    verify: (chain, options) => {
      calls++
      return pki.verifyChain(chain, options)
    },
    now: () => now,
  })
  return { check, calls: () => calls, advance: (ms: number) => (now += ms) }
}

describe('managerCertificateCheck', () => {
  it("checks a manager's certificate of the roots once while it is valid", () => {
    const { check, calls } = counted()
    const manager = leaf(ca, 'swarm-manager')
    for (let i = 0; i < 5; i++) expect(check(manager, ca.pem)).toBe(true)
    expect(calls()).toBe(1)
    // A copy of the same bytes is the same certificate.
    expect(check(new Uint8Array(manager), ca.pem)).toBe(true)
    expect(calls()).toBe(1)
  })

  it("refuses a worker's certificate and one of other roots, checking them every time", () => {
    const { check, calls } = counted()
    const worker = leaf(ca, 'swarm-worker')
    const impostor = leaf(other, 'swarm-manager')
    for (let i = 0; i < 3; i++) {
      expect(check(worker, ca.pem)).toBe(false)
      expect(check(impostor, ca.pem)).toBe(false)
    }
    expect(calls()).toBe(6)
  })

  it('checks a remembered certificate again against other roots', () => {
    const { check, calls } = counted()
    const manager = leaf(ca, 'swarm-manager')
    expect(check(manager, ca.pem)).toBe(true)
    expect(check(manager, other.pem)).toBe(false)
    expect(calls()).toBe(2)
  })

  it('checks a remembered certificate again once it has expired, and refuses it', () => {
    const { check, calls, advance } = counted()
    const manager = leaf(ca, 'swarm-manager')
    expect(check(manager, ca.pem)).toBe(true)
    advance(HOUR)
    expect(check(manager, ca.pem)).toBe(true)
    expect(calls()).toBe(1)
    advance(2 * HOUR)
    expect(check(manager, ca.pem)).toBe(false)
    expect(calls()).toBe(2)
  })

  it('remembers a bounded number of certificates', () => {
    let calls = 0
    const check = managerCertificateCheck({
      verify: (chain, options) => {
        calls++
        return pki.verifyChain(chain, options)
      },
      size: 2,
    })
    const [a, b, c] = [0, 1, 2].map(() => leaf(ca, 'swarm-manager'))
    for (const der of [a!, b!, c!, a!]) expect(check(der, ca.pem)).toBe(true)
    expect(calls).toBe(4)
  })
})

describe('rootsVouchedFor', () => {
  const tokens = pki.generateJoinTokens(ca.pem)
  const otherTokens = pki.generateJoinTokens(other.pem)

  it('accepts the root CA its token vouches for, again and again', () => {
    for (let i = 0; i < 3; i++) expect(rootsVouchedFor(tokens.worker, { certificate: ca.pem })).toBe(ca.pem)
  })

  it('refuses another root CA for that token, and that root CA for another token, after a success', () => {
    expect(rootsVouchedFor(tokens.worker, { certificate: ca.pem })).toBe(ca.pem)
    expect(() => rootsVouchedFor(tokens.worker, { certificate: other.pem })).toThrow(/fingerprint/)
    expect(() => rootsVouchedFor(otherTokens.worker, { certificate: ca.pem })).toThrow(/fingerprint/)
    expect(() => rootsVouchedFor(tokens.worker, {} as pki.RootCAResponse)).toThrow()
  })
})
