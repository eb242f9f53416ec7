import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { StoreError } from '../errors.js'

/** What raft's FileLogStorage passes to its hooks; index, term and type stay in the clear on disk. */
export interface SealContext {
  readonly kind: 'entry' | 'snapshot'
  readonly index: number
  readonly term: number
  readonly type: number
}

/** A `seal` or `open` hook for raft's FileLogStorage. */
export type SealHook = (data: Uint8Array, context: SealContext) => Uint8Array

export const KEY_BYTES = 32
const NONCE_BYTES = 24
const TAG_BYTES = 16
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

function aad(id: number, ctx: SealContext): Uint8Array {
  const a = new Uint8Array(AAD_BYTES)
  const v = new DataView(a.buffer)
  a[0] = FORMAT
  v.setUint32(1, id)
  a[5] = ctx.kind === 'entry' ? 0 : 1
  v.setUint32(6, Math.floor(ctx.index / 2 ** 32))
  v.setUint32(10, ctx.index >>> 0)
  v.setUint32(14, Math.floor(ctx.term / 2 ** 32))
  v.setUint32(18, ctx.term >>> 0)
  a[22] = ctx.type & 0xff
  return a
}

/** The data keys a sealer holds: one to seal with, others still accepted for opening, and what was retired. */
export interface Keyring {
  current: { id: number; key: Uint8Array }
  previous: { id: number; key: Uint8Array }[]
  /** Entries at or below this index sealed under a retired key are covered by a snapshot; they open empty. */
  retiredFloor: number
  retired: number[]
}

function checkContext(ctx: SealContext): void {
  if (
    typeof ctx !== 'object' ||
    ctx === null ||
    (ctx.kind !== 'entry' && ctx.kind !== 'snapshot') ||
    !Number.isSafeInteger(ctx.index) ||
    ctx.index < 0 ||
    !Number.isSafeInteger(ctx.term) ||
    ctx.term < 0 ||
    !Number.isInteger(ctx.type)
  ) {
    throw new TypeError('context: expected { kind, index, term, type }')
  }
}

/** XChaCha20-Poly1305 with a random 24-byte nonce per record; the record's place in the log is associated data. */
export function sealRecord(
  ring: Keyring,
  data: Uint8Array,
  ctx: SealContext,
  random: (n: number) => Uint8Array,
): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError('data: expected a Uint8Array')
  checkContext(ctx)
  const { id, key } = ring.current
  const nonce = random(NONCE_BYTES)
  const out = new Uint8Array(HEADER + data.length + TAG_BYTES)
  out[0] = FORMAT
  new DataView(out.buffer).setUint32(1, id)
  out.set(nonce, 5)
  xchacha20poly1305(key, nonce, aad(id, ctx)).encrypt(data, out.subarray(HEADER))
  return out
}

export function openRecord(ring: Keyring, sealed: Uint8Array, ctx: SealContext): Uint8Array {
  if (!(sealed instanceof Uint8Array)) throw new TypeError('data: expected a Uint8Array')
  checkContext(ctx)
  const where = ctx.kind === 'entry' ? `log entry ${ctx.index}` : `snapshot at ${ctx.index}`
  if (sealed.length < SEAL_OVERHEAD || sealed[0] !== FORMAT) {
    throw new StoreError('CORRUPT', `${where} is not a sealed record`, { index: ctx.index })
  }
  const id = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength).getUint32(1)
  const entry = ring.current.id === id ? ring.current : ring.previous.find((k) => k.id === id)
  if (!entry) {
    if (ctx.kind === 'entry' && ctx.index <= ring.retiredFloor && ring.retired.includes(id)) {
      // Sealed under a key retired after a snapshot covered this index: raft discards it on load.
      return new Uint8Array(0)
    }
    throw new StoreError('CORRUPT', `${where} is sealed under an unknown data key (${id.toString(16)})`, {
      index: ctx.index,
    })
  }
  const out = new Uint8Array(sealed.length - SEAL_OVERHEAD)
  try {
    xchacha20poly1305(entry.key, sealed.subarray(5, HEADER), aad(id, ctx)).decrypt(
      sealed.subarray(HEADER),
      out,
    )
  } catch (err) {
    throw new StoreError('CORRUPT', `${where} failed authentication (tampered or damaged)`, {
      index: ctx.index,
      cause: err,
    })
  }
  return out
}
