import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  caDigest,
  checkJoinTokenCA,
  encodeUnlockKey,
  generateJoinToken,
  generateJoinTokens,
  generateUnlockKey,
  isPkiError,
  JOIN_TOKEN_LENGTH,
  joinTokensEqual,
  type PkiErrorCode,
  parseJoinToken,
  parseUnlockKey,
  roleForJoinToken,
  rotateJoinToken,
} from '../src/index.js'
import { seededRandom } from './helpers.js'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => i)
// Expected values below were computed independently (Python: hashlib, int(..., 36), base64).
const PEM = '-----BEGIN CERTIFICATE-----\nc3dhcm1raXQ=\n-----END CERTIFICATE-----\n'

function codeOf(fn: () => unknown): PkiErrorCode | 'ok' {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (isPkiError(err)) return err.code
    throw err
  }
}

describe('join tokens', () => {
  it('matches the known-answer vector', () => {
    expect(hex(caDigest(PEM))).toBe('e375ab5afad8594b33c78915ee941d9a654c8e070e92526363b908366d0465b8')
    const token = generateJoinToken(PEM, { random: counting })
    expect(token).toBe(
      'SWMTKN-1-5o39kdx819bap8k4fu58p38nt1olmoz9eav81kcutl16e9a188-000avh9he7dy896m08s18udxr',
    )
    expect(token).toHaveLength(85)
    expect(JOIN_TOKEN_LENGTH).toBe(85)
  })

  it('parses tokens made by Docker', () => {
    const a = parseJoinToken(
      'SWMTKN-1-0vf8dgmp7iwwit57sk8pclhv7xlc15gf4f4edhoh26lyh98egb-0a7274fenyvv4d11xwieapefa',
    )
    expect(hex(a.caDigest)).toBe('23056abe26b1a84588ea9003c0656afe959801c763fc7b0395c5ce353caae82b')
    expect(hex(a.secret)).toBe('04c8b626f15d4f4dc74b75ae0d937746')
    const b = parseJoinToken(
      'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx',
    )
    expect(hex(b.caDigest)).toBe('9529c6f3c5558ac3ec02b338a52d3c5434e0835a8af6f1e124649e87afaa2fb5')
    expect(hex(b.secret)).toBe('16033638507aa25012db6efca9e56f7d')
  })

  it('round-trips parse(generate) for any digest and secret', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (d, s) => {
          const token = generateJoinToken(d, { random: () => s })
          expect(token).toHaveLength(85)
          const p = parseJoinToken(token)
          expect(hex(p.caDigest)).toBe(hex(d))
          expect(hex(p.secret)).toBe(hex(s))
          expect(p.token).toBe(token)
        },
      ),
      { seed: 42, numRuns: 300 },
    )
  })

  it('rejects every single-character change of a token', () => {
    // Every position, every printable replacement: the token either fails to parse or no longer
    // matches the CA (digest) or the secret (constant-time compare).
    const tokens = generateJoinTokens(PEM, { random: seededRandom(1) })
    const token = tokens.worker
    const alphabet = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))
    let changes = 0
    for (let i = 0; i < token.length; i++) {
      for (const c of alphabet) {
        if (c === token[i]) continue
        const changed = token.slice(0, i) + c + token.slice(i + 1)
        changes++
        const code = codeOf(() => {
          checkJoinTokenCA(changed, PEM)
          roleForJoinToken(changed, tokens)
        })
        expect(code, changed).not.toBe('ok')
      }
    }
    expect(changes).toBe(85 * 94)
  })

  it('rejects random single-character changes of random tokens (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.nat(84),
        fc.integer({ min: 0, max: 0x10ffff }).filter((c) => c < 0xd800 || c > 0xdfff),
        (secret, pos, code) => {
          const token = generateJoinToken(PEM, { random: () => secret })
          const ch = String.fromCodePoint(code)
          fc.pre(ch !== token[pos])
          const changed = token.slice(0, pos) + ch + token.slice(pos + 1)
          const result = codeOf(() => {
            checkJoinTokenCA(changed, PEM)
            roleForJoinToken(changed, { worker: token, manager: token })
          })
          expect(result).not.toBe('ok')
        },
      ),
      { seed: 7, numRuns: 2000 },
    )
  })

  it('gives a distinct error for each malformed case', () => {
    const good = generateJoinToken(PEM, { random: counting })
    const [, , digest, secret] = good.split('-') as [string, string, string, string]
    expect(codeOf(() => parseJoinToken(''))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken(`SWMTKX-1-${digest}-${secret}`))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken('SWMTKN'))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest}`))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken(`${good}-x`))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken('x'.repeat(10_000)))).toBe('MALFORMED_TOKEN')
    expect(codeOf(() => parseJoinToken(`SWMTKN-2-${digest}-${secret}-1`))).toBe('UNSUPPORTED_TOKEN_VERSION')
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest.toUpperCase()}-${secret}`))).toBe(
      'MALFORMED_TOKEN_DIGEST',
    )
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest.slice(1)}-${secret}`))).toBe(
      'MALFORMED_TOKEN_DIGEST',
    )
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${'z'.repeat(50)}-${secret}`))).toBe(
      'MALFORMED_TOKEN_DIGEST',
    )
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest}-${secret}0`))).toBe('MALFORMED_TOKEN_SECRET')
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest}-${'z'.repeat(25)}`))).toBe(
      'MALFORMED_TOKEN_SECRET',
    )
    // 2^128 - 1 is the largest secret; one more does not fit in 16 bytes.
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest}-f5lxx1zz5pnorynqglhzmsp33`))).toBe('ok')
    expect(codeOf(() => parseJoinToken(`SWMTKN-1-${digest}-f5lxx1zz5pnorynqglhzmsp34`))).toBe(
      'MALFORMED_TOKEN_SECRET',
    )
    expect(() => parseJoinToken(42 as unknown as string)).toThrow(TypeError)
  })

  it("checks the CA digest with swarm's message", () => {
    const token = generateJoinToken(PEM)
    expect(() => checkJoinTokenCA(token, PEM)).not.toThrow()
    expect(() => checkJoinTokenCA(token, `${PEM}\n`)).toThrow('remote CA does not match fingerprint')
    expect(codeOf(() => checkJoinTokenCA(token, 'other'))).toBe('CA_MISMATCH')
  })

  it("picks the role from the token, manager first, and refuses others with swarm's message", () => {
    const tokens = generateJoinTokens(PEM, { random: seededRandom(2) })
    expect(tokens.worker).not.toBe(tokens.manager)
    expect(roleForJoinToken(tokens.manager, tokens)).toBe('swarm-manager')
    expect(roleForJoinToken(tokens.worker, tokens)).toBe('swarm-worker')
    expect(() => roleForJoinToken('nope', tokens)).toThrow(
      'A valid join token is necessary to join this cluster',
    )
    expect(joinTokensEqual(tokens.worker, tokens.worker)).toBe(true)
    expect(joinTokensEqual(tokens.worker, tokens.manager)).toBe(false)
    expect(joinTokensEqual(tokens.worker, tokens.worker.slice(1))).toBe(false)
  })

  it('rotates the secret and keeps the digest', () => {
    const token = generateJoinToken(PEM, { random: seededRandom(3) })
    const rotated = rotateJoinToken(token, { random: seededRandom(4) })
    expect(rotated).not.toBe(token)
    expect(rotated.slice(0, 60)).toBe(token.slice(0, 60))
    expect(codeOf(() => roleForJoinToken(token, { worker: rotated, manager: 'x' }))).toBe(
      'INVALID_JOIN_TOKEN',
    )
  })
})

describe('unlock keys', () => {
  it('matches the known-answer vector', () => {
    const key = generateUnlockKey({ random: counting })
    expect(key).toBe('SWMKEY-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8')
    expect(key).toHaveLength(52)
    expect(hex(parseUnlockKey(key))).toBe(hex(counting(32)))
  })

  it('parses a key made by Docker', () => {
    expect(hex(parseUnlockKey('SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8'))).toBe(
      'edcdfb09cf3ae78a3aa77f079eba32c028b5f699653a71ad6dd64482d2b166ef',
    )
  })

  it('round-trips parse(encode) for any 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (k) => {
        expect(hex(parseUnlockKey(encodeUnlockKey(k)))).toBe(hex(k))
      }),
      { seed: 5, numRuns: 300 },
    )
  })

  it('rejects every single-character change that is not another valid key', () => {
    const key = generateUnlockKey({ random: seededRandom(9) })
    const original = hex(parseUnlockKey(key))
    for (let i = 0; i < key.length; i++) {
      for (let c = 32; c < 127; c++) {
        const ch = String.fromCharCode(c)
        if (ch === key[i]) continue
        const changed = key.slice(0, i) + ch + key.slice(i + 1)
        let decoded: string | undefined
        try {
          decoded = hex(parseUnlockKey(changed))
        } catch (err) {
          expect(isPkiError(err), changed).toBe(true)
        }
        if (decoded !== undefined) expect(decoded).not.toBe(original)
      }
    }
  })

  it('gives a distinct error for each malformed case', () => {
    const key = generateUnlockKey({ random: counting })
    expect(codeOf(() => parseUnlockKey('SWMKEY-1'))).toBe('MALFORMED_UNLOCK_KEY')
    expect(codeOf(() => parseUnlockKey(key.replace('SWMKEY-1', 'SWMKEY-2')))).toBe(
      'UNSUPPORTED_UNLOCK_KEY_VERSION',
    )
    expect(codeOf(() => parseUnlockKey(`${key}=`))).toBe('MALFORMED_UNLOCK_KEY')
    expect(codeOf(() => parseUnlockKey(key.slice(0, -1)))).toBe('MALFORMED_UNLOCK_KEY')
    // Last character 'f' = 011111: its low 2 bits are padding and must be zero.
    expect(codeOf(() => parseUnlockKey(`${key.slice(0, -1)}f`))).toBe('MALFORMED_UNLOCK_KEY')
    expect(codeOf(() => parseUnlockKey(key.replace('A', '-')))).toBe('MALFORMED_UNLOCK_KEY')
  })
})
