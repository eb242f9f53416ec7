// Ed25519 through Node's crypto (OpenSSL), and SHA-256. Signing and verifying were @noble/ed25519's in pure
// JavaScript: 4 ms to sign and 8 ms to verify here, so a manager spent ~13 ms of CPU per join on the CA and
// a joiner 8 ms per certificate chain it checked (the profile of a 1,000-node join storm); OpenSSL takes
// tens of microseconds. Keys stay raw 32-byte seeds and public keys; they are wrapped as DER for OpenSSL.

import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  timingSafeEqual,
} from 'node:crypto'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'

/** PKCS#8 PrivateKeyInfo for Ed25519 up to the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/**
 * Private keys recently made or used, by seed: importing a seed costs OpenSSL 3 about 0.6 ms (its PKCS#8
 * decoders), and a joiner uses its new key three times (public key, CSR signature, certificate check) with
 * other joins of the same process in between; a CA signs every certificate with the same key.
 */
const recentKeys = new Map<string, KeyObject>()
const RECENT_KEYS = 64

function remember(seed: Uint8Array, key: KeyObject): KeyObject {
  const id = Buffer.from(seed.buffer, seed.byteOffset, seed.length).toString('hex')
  recentKeys.delete(id)
  recentKeys.set(id, key)
  if (recentKeys.size > RECENT_KEYS) recentKeys.delete(recentKeys.keys().next().value!)
  return key
}

function privateKeyOf(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError('seed must be 32 bytes')
  const hit = recentKeys.get(Buffer.from(seed.buffer, seed.byteOffset, seed.length).toString('hex'))
  if (hit) return hit
  return remember(
    seed,
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }),
  )
}

/**
 * A new key pair from OpenSSL's own generator (80 us, against 0.7 ms to import random bytes as a seed and
 * derive its public key), handed back as a JWK by the generator itself. Not `generateKeyPairSync('ed25519')`
 * and then `privateKey.export({ format: 'jwk' })`: Node 20 exports an Ed25519 JWK holding the key's lock
 * while it allocates, and a collection that then frees the finished generator job, which shares that key,
 * takes the same lock: the process hangs for good (a worker host of bench/cluster-scale, 203 joins into a
 * 1,667-node storm; a loop of such calls hangs within seconds). The key used afterwards is imported from the
 * JWK, not shared with any job.
 */
export function edGenerate(): { seed: Uint8Array; publicKey: Uint8Array } {
  // (Node's types know no 'jwk' encoding for the generator; Node does, since 15.9.)
  const { privateKey: jwk } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { format: 'jwk' },
    publicKeyEncoding: { format: 'jwk' },
  } as never) as unknown as { privateKey: JsonWebKey }
  const seed = new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'))
  const publicKey = new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))
  if (seed.length !== 32 || publicKey.length !== 32) throw new Error('unexpected Ed25519 key from OpenSSL')
  remember(seed, createPrivateKey({ key: jwk, format: 'jwk' }))
  return { seed, publicKey }
}

/** A source of `n` random bytes (injectable for deterministic tests; defaults to the CSPRNG). */
export type RandomBytes = (n: number) => Uint8Array

export const defaultRandom: RandomBytes = (n) => new Uint8Array(nodeRandomBytes(n))

export function edPublicKey(seed: Uint8Array): Uint8Array {
  // As a JWK: the DER export goes through OpenSSL's encoders (140 us against 8 us).
  const { x } = createPublicKey(privateKeyOf(seed)).export({ format: 'jwk' })
  const publicKey = new Uint8Array(Buffer.from(x!, 'base64url'))
  if (publicKey.length !== 32) throw new Error('unexpected Ed25519 public key from OpenSSL')
  return publicKey
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
