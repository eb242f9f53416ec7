// Ed25519 through @noble/ed25519 (synchronous API, SHA-512 from @noble/hashes) and SHA-256.

import { randomBytes as nodeRandomBytes, timingSafeEqual } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js'

// Setting the same pure function twice is harmless if another copy already did.
if (!ed.hashes.sha512) ed.hashes.sha512 = sha512

/** A source of `n` random bytes (injectable for deterministic tests; defaults to the CSPRNG). */
export type RandomBytes = (n: number) => Uint8Array

export const defaultRandom: RandomBytes = (n) => new Uint8Array(nodeRandomBytes(n))

export function edPublicKey(seed: Uint8Array): Uint8Array {
  return ed.getPublicKey(seed)
}

export function edSign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return ed.sign(message, seed)
}

/** RFC 8032 verification (the strict branch, not ZIP-215), as OpenSSL does it. */
export function edVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false
  try {
    return ed.verify(signature, message, publicKey, { zip215: false })
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
