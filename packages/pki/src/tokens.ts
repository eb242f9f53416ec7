import { PkiError } from './errors.js'
import { fromBase36, toBase36 } from './internal/base36.js'
import { constantTimeEqual, defaultRandom, type RandomBytes, sha256 } from './internal/crypto.js'

/** A parsed join token `SWMTKN-1-<digest>-<secret>`. */
export interface JoinToken {
  readonly version: 1
  /** SHA-256 of the root CA certificate bundle (PEM bytes), 32 bytes. */
  readonly caDigest: Uint8Array
  /** The secret, 16 bytes. */
  readonly secret: Uint8Array
  /** The token text. */
  readonly token: string
}

/** The cluster's two join tokens; they differ only in their secret. */
export interface JoinTokens {
  readonly worker: string
  readonly manager: string
}

const TOKEN_PREFIX = 'SWMTKN'
const DIGEST_CHARS = 50
const SECRET_CHARS = 25
const SECRET_BYTES = 16
/** Length of a version 1 join token. */
export const JOIN_TOKEN_LENGTH = TOKEN_PREFIX.length + 3 + DIGEST_CHARS + 1 + SECRET_CHARS

/** The SHA-256 digest of a root CA bundle as swarm computes it: over the exact PEM bytes. */
export function caDigest(rootCaPem: string | Uint8Array): Uint8Array {
  if (typeof rootCaPem === 'string') return sha256(new TextEncoder().encode(rootCaPem))
  if (rootCaPem instanceof Uint8Array) return sha256(rootCaPem)
  throw new TypeError('rootCaPem must be a string or Uint8Array')
}

function digestOf(ca: string | Uint8Array, what: string): Uint8Array {
  if (ca instanceof Uint8Array && ca.length === 32) return ca
  if (typeof ca === 'string' || ca instanceof Uint8Array) return caDigest(ca)
  throw new TypeError(`${what} must be the root CA PEM or its 32-byte digest`)
}

function secretOf(random: RandomBytes): Uint8Array {
  if (typeof random !== 'function') throw new TypeError('options.random must be a function')
  const s = random(SECRET_BYTES)
  if (!(s instanceof Uint8Array) || s.length !== SECRET_BYTES)
    throw new RangeError('random(16) must return 16 bytes')
  return s
}

/**
 * A new join token for the root CA `ca` (its PEM bundle, or the bundle's 32-byte SHA-256 digest):
 * `SWMTKN-1-` + the digest in base 36 padded to 50 + `-` + 16 random bytes in base 36 padded to 25.
 */
export function generateJoinToken(ca: string | Uint8Array, options: { random?: RandomBytes } = {}): string {
  const digest = digestOf(ca, 'ca')
  const secret = secretOf(options.random ?? defaultRandom)
  return `${TOKEN_PREFIX}-1-${toBase36(digest, DIGEST_CHARS)}-${toBase36(secret, SECRET_CHARS)}`
}

/** Fresh worker and manager tokens for a root CA. */
export function generateJoinTokens(
  ca: string | Uint8Array,
  options: { random?: RandomBytes } = {},
): JoinTokens {
  return { worker: generateJoinToken(ca, options), manager: generateJoinToken(ca, options) }
}

/**
 * Parses a join token strictly. Each malformed case has its own code: `MALFORMED_TOKEN` (shape),
 * `UNSUPPORTED_TOKEN_VERSION`, `MALFORMED_TOKEN_DIGEST`, `MALFORMED_TOKEN_SECRET`.
 */
export function parseJoinToken(token: string): JoinToken {
  if (typeof token !== 'string') throw new TypeError('token must be a string')
  if (token.length > 256) throw new PkiError('MALFORMED_TOKEN', 'invalid join token: too long')
  const parts = token.split('-')
  if (parts[0] !== TOKEN_PREFIX)
    throw new PkiError('MALFORMED_TOKEN', 'invalid join token: missing SWMTKN prefix')
  if (parts.length < 2 || !/^[0-9]+$/.test(parts[1]!)) {
    throw new PkiError('MALFORMED_TOKEN', 'invalid join token: missing version')
  }
  if (parts[1] !== '1') {
    throw new PkiError('UNSUPPORTED_TOKEN_VERSION', `unsupported join token version ${parts[1]!.slice(0, 8)}`)
  }
  if (parts.length !== 4)
    throw new PkiError('MALFORMED_TOKEN', 'invalid join token: expected 4 dash-separated parts')
  const caDigestBytes = fromBase36(parts[2]!, DIGEST_CHARS, 32)
  if (!caDigestBytes) {
    throw new PkiError(
      'MALFORMED_TOKEN_DIGEST',
      'invalid join token: the CA digest is not 50 base-36 digits of 256 bits',
    )
  }
  const secret = fromBase36(parts[3]!, SECRET_CHARS, SECRET_BYTES)
  if (!secret) {
    throw new PkiError(
      'MALFORMED_TOKEN_SECRET',
      'invalid join token: the secret is not 25 base-36 digits of 128 bits',
    )
  }
  return { version: 1, caDigest: caDigestBytes, secret, token }
}

/** The same token with a new secret: what `docker swarm join-token --rotate` does. */
export function rotateJoinToken(token: string, options: { random?: RandomBytes } = {}): string {
  return generateJoinToken(parseJoinToken(token).caDigest, options)
}

/**
 * Checks that the root CA bundle fetched from a remote matches the digest in the token.
 * Throws `CA_MISMATCH` with swarm's message "remote CA does not match fingerprint".
 */
export function checkJoinTokenCA(token: string | JoinToken, rootCaPem: string | Uint8Array): void {
  const parsed = typeof token === 'string' ? parseJoinToken(token) : token
  if (!constantTimeEqual(parsed.caDigest, caDigest(rootCaPem))) {
    throw new PkiError('CA_MISMATCH', 'remote CA does not match fingerprint')
  }
}

/** Compares two token strings in constant time (for equal lengths). */
export function joinTokensEqual(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') throw new TypeError('tokens must be strings')
  const enc = new TextEncoder()
  return constantTimeEqual(enc.encode(a), enc.encode(b))
}

/**
 * Which role a presented token grants, comparing in constant time, manager token first;
 * throws `INVALID_JOIN_TOKEN` with swarm's message when neither matches.
 */
export function roleForJoinToken(token: string, tokens: JoinTokens): 'swarm-manager' | 'swarm-worker' {
  if (typeof token !== 'string') throw new TypeError('token must be a string')
  if (joinTokensEqual(token, tokens.manager)) return 'swarm-manager'
  if (joinTokensEqual(token, tokens.worker)) return 'swarm-worker'
  throw new PkiError('INVALID_JOIN_TOKEN', 'A valid join token is necessary to join this cluster')
}

// ---- unlock keys ----
// Unlock keys protect data at rest, which is `@swarmkit/store`'s concern: its `generateUnlockKey`,
// `formatUnlockKey` and `parseUnlockKey` are the ones the cluster uses. These stay for pki's existing users
// (deprecated) because pki may import no swarmkit package; test/shared-contracts.test.ts keeps both in step.

const UNLOCK_PREFIX = 'SWMKEY'
const UNLOCK_KEY_BYTES = 32
const B64_RAW = /^[A-Za-z0-9+/]{43}$/

/**
 * A new unlock key: `SWMKEY-1-` + 32 random bytes in unpadded standard base64 (52 characters).
 * @deprecated Use `generateUnlockKey` from `@swarmkit/store`, the home of encryption at rest.
 */
export function generateUnlockKey(options: { random?: RandomBytes } = {}): string {
  const random = options.random ?? defaultRandom
  if (typeof random !== 'function') throw new TypeError('options.random must be a function')
  const key = random(UNLOCK_KEY_BYTES)
  if (!(key instanceof Uint8Array) || key.length !== UNLOCK_KEY_BYTES) {
    throw new RangeError('random(32) must return 32 bytes')
  }
  return encodeUnlockKey(key)
}

/**
 * Writes 32 key bytes in swarm's unlock-key format.
 * @deprecated Use `formatUnlockKey` from `@swarmkit/store`, the home of encryption at rest.
 */
export function encodeUnlockKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== UNLOCK_KEY_BYTES) {
    throw new RangeError('key must be 32 bytes')
  }
  return `${UNLOCK_PREFIX}-1-${Buffer.from(key).toString('base64').replace(/=+$/, '')}`
}

/**
 * Parses an unlock key into its 32 bytes (`MALFORMED_UNLOCK_KEY`, `UNSUPPORTED_UNLOCK_KEY_VERSION`).
 * @deprecated Use `parseUnlockKey` from `@swarmkit/store`, the home of encryption at rest (it throws TypeError).
 */
export function parseUnlockKey(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError('unlock key must be a string')
  if (text.length > 256) throw new PkiError('MALFORMED_UNLOCK_KEY', 'invalid unlock key: too long')
  const m = /^SWMKEY-([0-9]+)-(.*)$/s.exec(text)
  if (!m) throw new PkiError('MALFORMED_UNLOCK_KEY', 'invalid unlock key: missing SWMKEY prefix')
  if (m[1] !== '1')
    throw new PkiError(
      'UNSUPPORTED_UNLOCK_KEY_VERSION',
      `unsupported unlock key version ${m[1]!.slice(0, 8)}`,
    )
  const b64 = m[2]!
  if (!B64_RAW.test(b64))
    throw new PkiError('MALFORMED_UNLOCK_KEY', 'invalid unlock key: not 43 base64 characters')
  const key = new Uint8Array(Buffer.from(b64, 'base64'))
  // The last character carries 2 padding bits that must be zero for a canonical encoding.
  if (key.length !== UNLOCK_KEY_BYTES || encodeUnlockKey(key) !== text) {
    throw new PkiError('MALFORMED_UNLOCK_KEY', 'invalid unlock key: non-canonical base64')
  }
  return key
}
