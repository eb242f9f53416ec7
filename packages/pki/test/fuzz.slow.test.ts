// Mutation fuzzing of every decoder that reads untrusted bytes. The default run feeds 100,000+ mutated
// inputs to the DER parser (a few seconds); SWARMKIT_SLOW=1 feeds 2,000,000. A failing case prints its seed.
import { describe, expect, it } from 'vitest'
import {
  type Certificate,
  certificatePem,
  createCSR,
  createRootCA,
  encodePrivateKeyPem,
  generateKeyPair,
  isPkiError,
  issueNodeCertificate,
  parseJoinToken,
  parseUnlockKey,
  startRootRotation,
  verifyChain,
} from '../src/index.js'
import { concat, type DerNode, decodeDer, tlv } from '../src/internal/der.js'
import { decodePem } from '../src/internal/pem.js'
import { decodeCsrDer, decodePkcs8, parseCertificateDer, parseCsrDer } from '../src/internal/x509.js'
import { OPENSSL_CERT, OPENSSL_CSR, OPENSSL_KEY } from './fixtures.js'
import { seededFloat, seededRandom } from './helpers.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'
const DER_BUDGET = SLOW ? 2_000_000 : 100_000
const SEED = Number(process.env.SWARMKIT_FUZZ_SEED ?? 20261125)
/** Per-test time limit: generous, for loaded machines; the default budget runs in a few seconds. */
const TIMEOUT_MS = SLOW ? 3_600_000 : 120_000
const VERIFY_BUDGET = SLOW ? 20_000 : 300

function reencode(n: DerNode): Uint8Array {
  return n.children ? tlv(n.tag, ...n.children.map(reencode)) : tlv(n.tag, n.value)
}

/** The corpus: DER this package makes and DER openssl made (fixed fixtures, so runs replay exactly). */
function corpus(): Uint8Array[] {
  const random = seededRandom(SEED)
  const now = Date.UTC(2026, 0, 1)
  const ca = createRootCA({ now, random })
  const key = generateKeyPair({ random })
  const csr = createCSR(key.privateKey, { commonName: 'fuzz' })
  const issued = issueNodeCertificate(ca, csr, {
    nodeId: '0123456789abcdefghijklmno',
    role: 'swarm-manager',
    clusterId: 'onmlkjihgfedcba9876543210',
    now,
    random,
  })
  const rotation = startRootRotation(ca, { now, random })
  const pems = [
    ca.pem,
    issued.pem,
    csr,
    encodePrivateKeyPem(key.privateKey),
    certificatePem(rotation.crossSigned),
    OPENSSL_KEY,
    OPENSSL_CERT,
    OPENSSL_CSR,
  ]
  return pems.flatMap((p) => decodePem(p).map((blk) => blk.der))
}

const INTERESTING = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x17, 0x18, 0x1f, 0x30, 0x31, 0x7f, 0x80, 0x81, 0x82, 0x83,
  0x84, 0xa0, 0xa3, 0xff,
]

function mutator(seed: number, items: Uint8Array[]) {
  const rnd = seededFloat(seed)
  const int = (n: number) => Math.floor(rnd() * n)
  return (): Uint8Array => {
    const src = items[int(items.length)]!
    let d: Uint8Array = src.slice()
    const rounds = 1 + int(3)
    for (let r = 0; r < rounds; r++) {
      const at = int(Math.max(1, d.length))
      switch (int(8)) {
        case 0: // flip bits
          d[at] = d[at]! ^ (1 << int(8))
          break
        case 1: // interesting byte
          d[at] = INTERESTING[int(INTERESTING.length)]!
          break
        case 2: {
          // insert bytes
          const ins = Uint8Array.from({ length: 1 + int(4) }, () =>
            rnd() < 0.5 ? INTERESTING[int(INTERESTING.length)]! : int(256),
          )
          d = concat([d.subarray(0, at), ins, d.subarray(at)])
          break
        }
        case 3: // delete a range
          d = concat([d.subarray(0, at), d.subarray(at + 1 + int(16))])
          break
        case 4: // truncate
          d = d.slice(0, at)
          break
        case 5: {
          // duplicate a range in place
          const len = 1 + int(32)
          d = concat([d.subarray(0, at), d.subarray(at, at + len), d.subarray(at)])
          break
        }
        case 6: {
          // splice the tail of another item
          const other = items[int(items.length)]!
          d = concat([d.subarray(0, at), other.subarray(int(other.length))])
          break
        }
        default: {
          // random small integer into a length position (a byte right after a tag-looking byte)
          const pos = d.findIndex((x, i) => i >= at && (x === 0x30 || x === 0x04 || x === 0x03 || x === 0xa3))
          if (pos >= 0 && pos + 1 < d.length) d[pos + 1] = rnd() < 0.3 ? 0x80 | int(5) : int(256)
        }
      }
    }
    return d
  }
}

const ALLOWED = new Set([
  'EXPIRED',
  'NOT_YET_VALID',
  'UNKNOWN_ISSUER',
  'BAD_SIGNATURE',
  'NOT_A_CA',
  'NOT_A_NODE_CERTIFICATE',
  'CHAIN_TOO_LONG',
  'MALFORMED_DER',
  'MALFORMED_CERTIFICATE',
  'MALFORMED_CSR',
  'MALFORMED_KEY',
  'UNSUPPORTED_ALGORITHM',
  'TOO_LARGE',
  'BAD_CSR_SIGNATURE',
])

function expectOnlyPkiErrors(label: string, i: number, input: Uint8Array, fn: () => void): boolean {
  try {
    fn()
    return true
  } catch (err) {
    if (isPkiError(err) && ALLOWED.has(err.code)) return false
    throw new Error(
      `${label}: input #${i} (seed ${SEED}) threw ${String(err)}; input ${Buffer.from(input).toString('hex')}`,
      { cause: err },
    )
  }
}

describe('fuzzing', () => {
  const items = corpus()
  const fuzzNow = Date.UTC(2026, 0, 1)
  const anchors = items.flatMap((d) => {
    try {
      const c = parseCertificateDer(d)
      return c.isCA ? [c] : []
    } catch {
      return []
    }
  })

  it(
    `DER, certificate, CSR and key parsers survive ${DER_BUDGET.toLocaleString('en')} mutated inputs`,
    () => {
      const next = mutator(SEED, items)
      let accepted = 0
      let certsAccepted = 0
      for (let i = 0; i < DER_BUDGET; i++) {
        const input = next()
        const ok = expectOnlyPkiErrors('decodeDer', i, input, () => {
          const tree = decodeDer(input)
          // Whatever strict DER accepts is canonical: it re-encodes to the very same bytes.
          if (Buffer.compare(reencode(tree), input) !== 0)
            throw new Error('accepted a non-canonical encoding')
        })
        if (!ok) continue
        accepted++
        let cert: Certificate | undefined
        if (expectOnlyPkiErrors('parseCertificate', i, input, () => (cert = parseCertificateDer(input)))) {
          certsAccepted++
          // Verification (signatures, names, times, identity) of what parses: a few hundred by default.
          if (cert && certsAccepted <= VERIFY_BUDGET) {
            const c = cert
            expectOnlyPkiErrors('verifyChain', i, input, () =>
              verifyChain([c], { roots: anchors, now: fuzzNow }),
            )
          }
        }
        expectOnlyPkiErrors('decodeCsr', i, input, () => decodeCsrDer(input))
        expectOnlyPkiErrors('decodePkcs8', i, input, () => decodePkcs8(input))
      }
      // The mutator must reach deep enough to matter: some inputs survive decoding, most do not.
      expect(accepted).toBeGreaterThan(DER_BUDGET / 50)
      expect(accepted).toBeLessThan(DER_BUDGET)
      expect(certsAccepted).toBeGreaterThan(0)
      console.log(`fuzz: ${DER_BUDGET} inputs, ${accepted} decoded as DER, ${certsAccepted} as certificates`)
    },
    TIMEOUT_MS,
  )

  it(
    'full CSR parsing (with signature check) survives mutated CSRs',
    () => {
      const csrs = items.filter((d) => {
        try {
          decodeCsrDer(d)
          return true
        } catch {
          return false
        }
      })
      const next = mutator(SEED + 1, csrs)
      const n = SLOW ? 50_000 : 2_000
      for (let i = 0; i < n; i++) {
        const input = next()
        expectOnlyPkiErrors('parseCsr', i, input, () => parseCsrDer(input))
      }
    },
    TIMEOUT_MS,
  )

  it(
    'PEM, join-token and unlock-key parsers survive mutated text',
    () => {
      const random = seededRandom(SEED)
      const texts = [
        createRootCA({ random }).pem,
        'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx',
        'SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8',
      ].map((t) => new TextEncoder().encode(t))
      const next = mutator(SEED + 2, texts)
      const dec = new TextDecoder()
      const n = SLOW ? 500_000 : 20_000
      for (let i = 0; i < n; i++) {
        const text = dec.decode(next())
        for (const fn of [() => decodePem(text), () => parseJoinToken(text), () => parseUnlockKey(text)]) {
          try {
            fn()
          } catch (err) {
            if (!isPkiError(err))
              throw new Error(`text #${i} (seed ${SEED}) threw ${String(err)}: ${JSON.stringify(text)}`)
          }
        }
      }
    },
    TIMEOUT_MS,
  )
})
