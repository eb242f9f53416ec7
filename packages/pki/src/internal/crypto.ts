// Ed25519 through Node's crypto (OpenSSL), and SHA-256. Signing and verifying were @noble/ed25519's in pure
// JavaScript: 4 ms to sign and 8 ms to verify here, so a manager spent ~13 ms of CPU per join on the CA and
// a joiner 8 ms per certificate chain it checked (the profile of a 1,000-node join storm); OpenSSL takes
// tens of microseconds. Keys stay raw 32-byte seeds and public keys; they are wrapped as DER for OpenSSL.

import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  timingSafeEqual,
} from 'node:crypto'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'

/** PKCS#8 PrivateKeyInfo for Ed25519 up to the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** SubjectPublicKeyInfo for Ed25519 up to the 32-byte key (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** The last private key used: a CA signs every certificate with the same one. */
let lastSeed: { seed: Buffer; key: KeyObject } | undefined

function privateKeyOf(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError('seed must be 32 bytes')
  if (lastSeed && timingSafeEqual(lastSeed.seed, seed)) return lastSeed.key
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  lastSeed = { seed: Buffer.from(seed), key }
  return key
}

/** A source of `n` random bytes (injectable for deterministic tests; defaults to the CSPRNG). */
export type RandomBytes = (n: number) => Uint8Array

export const defaultRandom: RandomBytes = (n) => new Uint8Array(nodeRandomBytes(n))

export function edPublicKey(seed: Uint8Array): Uint8Array {
  const der = createPublicKey(privateKeyOf(seed)).export({ format: 'der', type: 'spki' })
  return new Uint8Array(der.subarray(SPKI_PREFIX.length))
}

export function edSign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, privateKeyOf(seed)))
}

/** RFC 8032 verification (the strict branch, not ZIP-215), as OpenSSL does it. */
export function edVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false
  try {
    // As a JWK: OpenSSL's DER import tries several decoders first (110 us against 12 us here).
    const x = Buffer.from(publicKey).toString('base64url')
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
    return nodeVerify(null, message, key, signature)
  } catch {
    return false
  }
}

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data)
}

/** Constant-time equality for equal-length inputs; unequal lengths compare unequal without early exit. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a)
    return false
  }
  return timingSafeEqual(a, b)
}
