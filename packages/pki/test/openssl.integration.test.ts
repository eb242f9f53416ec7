// Interoperability with the real openssl CLI: what we make, openssl accepts; what openssl makes, we read.
import { describe, expect, it } from 'vitest'
import {
  certificatePem,
  createCSR,
  createRootCA,
  decodePrivateKeyPem,
  encodePrivateKeyPem,
  generateClusterId,
  generateKeyPair,
  generateNodeId,
  isPkiError,
  issueNodeCertificate,
  nodeIdentity,
  parseCertificate,
  parseCSR,
  startRootRotation,
  verifyChain,
} from '../src/index.js'
import { openssl, opensslMake, seededRandom } from './helpers.js'

const random = seededRandom(11)
const now = Date.UTC(2026, 0, 15, 12, 0, 0)
const clusterId = generateClusterId(random)
const ca = createRootCA({ now, random })

function issue(role: 'swarm-manager' | 'swarm-worker', options: { validityMs?: number; at?: number } = {}) {
  const key = generateKeyPair({ random })
  const nodeId = generateNodeId(random)
  const issued = issueNodeCertificate(ca, createCSR(key.privateKey), {
    nodeId,
    role,
    clusterId,
    now: options.at ?? now,
    random,
    ...(options.validityMs ? { validityMs: options.validityMs } : {}),
  })
  return { key, nodeId, issued }
}

/** openssl verify at our fixed test time. */
function verify(caPem: string, leaf: string, untrusted?: string) {
  const files: Record<string, string> = { 'ca.pem': caPem, 'leaf.pem': leaf }
  const args = ['verify', '-attime', String(Math.floor(now / 1000)), '-CAfile', 'ca.pem']
  if (untrusted) {
    files['untrusted.pem'] = untrusted
    args.push('-untrusted', 'untrusted.pem')
  }
  return openssl([...args, 'leaf.pem'], files)
}

describe('openssl accepts what we make', () => {
  it('verifies issued manager and worker certificates with openssl verify -CAfile', () => {
    for (const role of ['swarm-manager', 'swarm-worker'] as const) {
      const r = verify(ca.pem, issue(role).issued.pem)
      expect(r.stdout + r.stderr).toContain('leaf.pem: OK')
      expect(r.status).toBe(0)
    }
  })

  it('checks the TLS purposes: sslserver and sslclient', () => {
    const { issued } = issue('swarm-worker')
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = openssl(
        [
          'verify',
          '-attime',
          String(Math.floor(now / 1000)),
          '-purpose',
          purpose,
          '-CAfile',
          'ca.pem',
          'leaf.pem',
        ],
        { 'ca.pem': ca.pem, 'leaf.pem': issued.pem },
      )
      expect(r.status, r.stderr).toBe(0)
    }
  })

  it('shows the expected fields in openssl x509 -text', () => {
    const { issued, nodeId } = issue('swarm-manager')
    const text = openssl(['x509', '-in', 'c.pem', '-noout', '-text'], { 'c.pem': issued.pem }).stdout
    expect(text).toContain('Version: 3 (0x2)')
    expect(text).toContain('Signature Algorithm: ED25519')
    expect(text).toContain('Issuer: CN = swarm-ca')
    expect(text).toContain(`Subject: O = ${clusterId}, OU = swarm-manager, CN = ${nodeId}`)
    expect(text).toContain('Public Key Algorithm: ED25519')
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/)
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/)
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication')
    expect(text).toContain(`DNS:swarm-manager, DNS:${nodeId}, DNS:swarm-ca`)
    expect(text).toContain('Not Before: Jan 15 11:00:00 2026 GMT') // backdated 1 hour
    expect(text).toContain('Not After : Apr 15 11:00:00 2026 GMT') // 90 days
    expect(text).toContain('X509v3 Authority Key Identifier')

    const worker = issue('swarm-worker').issued.pem
    const wtext = openssl(['x509', '-in', 'c.pem', '-noout', '-text'], { 'c.pem': worker }).stdout
    expect(wtext).toMatch(/DNS:swarm-worker, DNS:[0-9a-z]{25}\n/)

    const root = openssl(['x509', '-in', 'c.pem', '-noout', '-text'], { 'c.pem': ca.pem }).stdout
    expect(root).toContain('Subject: CN = swarm-ca')
    expect(root).toMatch(/Basic Constraints: critical\s+CA:TRUE/)
    expect(root).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/)
    expect(root).toContain('X509v3 Subject Key Identifier')
    expect(root).toContain('Not After : Jan 10 11:00:00 2046 GMT') // 20 years of 365 days
  })

  it('verifies our CSRs with openssl req -verify', () => {
    const key = generateKeyPair({ random })
    for (const csr of [createCSR(key.privateKey), createCSR(key.privateKey, { commonName: 'joiner' })]) {
      const r = openssl(['req', '-in', 'r.pem', '-verify', '-noout'], { 'r.pem': csr })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout + r.stderr).toMatch(/verify OK/)
    }
  })

  it('reads our PKCS#8 private keys', () => {
    const key = generateKeyPair({ random })
    const r = openssl(['pkey', '-in', 'k.pem', '-pubout', '-outform', 'DER'], {
      'k.pem': encodePrivateKeyPem(key.privateKey),
    })
    expect(r.status, r.stderr).toBe(0)
  })

  it('verifies rotation chains under the old root with the cross-signed intermediate, and under the new root', () => {
    const rotation = startRootRotation(ca, { now, random })
    const key = generateKeyPair({ random })
    const issued = issueNodeCertificate(rotation.newCA, createCSR(key.privateKey), {
      nodeId: generateNodeId(random),
      role: 'swarm-worker',
      clusterId,
      now,
      random,
    })
    const cross = certificatePem(rotation.crossSigned)
    expect(issued.chain).toBe(issued.pem + cross)
    expect(verify(ca.pem, issued.pem, cross).status).toBe(0)
    expect(verify(rotation.newCA.pem, issued.pem).status).toBe(0)
    // Without the intermediate, the old root alone does not vouch for the new key.
    expect(verify(ca.pem, issued.pem).status).not.toBe(0)
    // Certificates from before the rotation still verify under the old root.
    expect(verify(ca.pem, issue('swarm-worker').issued.pem).status).toBe(0)
  })

  it('agrees with openssl that an expired certificate is expired', () => {
    const { issued } = issue('swarm-worker', { validityMs: 3_600_000, at: now - 3 * 3_600_000 })
    const r = verify(ca.pem, issued.pem)
    expect(r.status).not.toBe(0)
    expect(r.stdout + r.stderr).toContain('certificate has expired')
    expect(() => verifyChain(issued.pem, { roots: ca.pem, now })).toThrow(
      expect.objectContaining({ code: 'EXPIRED' }),
    )
  })
})

describe('we read what openssl makes', () => {
  const keyPem = opensslMake(['genpkey', '-algorithm', 'ed25519', '-out', 'k.pem'], {}, 'k.pem')

  it('reads openssl Ed25519 private keys', () => {
    const key = decodePrivateKeyPem(keyPem)
    const pubDer = openssl(['pkey', '-in', 'k.pem', '-pubout'], { 'k.pem': keyPem }).stdout
    const b64 = pubDer
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('')
    const der = Buffer.from(b64, 'base64')
    expect(Buffer.from(der.subarray(der.length - 32)).toString('hex')).toBe(
      Buffer.from(key.publicKey).toString('hex'),
    )
  })

  it('parses openssl CSRs and issues certificates for them', () => {
    const csrPem = opensslMake(
      ['req', '-new', '-key', 'k.pem', '-subj', '/CN=ignored/O=attacker', '-out', 'r.pem'],
      { 'k.pem': keyPem },
      'r.pem',
    )
    const csr = parseCSR(csrPem)
    expect(csr.subject.commonName).toBe('ignored')
    expect(Buffer.compare(csr.publicKey, decodePrivateKeyPem(keyPem).publicKey)).toBe(0)
    const nodeId = generateNodeId(random)
    const issued = issueNodeCertificate(ca, csrPem, { nodeId, role: 'swarm-worker', clusterId, now, random })
    // The CA decides the subject; nothing but the key comes from the CSR.
    expect(nodeIdentity(issued.certificate)).toEqual({ nodeId, role: 'swarm-worker', clusterId })
    expect(issued.certificate.subject.organization).toEqual([clusterId])
    expect(verify(ca.pem, issued.pem).status).toBe(0)
  })

  it('parses openssl-made Ed25519 CA and node certificates and verifies the chain', () => {
    const caKey = opensslMake(['genpkey', '-algorithm', 'ed25519', '-out', 'ca.key'], {}, 'ca.key')
    const caPem = opensslMake(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-subj',
        '/CN=openssl-ca',
        '-days',
        '3650',
        '-out',
        'ca.pem',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      { 'ca.key': caKey },
      'ca.pem',
    )
    const nodeId = generateNodeId(random)
    const ext = `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:swarm-worker,DNS:${nodeId}\n`
    const csrPem = opensslMake(
      [
        'req',
        '-new',
        '-key',
        'k.pem',
        '-subj',
        `/O=${clusterId}/OU=swarm-worker/CN=${nodeId}`,
        '-out',
        'r.pem',
      ],
      { 'k.pem': keyPem },
      'r.pem',
    )
    const leafPem = opensslMake(
      [
        'x509',
        '-req',
        '-in',
        'r.pem',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-days',
        '30',
        '-extfile',
        'ext.cnf',
        '-set_serial',
        '0x0102030405',
        '-out',
        'leaf.pem',
      ],
      { 'r.pem': csrPem, 'ca.pem': caPem, 'ca.key': caKey, 'ext.cnf': ext },
      'leaf.pem',
    )
    const root = parseCertificate(caPem)
    expect(root.subject.commonName).toBe('openssl-ca')
    expect(root.isCA).toBe(true)
    expect(root.keyUsage).toEqual(['keyCertSign', 'cRLSign'])
    expect(root.subjectKeyId).toBeDefined()
    const leaf = parseCertificate(leafPem)
    expect(leaf.serialNumber).toBe('0102030405')
    expect(leaf.isCA).toBe(false)
    expect(leaf.dnsNames).toEqual(['swarm-worker', nodeId])
    expect(leaf.extendedKeyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
    // openssl reads the clock once for each bound: a second can tick between the two (it did under load).
    const overThirtyDays = leaf.notAfter.getTime() - leaf.notBefore.getTime() - 30 * 86_400_000
    expect(overThirtyDays).toBeGreaterThanOrEqual(0)
    expect(overThirtyDays).toBeLessThanOrEqual(2000)
    const result = verifyChain(leafPem, { roots: caPem, clusterId })
    expect(result.identity).toEqual({ nodeId, role: 'swarm-worker', clusterId })
    // An openssl-made leaf does not chain to our CA.
    let code: string | undefined
    try {
      verifyChain(leafPem, { roots: ca.pem })
    } catch (err) {
      code = isPkiError(err) ? err.code : 'other'
    }
    expect(code).toBe('UNKNOWN_ISSUER')
  })

  it('agrees with openssl on path length constraints through an intermediate', () => {
    const rootKey = opensslMake(['genpkey', '-algorithm', 'ed25519', '-out', 'k.pem'], {}, 'k.pem')
    const midKey = opensslMake(['genpkey', '-algorithm', 'ed25519', '-out', 'k.pem'], {}, 'k.pem')
    const ca0 = (pathlen: string) =>
      opensslMake(
        [
          'req',
          '-x509',
          '-new',
          '-key',
          'k.pem',
          '-subj',
          '/CN=root',
          '-days',
          '10',
          '-out',
          'c.pem',
          '-addext',
          `basicConstraints=critical,CA:TRUE${pathlen}`,
          '-addext',
          'keyUsage=critical,keyCertSign',
        ],
        { 'k.pem': rootKey },
        'c.pem',
      )
    const midCsr = opensslMake(
      ['req', '-new', '-key', 'k.pem', '-subj', '/CN=mid', '-out', 'r.pem'],
      { 'k.pem': midKey },
      'r.pem',
    )
    const nodeId = generateNodeId(random)
    const leafCsr = opensslMake(
      [
        'req',
        '-new',
        '-key',
        'k.pem',
        '-subj',
        `/O=${clusterId}/OU=swarm-manager/CN=${nodeId}`,
        '-out',
        'r.pem',
      ],
      { 'k.pem': keyPem },
      'r.pem',
    )
    for (const [pathlen, ok] of [
      [',pathlen:0', false],
      [',pathlen:1', true],
      ['', true],
    ] as const) {
      const rootPem = ca0(pathlen)
      const midPem = opensslMake(
        [
          'x509',
          '-req',
          '-in',
          'r.pem',
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-days',
          '5',
          '-extfile',
          'e.cnf',
          '-out',
          'm.pem',
        ],
        {
          'r.pem': midCsr,
          'ca.pem': rootPem,
          'ca.key': rootKey,
          'e.cnf':
            'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
        },
        'm.pem',
      )
      const leafPem = opensslMake(
        [
          'x509',
          '-req',
          '-in',
          'r.pem',
          '-CA',
          'm.pem',
          '-CAkey',
          'm.key',
          '-days',
          '2',
          '-extfile',
          'e.cnf',
          '-out',
          'l.pem',
        ],
        {
          'r.pem': leafCsr,
          'm.pem': midPem,
          'm.key': midKey,
          'e.cnf': 'keyUsage=critical,digitalSignature\n',
        },
        'l.pem',
      )
      const r = openssl(['verify', '-CAfile', 'ca.pem', '-untrusted', 'm.pem', 'l.pem'], {
        'ca.pem': rootPem,
        'm.pem': midPem,
        'l.pem': leafPem,
      })
      expect(r.status === 0, `openssl, pathlen "${pathlen}": ${r.stderr}`).toBe(ok)
      let code = 'ok'
      try {
        verifyChain(leafPem + midPem, { roots: rootPem })
      } catch (err) {
        code = isPkiError(err) ? err.code : String(err)
      }
      expect(code, `pathlen "${pathlen}"`).toBe(ok ? 'ok' : 'CHAIN_TOO_LONG')
    }
  })

  it('refuses openssl certificates with algorithms it does not support', () => {
    const ecKey = opensslMake(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'k.pem'],
      {},
      'k.pem',
    )
    const pem = opensslMake(
      ['req', '-x509', '-new', '-key', 'k.pem', '-subj', '/CN=ec', '-days', '1', '-out', 'c.pem'],
      { 'k.pem': ecKey },
      'c.pem',
    )
    expect(() => parseCertificate(pem)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_ALGORITHM' }))
    expect(() => decodePrivateKeyPem(ecKey)).toThrow(expect.objectContaining({ name: 'PkiError' }))
  })
})
