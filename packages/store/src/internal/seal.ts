import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto'
import { endianness } from 'node:os'
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { SealContext } from '@swarmkit/raft'
import { StoreError } from '../errors.js'
import { typeError } from './check.js'

// The hook contract is raft's (its FileLogStorage calls the hooks): store implements it, and re-exports the
// types so that `import type { SealHook } from '@swarmkit/store'` keeps working.
export type { SealContext, SealHook } from '@swarmkit/raft'

export const KEY_BYTES = 32
const NONCE_BYTES = 24
const TAG_BYTES = 16
/** The length of the authentication tag that ends every sealed record. */
export const SEAL_TAG_BYTES = TAG_BYTES
const FORMAT = 1
const HEADER = 1 + 4 + NONCE_BYTES
/** Bytes a sealed record adds: format, key id, nonce, tag. */
export const SEAL_OVERHEAD = HEADER + TAG_BYTES
const AAD_BYTES = 1 + 4 + 1 + 8 + 8 + 1

/** The 4-byte id a sealed record names its key by (a hash of the key, not the key). */
export function keyId(key: Uint8Array): number {
  const h = sha256(concat(new TextEncoder().encode('swarmkit-store dek id'), key))
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

// One scratch buffer for the associated data: both AEAD paths use it within the call that fills it.
const scratchAad = new Uint8Array(AAD_BYTES)

function put32(a: Uint8Array, at: number, v: number): void {
  a[at] = v >>> 24
  a[at + 1] = (v >>> 16) & 0xff
  a[at + 2] = (v >>> 8) & 0xff
  a[at + 3] = v & 0xff
}

/**
 * The associated data: format, key id, kind, index, term and type; for `entries` followed by the record's
 * readable header, so that no entry's index, term, type or length can be changed on disk unnoticed.
 */
function aad(id: number, ctx: SealContext): Uint8Array {
  const header = ctx.kind === 'entries' ? ctx.header! : null
  const a = header ? new Uint8Array(AAD_BYTES + header.length) : scratchAad
  if (header) a.set(header, AAD_BYTES)
  a[0] = FORMAT
  put32(a, 1, id)
  a[5] = ctx.kind === 'entry' ? 0 : ctx.kind === 'snapshot' ? 1 : 2
  put32(a, 6, Math.floor(ctx.index / 2 ** 32))
  put32(a, 10, ctx.index >>> 0)
  put32(a, 14, Math.floor(ctx.term / 2 ** 32))
  put32(a, 18, ctx.term >>> 0)
  a[22] = ctx.type & 0xff
  return a
}

/** The data keys a sealer holds: one to seal with, others still accepted for opening, and what was retired. */
export interface RingKey {
  id: number
  key: Uint8Array
  /** The key as little-endian words, for HChaCha20. */
  words: Uint32Array
}

export function ringKey(key: Uint8Array): RingKey {
  const words = new Uint32Array(8)
  const v = new DataView(key.buffer, key.byteOffset, key.byteLength)
  for (let i = 0; i < 8; i++) words[i] = v.getUint32(i * 4, true)
  return { id: keyId(key), key, words }
}

/**
 * Which implementation runs the AEAD. Both compute the same XChaCha20-Poly1305 (byte for byte, tested):
 * `noble` entirely in @noble/ciphers; `native` derives the per-record subkey with @noble/ciphers' HChaCha20
 * and runs the IETF ChaCha20-Poly1305 step in node:crypto (OpenSSL), several times faster on large records.
 */
export type CipherImpl = 'native' | 'noble'

export const NATIVE_AVAILABLE: boolean = endianness() === 'LE' && getCiphers().includes('chacha20-poly1305')

export interface Keyring {
  current: RingKey
  previous: RingKey[]
  impl: CipherImpl
  /** Entries at or below this index sealed under a retired key are covered by a snapshot; they open empty. */
  retiredFloor: number
  retired: number[]
}

function checkContext(ctx: SealContext): void {
  if (
    typeof ctx !== 'object' ||
    ctx === null ||
    (ctx.kind !== 'entry' && ctx.kind !== 'snapshot' && ctx.kind !== 'entries') ||
    !Number.isSafeInteger(ctx.index) ||
    ctx.index < 0 ||
    !Number.isSafeInteger(ctx.term) ||
    ctx.term < 0 ||
    !Number.isInteger(ctx.type)
  ) {
    throw typeError('context', 'be { kind, index, term, type }')
  }
  if (
    ctx.kind === 'entries' &&
    (!Number.isSafeInteger(ctx.count) || ctx.count! < 1 || !(ctx.header instanceof Uint8Array))
  ) {
    throw typeError('context', 'have { count, header } for entries')
  }
}

const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])
// Scratch space for the native path (node:crypto copies key, iv and AAD when a cipher is created).
const scratchNonce = new Uint32Array(4)
const scratchKey = new Uint32Array(8)
const scratchKeyBuf = Buffer.from(scratchKey.buffer)
const scratchIv = Buffer.alloc(12)

/**
 * XChaCha20 is ChaCha20 under the HChaCha20 subkey of the nonce's first 16 bytes, with nonce 0^4 || its last 8.
 * Fills the scratch key and iv; the caller wipes the key once the cipher holds its copy.
 */
function subkey(k: RingKey, nonce: Uint8Array): void {
  for (let i = 0; i < 4; i++) {
    const o = i * 4
    scratchNonce[i] = (nonce[o]! | (nonce[o + 1]! << 8) | (nonce[o + 2]! << 16) | (nonce[o + 3]! << 24)) >>> 0
  }
  hchacha(SIGMA, k.words, scratchNonce, scratchKey)
  scratchIv.set(nonce.subarray(16, 24), 4)
}

/** Checks a record's inputs and writes its header (format, key id, a fresh nonce) into a record-sized buffer. */
function startRecord(
  ring: Keyring,
  data: Uint8Array,
  ctx: SealContext,
  random: (n: number) => Uint8Array,
): { out: Uint8Array; k: Keyring['current']; nonce: Uint8Array } {
  if (!(data instanceof Uint8Array)) throw typeError('data', 'be a Uint8Array')
  checkContext(ctx)
  const k = ring.current
  const nonce = random(NONCE_BYTES)
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES)
    throw typeError('random', 'return 24 bytes')
  const out = new Uint8Array(HEADER + data.length + TAG_BYTES)
  out[0] = FORMAT
  put32(out, 1, k.id)
  out.set(nonce, 5)
  return { out, k, nonce }
}

/** XChaCha20-Poly1305 with a random 24-byte nonce per record; the record's place in the log is associated data. */
export function sealRecord(
  ring: Keyring,
  data: Uint8Array,
  ctx: SealContext,
  random: (n: number) => Uint8Array,
): Uint8Array {
  const { out, k, nonce } = startRecord(ring, data, ctx, random)
  const ad = aad(k.id, ctx)
  if (ring.impl === 'native') {
    subkey(k, nonce)
    const c = createCipheriv('chacha20-poly1305', scratchKeyBuf, scratchIv, { authTagLength: TAG_BYTES })
    scratchKey.fill(0)
    c.setAAD(ad, { plaintextLength: data.length })
    out.set(c.update(data), HEADER)
    c.final()
    out.set(c.getAuthTag(), HEADER + data.length)
  } else {
    xchacha20poly1305(k.key, nonce, ad).encrypt(data, out.subarray(HEADER))
  }
  return out
}

/** Bytes put through the AEAD between two turns of the event loop by the asynchronous forms. */
const AEAD_SLICE = 1 << 20

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * `sealRecord` for large data (snapshots): the same record, byte for byte, with the native AEAD fed 1 MiB at a
 * time and the event loop let go between slices. (The noble implementation seals in one call.)
 */
export async function sealRecordAsync(
  ring: Keyring,
  data: Uint8Array,
  ctx: SealContext,
  random: (n: number) => Uint8Array,
): Promise<Uint8Array> {
  if (ring.impl !== 'native' || data.length <= AEAD_SLICE) return sealRecord(ring, data, ctx, random)
  const { out, k, nonce } = startRecord(ring, data, ctx, random)
  subkey(k, nonce)
  const c = createCipheriv('chacha20-poly1305', scratchKeyBuf, scratchIv, { authTagLength: TAG_BYTES })
  scratchKey.fill(0)
  c.setAAD(aad(k.id, ctx), { plaintextLength: data.length })
  for (let at = 0; at < data.length; at += AEAD_SLICE) {
    if (at > 0) await turn()
    out.set(c.update(data.subarray(at, Math.min(data.length, at + AEAD_SLICE))), HEADER + at)
  }
  c.final()
  out.set(c.getAuthTag(), HEADER + data.length)
  return out
}

/** `openRecord` for large data (snapshots), in slices like `sealRecordAsync`. */
export async function openRecordAsync(
  ring: Keyring,
  sealed: Uint8Array,
  ctx: SealContext,
): Promise<Uint8Array> {
  if (
    ring.impl !== 'native' ||
    !(sealed instanceof Uint8Array) ||
    sealed.length <= AEAD_SLICE + SEAL_OVERHEAD
  )
    return openRecord(ring, sealed, ctx)
  checkContext(ctx)
  const id = ((sealed[1]! << 24) | (sealed[2]! << 16) | (sealed[3]! << 8) | sealed[4]!) >>> 0
  const k = ring.current.id === id ? ring.current : ring.previous.find((x) => x.id === id)
  // Anything unusual (another format, an unknown or retired key) takes the one-call path and its errors.
  if (sealed[0] !== FORMAT || !k) return openRecord(ring, sealed, ctx)
  const where = `snapshot at ${ctx.index}`
  const nonce = sealed.subarray(5, HEADER)
  const body = sealed.subarray(HEADER, sealed.length - TAG_BYTES)
  const out = new Uint8Array(body.length)
  try {
    subkey(k, nonce)
    const d = createDecipheriv('chacha20-poly1305', scratchKeyBuf, scratchIv, { authTagLength: TAG_BYTES })
    scratchKey.fill(0)
    d.setAAD(aad(id, ctx), { plaintextLength: body.length })
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    for (let at = 0; at < body.length; at += AEAD_SLICE) {
      if (at > 0) await turn()
      out.set(d.update(body.subarray(at, Math.min(body.length, at + AEAD_SLICE))), at)
    }
    d.final()
  } catch (err) {
    throw new StoreError('CORRUPT', `${where} failed authentication (tampered or damaged)`, {
      index: ctx.index,
      cause: err,
    })
  }
  return out
}

export function openRecord(ring: Keyring, sealed: Uint8Array, ctx: SealContext): Uint8Array {
  if (!(sealed instanceof Uint8Array)) throw typeError('data', 'be a Uint8Array')
  checkContext(ctx)
  const where =
    ctx.kind === 'entry'
      ? `log entry ${ctx.index}`
      : ctx.kind === 'entries'
        ? `log entries ${ctx.index}-${ctx.index + ctx.count! - 1}`
        : `snapshot at ${ctx.index}`
  if (sealed.length < SEAL_OVERHEAD || sealed[0] !== FORMAT) {
    throw new StoreError('CORRUPT', `${where} is not a sealed record`, { index: ctx.index })
  }
  const id = ((sealed[1]! << 24) | (sealed[2]! << 16) | (sealed[3]! << 8) | sealed[4]!) >>> 0
  const k = ring.current.id === id ? ring.current : ring.previous.find((x) => x.id === id)
  if (!k) {
    if (ctx.kind !== 'snapshot' && ring.retired.includes(id)) {
      // Sealed under a key retired after a snapshot covered this index: raft discards it on load. A run of
      // entries opens as zeros of its length, which raft splits into entries it then discards.
      if (ctx.kind === 'entry' && ctx.index <= ring.retiredFloor) return new Uint8Array(0)
      if (ctx.kind === 'entries' && ctx.index + ctx.count! - 1 <= ring.retiredFloor)
        return new Uint8Array(sealed.length - SEAL_OVERHEAD)
    }
    throw new StoreError('CORRUPT', `${where} is sealed under an unknown data key (${id.toString(16)})`, {
      index: ctx.index,
    })
  }
  const nonce = sealed.subarray(5, HEADER)
  const body = sealed.subarray(HEADER, sealed.length - TAG_BYTES)
  const ad = aad(id, ctx)
  try {
    if (ring.impl === 'native') {
      subkey(k, nonce)
      const d = createDecipheriv('chacha20-poly1305', scratchKeyBuf, scratchIv, { authTagLength: TAG_BYTES })
      scratchKey.fill(0)
      d.setAAD(ad, { plaintextLength: body.length })
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
      const pt = d.update(body)
      d.final()
      // A plain Uint8Array that owns its bytes (not a view into Node's buffer pool).
      const out = new Uint8Array(pt.length)
      out.set(pt)
      return out
    }
    const out = new Uint8Array(body.length)
    xchacha20poly1305(k.key, nonce, ad).decrypt(sealed.subarray(HEADER), out)
    return out
  } catch (err) {
    throw new StoreError('CORRUPT', `${where} failed authentication (tampered or damaged)`, {
      index: ctx.index,
      cause: err,
    })
  }
}
