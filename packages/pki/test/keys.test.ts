// Known-answer vectors for the key encodings and the Ed25519 wiring, from the RFCs.
import { describe, expect, it } from 'vitest'
import {
  decodePrivateKeyPem,
  encodePrivateKeyPem,
  generateKeyPair,
  isPkiError,
  keyPairFromPrivateKey,
} from '../src/index.js'
import { edSign, edVerify } from '../src/internal/crypto.js'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'))

describe('Ed25519 keys', () => {
  it('reads the RFC 8410 section 10.3 private key and derives the RFC 8410 section 10.1 public key', () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n'
    const key = decodePrivateKeyPem(pem)
    expect(hex(key.privateKey)).toBe('d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842')
    expect(hex(key.publicKey)).toBe('19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1')
    // and writes it back byte for byte
    expect(encodePrivateKeyPem(key.privateKey)).toBe(pem)
  })

  it('reads a PKCS#8 v2 key with its public key (RFC 8410 section 10.3) and checks they match', () => {
    const v2 =
      '-----BEGIN PRIVATE KEY-----\nMHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhCoB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PRIVATE KEY-----\n'
    expect(hex(decodePrivateKeyPem(v2).publicKey)).toBe(
      '19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1',
    )
    const wrong = Buffer.from(v2.split('\n')[1]!, 'base64')
    wrong[wrong.length - 1]! ^= 1
    let code = 'ok'
    try {
      decodePrivateKeyPem(
        `-----BEGIN PRIVATE KEY-----\n${wrong.toString('base64')}\n-----END PRIVATE KEY-----\n`,
      )
    } catch (err) {
      code = isPkiError(err) ? err.code : String(err)
    }
    expect(code).toBe('KEY_MISMATCH')
  })

  it('signs and verifies the RFC 8032 section 7.1 test vector 1', () => {
    const seed = bytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
    const pub = keyPairFromPrivateKey(seed).publicKey
    expect(hex(pub)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
    const sig = edSign(new Uint8Array(0), seed)
    expect(hex(sig)).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    )
    expect(edVerify(sig, new Uint8Array(0), pub)).toBe(true)
    expect(edVerify(sig, new Uint8Array(1), pub)).toBe(false)
    expect(edVerify(sig.subarray(1), new Uint8Array(0), pub)).toBe(false)
  })

  it('refuses a malleated signature (S + L), a bad public key and a bad length, without throwing', () => {
    const seed = bytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
    const pub = keyPairFromPrivateKey(seed).publicKey
    const sig = edSign(new Uint8Array(0), seed)
    // S + L (the group order) is the same scalar mod L: RFC 8032 requires S < L.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n
    let s = 0n
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!)
    const malleated = new Uint8Array(sig)
    let t = s + L
    for (let i = 0; i < 32; i++, t >>= 8n) malleated[32 + i] = Number(t & 0xffn)
    expect(edVerify(malleated, new Uint8Array(0), pub)).toBe(false)
    expect(edVerify(sig, new Uint8Array(0), new Uint8Array(32).fill(0xff))).toBe(false)
    expect(edVerify(sig, new Uint8Array(0), pub.subarray(1))).toBe(false)
  })

  it('refuses bad private keys with a code', () => {
    expect(() =>
      decodePrivateKeyPem('-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n'),
    ).toThrow(expect.objectContaining({ code: 'MALFORMED_KEY' }))
    expect(() =>
      decodePrivateKeyPem('-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n'),
    ).toThrow(expect.objectContaining({ code: 'MALFORMED_PEM' }))
    expect(() => keyPairFromPrivateKey(new Uint8Array(31))).toThrow(TypeError)
    expect(generateKeyPair().privateKey).toHaveLength(32)
  })

  it('generates key pairs whose seed derives their public key, each signing only for itself', () => {
    // More keys than the process keeps at hand: the newest are checked first (kept), the oldest last (their
    // seeds imported again).
    const pairs = Array.from({ length: 80 }, () => generateKeyPair())
    const message = new TextEncoder().encode('join')
    for (const [i, p] of [...pairs.entries()].reverse()) {
      expect(hex(keyPairFromPrivateKey(p.privateKey).publicKey)).toBe(hex(p.publicKey))
      const other = pairs[(i + 1) % pairs.length]!
      expect(hex(other.publicKey)).not.toBe(hex(p.publicKey))
      expect(edVerify(edSign(message, p.privateKey), message, p.publicKey)).toBe(true)
      expect(edVerify(edSign(message, p.privateKey), message, other.publicKey)).toBe(false)
    }
  })
})
