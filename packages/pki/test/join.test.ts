import { describe, expect, it } from 'vitest'
import {
  acceptCertificateResponse,
  caServer,
  createCSR,
  createJoinRequest,
  createRootCA,
  finishRootRotation,
  generateClusterId,
  generateJoinTokens,
  generateKeyPair,
  isPkiError,
  type JoinTokens,
  nodeIdentity,
  type PkiErrorCode,
  parseCertificate,
  parseCertificates,
  type RootCA,
  rateLimiter,
  rotateJoinToken,
  startRootRotation,
  verifyChain,
  verifyRootCAResponse,
} from '../src/index.js'
import { seededRandom } from './helpers.js'

const HOUR = 3_600_000

function codeOf(fn: () => unknown): PkiErrorCode | 'ok' {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (isPkiError(err)) return err.code
    throw err
  }
}

function cluster(seed: number) {
  const random = seededRandom(seed)
  let time = Date.UTC(2026, 2, 1)
  const clock = { now: () => time }
  const clusterId = generateClusterId(random)
  let ca: RootCA = createRootCA({ now: time, random })
  let roots = ca.pem
  let tokens: JoinTokens = generateJoinTokens(ca.pem, { random })
  const server = caServer({
    ca: () => ca,
    roots: () => roots,
    joinTokens: () => tokens,
    clusterId,
    clock,
    random,
    rateLimit: { burst: 3, perSecond: 1 },
  })
  return {
    random,
    clusterId,
    server,
    clock,
    advance: (ms: number) => {
      time += ms
    },
    get ca() {
      return ca
    },
    set ca(v: RootCA) {
      ca = v
    },
    get roots() {
      return roots
    },
    set roots(v: string) {
      roots = v
    },
    get tokens() {
      return tokens
    },
    set tokens(v: JoinTokens) {
      tokens = v
    },
  }
}

/** The joiner's side, end to end, over plain function calls (any transport can carry the messages). */
function join(c: ReturnType<typeof cluster>, token: string, source = '10.0.0.9') {
  const roots = verifyRootCAResponse(token, c.server.getRootCA())
  const { key, request } = createJoinRequest(token, { random: c.random })
  const response = c.server.join(request, { source })
  return acceptCertificateResponse(response, { key, roots, now: c.clock.now() })
}

describe('join protocol', () => {
  it('issues a worker or manager certificate decided by the token', () => {
    const c = cluster(1)
    const worker = join(c, c.tokens.worker)
    expect(worker.identity.role).toBe('swarm-worker')
    expect(worker.identity.clusterId).toBe(c.clusterId)
    const manager = join(c, c.tokens.manager)
    expect(manager.identity.role).toBe('swarm-manager')
    expect(manager.identity.nodeId).not.toBe(worker.identity.nodeId)
    expect(
      verifyChain(manager.certificate, { roots: manager.roots, now: c.clock.now(), clusterId: c.clusterId })
        .identity,
    ).toEqual(manager.identity)
  })

  it("refuses a root CA that does not match the token with swarm's message", () => {
    const c = cluster(2)
    const impostor = createRootCA({ now: c.clock.now(), random: c.random })
    expect(() => verifyRootCAResponse(c.tokens.worker, { certificate: impostor.pem })).toThrow(
      'remote CA does not match fingerprint',
    )
  })

  it("refuses a wrong token with swarm's message", () => {
    const c = cluster(3)
    const other = generateJoinTokens(c.ca.pem, { random: c.random })
    const { request } = createJoinRequest(other.worker, { random: c.random })
    expect(() => c.server.join(request, { source: 'a' })).toThrow(
      'A valid join token is necessary to join this cluster',
    )
    expect(
      codeOf(() => c.server.join({ csr: request.csr, token: 'x'.repeat(100_000) }, { source: 'a' })),
    ).toBe('INVALID_JOIN_TOKEN')
  })

  it('stops accepting a rotated token at once; joined nodes keep their certificates', () => {
    const c = cluster(4)
    const before = join(c, c.tokens.worker)
    const old = c.tokens.worker
    c.tokens = { ...c.tokens, worker: rotateJoinToken(old, { random: c.random }) }
    expect(codeOf(() => join(c, old))).toBe('INVALID_JOIN_TOKEN')
    expect(join(c, c.tokens.worker).identity.role).toBe('swarm-worker')
    expect(verifyChain(before.certificate, { roots: c.roots, now: c.clock.now() }).identity).toEqual(
      before.identity,
    )
  })

  it('takes only the public key from the CSR', () => {
    const c = cluster(5)
    const key = generateKeyPair({ random: c.random })
    const csr = createCSR(key.privateKey, { commonName: 'i-want-to-be-this-node' })
    const res = c.server.join({ csr, token: c.tokens.worker }, { source: 's' })
    const cert = parseCertificate(parseCertificates(res.certificate)[0]!.der)
    expect(cert.subject.commonName).toBe(res.nodeId)
    expect(Buffer.compare(cert.publicKey, key.publicKey)).toBe(0)
  })

  it('refuses malformed requests with a code', () => {
    const c = cluster(6)
    const t = c.tokens.worker
    expect(codeOf(() => c.server.join({ csr: 'garbage', token: t }, { source: 's1' }))).toBe('MALFORMED_PEM')
    expect(codeOf(() => c.server.join({ csr: 'x'.repeat(20_000), token: t }, { source: 's2' }))).toBe(
      'TOO_LARGE',
    )
    expect(codeOf(() => c.server.join(null as never, { source: 's3' }))).toBe('MALFORMED_CSR')
    const csr = createCSR(generateKeyPair({ random: c.random }).privateKey)
    const b64 = csr.split('\n').slice(1, -2).join('')
    const der = Buffer.from(b64, 'base64')
    der[der.length - 1]! ^= 1
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
    expect(codeOf(() => c.server.join({ csr: bad, token: t }, { source: 's4' }))).toBe('BAD_CSR_SIGNATURE')
  })

  it('rate limits issuance per source, before looking at the token', () => {
    const c = cluster(7)
    const { request } = createJoinRequest(c.tokens.worker, { random: c.random })
    const bad = { ...request, token: 'wrong' }
    expect(codeOf(() => c.server.join(bad, { source: 'attacker' }))).toBe('INVALID_JOIN_TOKEN')
    expect(codeOf(() => c.server.join(bad, { source: 'attacker' }))).toBe('INVALID_JOIN_TOKEN')
    expect(codeOf(() => c.server.join(bad, { source: 'attacker' }))).toBe('INVALID_JOIN_TOKEN')
    expect(codeOf(() => c.server.join(request, { source: 'attacker' }))).toBe('RATE_LIMITED')
    expect(codeOf(() => c.server.join(request, { source: 'someone-else' }))).toBe('ok')
    c.advance(1000)
    expect(codeOf(() => c.server.join(request, { source: 'attacker' }))).toBe('ok')
    expect(codeOf(() => c.server.join(request, { source: 'attacker' }))).toBe('RATE_LIMITED')
  })

  it('renews with the role the store says, so a promotion takes effect', () => {
    const c = cluster(8)
    const worker = join(c, c.tokens.worker)
    const csr = createCSR(worker.key.privateKey)
    const res = c.server.renew(
      { csr },
      { source: 'n', node: { nodeId: worker.identity.nodeId, role: 'swarm-manager' } },
    )
    const creds = acceptCertificateResponse(res, { key: worker.key, roots: c.roots, now: c.clock.now() })
    expect(creds.identity).toEqual({ ...worker.identity, role: 'swarm-manager' })
    expect(
      codeOf(() =>
        acceptCertificateResponse(res, {
          key: generateKeyPair({ random: c.random }),
          roots: c.roots,
          now: c.clock.now(),
        }),
      ),
    ).toBe('KEY_MISMATCH')
  })
})

describe('root rotation', () => {
  it('keeps the cluster joined through a rotation and regenerates the tokens at the end', () => {
    const c = cluster(9)
    const oldNode = join(c, c.tokens.manager)
    const rotation = startRootRotation(c.ca, { now: c.clock.now(), random: c.random })
    expect(codeOf(() => startRootRotation(rotation.newCA))).toBe('ROTATION_IN_PROGRESS')
    // During rotation: issue with the new key, hand out the old root, chains go through the cross-signed cert.
    c.ca = rotation.newCA
    const oldTokens = c.tokens
    const reissued = c.server.renew(
      { csr: createCSR(oldNode.key.privateKey) },
      { source: 'n', node: oldNode.identity },
    )
    expect(parseCertificates(reissued.certificate)).toHaveLength(2)
    const now = c.clock.now()
    expect(verifyChain(reissued.certificate, { roots: rotation.oldCA.pem, now }).path).toHaveLength(3)
    expect(verifyChain(reissued.certificate, { roots: rotation.newCA.pem, now }).path).toHaveLength(2)
    // A node joining mid-rotation still uses the old token and the old root.
    const joiner = join(c, oldTokens.worker)
    expect(verifyChain(joiner.certificate, { roots: rotation.oldCA.pem, now }).identity.role).toBe(
      'swarm-worker',
    )
    // The old certificate still verifies under the old root while the rotation runs.
    expect(verifyChain(oldNode.certificate, { roots: rotation.oldCA.pem, now }).identity).toEqual(
      oldNode.identity,
    )

    const done = finishRootRotation(rotation, { random: c.random })
    c.ca = done.ca
    c.roots = done.ca.pem
    c.tokens = done.joinTokens
    expect(done.joinTokens.worker).not.toBe(oldTokens.worker)
    expect(done.joinTokens.manager).not.toBe(oldTokens.manager)
    expect(done.joinTokens.worker.slice(9, 59)).not.toBe(oldTokens.worker.slice(9, 59))
    // Old tokens no longer fit the root that is handed out, new ones do.
    expect(codeOf(() => verifyRootCAResponse(oldTokens.worker, c.server.getRootCA()))).toBe('CA_MISMATCH')
    expect(join(c, c.tokens.worker).identity.role).toBe('swarm-worker')
    // Under the new anchor, re-issued chains verify and certificates from the old root do not.
    expect(verifyChain(reissued.certificate, { roots: done.ca.pem, now }).identity.nodeId).toBe(
      oldNode.identity.nodeId,
    )
    expect(codeOf(() => verifyChain(oldNode.certificate, { roots: done.ca.pem, now }))).toBe('UNKNOWN_ISSUER')
    expect(nodeIdentity(parseCertificates(reissued.certificate)[0]!).role).toBe('swarm-manager')
  })
})

describe('rateLimiter', () => {
  it('refills over time and forgets the least recently seen sources beyond its bound', () => {
    let t = 0
    const limiter = rateLimiter({ burst: 2, perSecond: 0.5, maxSources: 3, clock: { now: () => t } })
    expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(true)
    expect(limiter.tryTake('a')).toBe(false)
    t += 1999
    expect(limiter.tryTake('a')).toBe(false)
    t += 1
    expect(limiter.tryTake('a')).toBe(true)
    for (const s of ['b', 'c', 'd', 'e']) limiter.tryTake(s)
    expect(limiter.size).toBe(3)
    expect(() => rateLimiter({ burst: 0 })).toThrow(RangeError)
  })
})

describe('verifyRootCAResponse', () => {
  it('refuses oversized and non-CA bundles', () => {
    const c = cluster(10)
    expect(codeOf(() => verifyRootCAResponse(c.tokens.worker, { certificate: 'x'.repeat(100_000) }))).toBe(
      'TOO_LARGE',
    )
    expect(codeOf(() => verifyRootCAResponse(c.tokens.worker, null as never))).toBe('MALFORMED_PEM')
    expect(codeOf(() => verifyRootCAResponse('SWMTKN-1-x', c.server.getRootCA()))).toBe('MALFORMED_TOKEN')
    void HOUR
  })
})
