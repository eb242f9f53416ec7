import { randomBytes, randomFillSync } from 'node:crypto'
import { mkdir, open as openFile, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { AsyncSealHook } from '@swarmkit/raft'
import { Packr } from 'msgpackr'
import { LOCKED_MESSAGE, StoreError } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import {
  type CipherImpl,
  KEY_BYTES,
  type Keyring,
  keyId,
  NATIVE_AVAILABLE,
  openRecord,
  openRecordAsync,
  ringKey,
  SEAL_TAG_BYTES,
  type SealHook,
  sealRecord,
  sealRecordAsync,
} from './internal/seal.js'
import { generateUnlockKey, parseUnlockKey } from './unlock-key.js'

const FORMAT = 'swarmkit-store-keys'
const VERSION = 1
const MAX_FILE_BYTES = 1024 * 1024
const MAX_PREVIOUS = 16
const WRAP_AAD = new TextEncoder().encode('swarmkit-store-keys/1')
const KEK_INFO = new TextEncoder().encode('swarmkit-store kek')
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

/** The hooks raft's `FileLogStorage.open(dir, { seal, open, batchSeal })` takes. */
export interface SealHooks {
  seal: SealHook
  open: SealHook
  /** `seal` for snapshots: the same records, sealed 1 MiB at a time with the event loop let go between. */
  sealAsync: AsyncSealHook
  /** `open` for snapshots, in slices like `sealAsync`. */
  openAsync: AsyncSealHook
  /**
   * Always true: the entries of one save are sealed together as one record (one nonce, one tag), which costs
   * far less per entry than one AEAD call each when entries are small. Logs sealed either way open.
   */
  batchSeal: boolean
  /**
   * 16: the Poly1305 tag that ends every sealed record covers all of it, so the log checksums only the readable
   * part and the tag of sealed records (raft's `sealTagBytes`) instead of every ciphertext byte.
   */
  sealTagBytes: number
}

/** How {@link KeyManager.open} reads or creates a key file: the unlock key (autolock), randomness, and the cipher implementation. */
export interface KeyManagerOptions {
  /** Unlock the key file at once with this key (`SWMKEY-1-…` or 32 bytes). */
  unlockKey?: string | Uint8Array
  /** Random bytes (keys, nonces, salts); default `node:crypto`, drawn from a pooled buffer for nonces. */
  random?: (n: number) => Uint8Array
  /**
   * Who runs the AEAD (the same XChaCha20-Poly1305 either way): `native` (default where node:crypto has
   * chacha20-poly1305) takes HChaCha20 from @noble/ciphers and the ChaCha20-Poly1305 step from OpenSSL;
   * `noble` does it all in @noble/ciphers.
   */
  cipher?: CipherImpl
  signal?: AbortSignal
}

/** What the key file holds, wrapped under the KEK or plain. */
interface KeyState {
  current: Uint8Array
  previous: Uint8Array[]
  retiredFloor: number
  retired: number[]
  extras: Record<string, Uint8Array>
}

interface KeyFile {
  format: string
  version: number
  autolock: boolean
  payload: string
  /** Plain files: SHA-256 of the payload, to catch damage. */
  checksum?: string
  /** Wrapped files: the KEK's HKDF salt and the wrap's nonce. */
  kek?: { salt: string; nonce: string }
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const unb64 = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw corrupt(`${what} is not base64`)
  return new Uint8Array(Buffer.from(s, 'base64'))
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const corrupt = (what: string, cause?: unknown): StoreError =>
  new StoreError('CORRUPT', `key file: ${what}`, cause === undefined ? undefined : { cause })

function deriveKek(unlockKey: Uint8Array, salt: Uint8Array): Uint8Array {
  // The unlock key is 256 random bits, so a plain KDF (not a password hash) is enough to derive the KEK.
  return hkdf(sha256, unlockKey, salt, KEK_INFO, KEY_BYTES)
}

function encodeState(s: KeyState): Uint8Array {
  return packr.pack({
    v: 1,
    current: s.current,
    previous: s.previous,
    retiredFloor: s.retiredFloor,
    retired: s.retired,
    extras: s.extras,
  })
}

function decodeState(bytes: Uint8Array): KeyState {
  let raw: any
  try {
    raw = packr.unpack(bytes)
  } catch (err) {
    throw corrupt('undecodable key state', err)
  }
  const isKey = (k: unknown): k is Uint8Array => k instanceof Uint8Array && k.length === KEY_BYTES
  if (
    typeof raw !== 'object' ||
    raw === null ||
    raw.v !== 1 ||
    !isKey(raw.current) ||
    !Array.isArray(raw.previous) ||
    !raw.previous.every(isKey) ||
    raw.previous.length > MAX_PREVIOUS ||
    !Number.isSafeInteger(raw.retiredFloor) ||
    !Array.isArray(raw.retired) ||
    !raw.retired.every((x: unknown) => Number.isInteger(x)) ||
    typeof raw.extras !== 'object' ||
    raw.extras === null ||
    !Object.values(raw.extras).every((x) => x instanceof Uint8Array)
  ) {
    throw corrupt('malformed key state')
  }
  const copy = (k: Uint8Array) => new Uint8Array(k)
  return {
    current: copy(raw.current),
    previous: raw.previous.map(copy),
    retiredFloor: raw.retiredFloor,
    retired: raw.retired,
    extras: Object.fromEntries(
      Object.entries(raw.extras as Record<string, Uint8Array>).map(([k, v]) => [k, copy(v)]),
    ),
  }
}

async function readKeyFile(path: string): Promise<KeyFile | null> {
  let fh: Awaited<ReturnType<typeof openFile>>
  try {
    fh = await openFile(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  try {
    const { size } = await fh.stat()
    if (size > MAX_FILE_BYTES) throw corrupt(`${path} is ${size} bytes; the limit is ${MAX_FILE_BYTES}`)
    const buf = Buffer.alloc(size)
    await fh.read(buf, 0, size, 0)
    let f: any
    try {
      f = JSON.parse(buf.toString('utf8'))
    } catch (err) {
      throw corrupt(`${path} is not valid JSON`, err)
    }
    if (typeof f !== 'object' || f === null || f.format !== FORMAT || f.version !== VERSION) {
      throw corrupt(`${path} is not a swarmkit key file of version ${VERSION}`)
    }
    if (typeof f.autolock !== 'boolean' || typeof f.payload !== 'string')
      throw corrupt(`${path} is malformed`)
    return f as KeyFile
  } finally {
    await fh.close()
  }
}

async function writeKeyFile(path: string, f: KeyFile): Promise<void> {
  const tmp = `${path}.tmp`
  try {
    const fh = await openFile(tmp, 'w', 0o600)
    try {
      await fh.writeFile(`${JSON.stringify(f)}\n`)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    // The key file at `path` is as it was; a partial copy (a full disk) goes rather than hold the space.
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
  const dir = await openFile(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

/**
 * A manager's data encryption keys (DEKs), kept in a key file beside its TLS key, and the `seal`/`open` hooks
 * that encrypt every raft log record and snapshot with them (XChaCha20-Poly1305, random 24-byte nonce, the
 * record's kind, index, term and type as associated data).
 *
 * Without autolock the key file holds the DEK in the clear (with a checksum); with autolock it holds it wrapped
 * under a key encryption key derived from the unlock key, so a restarted manager can read nothing until
 * `unlock(key)`. Other small secrets (e.g. the node's TLS key) can ride in the same file and are locked with it.
 *
 * Every change is written to a temporary file, synced and renamed into place before it takes effect.
 */
export class KeyManager {
  private state: KeyState | null
  private ring: Keyring | null = null
  private file: KeyFile
  private chain: Promise<unknown> = Promise.resolve()
  private closedFlag = false

  private constructor(
    readonly path: string,
    file: KeyFile,
    state: KeyState | null,
    private readonly random: (n: number) => Uint8Array,
    private readonly impl: CipherImpl,
  ) {
    this.file = file
    this.state = state
    if (state) this.ring = ringOf(state, impl)
  }

  /**
   * Opens the key file at `path`, creating it (and its directory, mode 0700) with autolock off and a fresh DEK
   * if there is none. A file wrapped
   * under an unlock key opens locked unless `options.unlockKey` is given (`BAD_KEY` if it is wrong).
   */
  static async open(path: string, options: KeyManagerOptions = {}): Promise<KeyManager> {
    if (typeof path !== 'string' || path.length === 0) throw typeError('path', 'be a file path')
    if (typeof options !== 'object' || options === null) throw typeError('options', 'be an object')
    const random = options.random ?? pooledRandom()
    if (typeof random !== 'function') throw typeError('options.random', 'be a function')
    const impl = options.cipher ?? (NATIVE_AVAILABLE ? 'native' : 'noble')
    if (impl !== 'native' && impl !== 'noble') throw typeError('options.cipher', "be 'native' or 'noble'")
    if (impl === 'native' && !NATIVE_AVAILABLE) {
      throw new TypeError("options.cipher: node:crypto has no chacha20-poly1305 here; use 'noble'")
    }
    const unlockKey = options.unlockKey === undefined ? undefined : parseUnlockKey(options.unlockKey)
    if (options.signal?.aborted)
      throw new StoreError('ABORTED', 'open aborted', { cause: options.signal.reason })
    let f = await readKeyFile(path)
    let state: KeyState | null = null
    if (f === null) {
      state = { current: freshKey(random, []), previous: [], retiredFloor: 0, retired: [], extras: {} }
      f = plainFile(state)
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      await writeKeyFile(path, f)
    } else if (!f.autolock) {
      state = readPlain(f)
    }
    const km = new KeyManager(path, f, state, random, impl)
    if (f.autolock && unlockKey)
      await km.unlock(unlockKey, options.signal ? { signal: options.signal } : undefined)
    return km
  }

  /** Whether the key file awaits its unlock key. */
  get locked(): boolean {
    return this.state === null
  }

  /** Whether the DEK is wrapped under an unlock key. */
  get autolock(): boolean {
    return this.file.autolock
  }

  /** Whether records sealed under earlier DEKs may remain (see {@link retirePreviousKeys}). */
  get hasPreviousKeys(): boolean {
    return this.mustState().previous.length > 0
  }

  /**
   * Unlocks a locked key file. A wrong key is `BAD_KEY` and changes nothing; unlocking a file that is not locked
   * is `NOT_LOCKED`. After an unlock-key rotation a manager that missed it unlocks with its old key; then
   * adopt the new one with {@link rotateUnlockKey}.
   */
  async unlock(key: string | Uint8Array, options?: { signal?: AbortSignal }): Promise<void> {
    const bytes = parseUnlockKey(key)
    return this.serial(async () => {
      if (this.state) throw new StoreError('NOT_LOCKED', 'swarm is not locked')
      const kek = this.file.kek
      if (!kek) throw corrupt('autolock file without KEK parameters')
      const salt = unb64(kek.salt, 'kek.salt')
      const nonce = unb64(kek.nonce, 'kek.nonce')
      const payload = unb64(this.file.payload, 'payload')
      if (nonce.length !== 24 || salt.length < 16) throw corrupt('bad KEK parameters')
      let plain: Uint8Array
      try {
        plain = xchacha20poly1305(deriveKek(bytes, salt), nonce, WRAP_AAD).decrypt(payload)
      } catch (err) {
        throw new StoreError('BAD_KEY', 'swarm could not be unlocked: invalid key provided', { cause: err })
      }
      this.state = decodeState(plain)
      this.ring = ringOf(this.state, this.impl)
      this.unlockKeyBytes = bytes
    }, options?.signal)
  }

  /**
   * The `seal` and `open` hooks for raft's `FileLogStorage`. They follow key rotations. A locked key file
   * refuses with `StoreError` `LOCKED` (swarm's "Swarm is encrypted and needs to be unlocked before it can be
   * used"). A record that fails authentication opens as `CORRUPT` with its index (raft reports it as its own
   * `CORRUPT` with this as the cause).
   */
  hooks(): SealHooks {
    this.mustState()
    return {
      seal: (data, ctx) => sealRecord(this.mustRing(), data, ctx, this.random),
      open: (data, ctx) => openRecord(this.mustRing(), data, ctx),
      sealAsync: (data, ctx) => sealRecordAsync(this.mustRing(), data, ctx, this.random),
      openAsync: (data, ctx) => openRecordAsync(this.mustRing(), data, ctx),
      batchSeal: true,
      sealTagBytes: SEAL_TAG_BYTES,
    }
  }

  /**
   * Turns autolock on: generates (or takes) the unlock key, replaces the DEK (the old one was stored in the
   * clear) and writes the key file wrapped under the new KEK. Returns the unlock key to show the operator.
   */
  async enableAutolock(unlockKey?: string | Uint8Array, options?: { signal?: AbortSignal }): Promise<string> {
    const key = unlockKey === undefined ? generateUnlockKey(this.random) : normalizeKey(unlockKey)
    return this.serial(async () => {
      const s = this.mustState()
      if (this.file.autolock) throw new StoreError('INVALID_ARGUMENT', 'autolock is already on')
      await this.commit(rotated(s, this.random), parseUnlockKey(key))
      return key
    }, options?.signal)
  }

  /** Turns autolock off: the DEK is written in the clear again. */
  async disableAutolock(options?: { signal?: AbortSignal }): Promise<void> {
    return this.serial(async () => {
      const s = this.mustState()
      if (!this.file.autolock) return
      await this.commit(s, null)
    }, options?.signal)
  }

  /**
   * Re-wraps the DEKs under a new unlock key (generated, or the cluster's current one for a manager that
   * missed a rotation) and replaces the DEK as swarm does. Returns the unlock key.
   */
  async rotateUnlockKey(
    unlockKey?: string | Uint8Array,
    options?: { signal?: AbortSignal },
  ): Promise<string> {
    const key = unlockKey === undefined ? generateUnlockKey(this.random) : normalizeKey(unlockKey)
    return this.serial(async () => {
      const s = this.mustState()
      if (!this.file.autolock) {
        throw new StoreError('INVALID_ARGUMENT', 'cannot rotate because autolock is not turned on')
      }
      await this.commit(rotated(s, this.random), parseUnlockKey(key))
      return key
    }, options?.signal)
  }

  /**
   * Starts sealing with a new DEK. Records under the old one stay readable; force a raft snapshot (it is sealed
   * under the new key), compact the log, then call {@link retirePreviousKeys} with the snapshot's index.
   */
  async rotateDataKey(options?: { signal?: AbortSignal }): Promise<void> {
    return this.serial(async () => {
      const s = this.mustState()
      await this.commit(rotated(s, this.random), this.currentUnlockKey())
    }, options?.signal)
  }

  /**
   * Drops every previous DEK once a snapshot at `snapshotIndex` (taken after the rotation) is durable. Log
   * entries at or below that index still on disk under a dropped key open as empty data, which raft discards
   * on load (they are covered by the snapshot); anything else under a dropped key is `CORRUPT`.
   */
  async retirePreviousKeys(snapshotIndex: number, options?: { signal?: AbortSignal }): Promise<void> {
    if (!Number.isSafeInteger(snapshotIndex) || snapshotIndex < 0) {
      throw rangeError('snapshotIndex', 'be an integer >= 0')
    }
    return this.serial(async () => {
      const s = this.mustState()
      if (s.previous.length === 0) return
      const retired = [...new Set([...s.retired, ...s.previous.map(keyId)])].slice(-64)
      await this.commit(
        { ...s, previous: [], retired, retiredFloor: Math.max(s.retiredFloor, snapshotIndex) },
        this.currentUnlockKey(),
      )
      for (const k of s.previous) k.fill(0)
    }, options?.signal)
  }

  /** A secret stored with the keys (e.g. the node's TLS key), locked along with them. */
  readSecret(name: string): Uint8Array | undefined {
    if (typeof name !== 'string' || name.length === 0) throw typeError('name', 'be a non-empty string')
    const v = this.mustState().extras[name]
    return v === undefined ? undefined : new Uint8Array(v)
  }

  /** Stores (or with null removes) a secret in the key file. */
  async writeSecret(
    name: string,
    value: Uint8Array | null,
    options?: { signal?: AbortSignal },
  ): Promise<void> {
    if (typeof name !== 'string' || name.length === 0) throw typeError('name', 'be a non-empty string')
    if (value !== null && !(value instanceof Uint8Array)) throw typeError('value', 'be a Uint8Array or null')
    return this.serial(async () => {
      const s = this.mustState()
      const extras = { ...s.extras }
      if (value === null) delete extras[name]
      else extras[name] = new Uint8Array(value)
      await this.commit({ ...s, extras }, this.currentUnlockKey())
    }, options?.signal)
  }

  /** Forgets the keys held in memory (best effort: the bytes are zeroed). The file is untouched. */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    if (this.state) {
      this.state.current.fill(0)
      for (const k of this.state.previous) k.fill(0)
      for (const v of Object.values(this.state.extras)) v.fill(0)
    }
    if (this.ring) {
      this.ring.current.words.fill(0)
      for (const k of this.ring.previous) k.words.fill(0)
    }
    if (this.unlockKeyBytes) this.unlockKeyBytes.fill(0)
    this.state = null
    this.ring = null
  }

  // ---------------------------------------------------------------------------------------------------------

  /** The unlock key in force (kept in memory only while autolock is on, to re-wrap on changes). */
  private unlockKeyBytes: Uint8Array | null = null

  private currentUnlockKey(): Uint8Array | null {
    if (!this.file.autolock) return null
    if (!this.unlockKeyBytes) {
      throw new StoreError('LOCKED', `${LOCKED_MESSAGE}: the unlock key is needed to change the key file`)
    }
    return this.unlockKeyBytes
  }

  private async commit(next: KeyState, kekBytes: Uint8Array | null): Promise<void> {
    let f: KeyFile
    if (kekBytes === null) f = plainFile(next)
    else {
      const salt = this.random(16)
      const nonce = this.random(24)
      const wrapped = xchacha20poly1305(deriveKek(kekBytes, salt), nonce, WRAP_AAD).encrypt(encodeState(next))
      f = {
        format: FORMAT,
        version: VERSION,
        autolock: true,
        payload: b64(wrapped),
        kek: { salt: b64(salt), nonce: b64(nonce) },
      }
    }
    await writeKeyFile(this.path, f)
    this.file = f
    this.state = next
    this.ring = ringOf(next, this.impl)
    this.unlockKeyBytes = kekBytes
  }

  private mustState(): KeyState {
    if (this.closedFlag) throw new StoreError('CLOSED', 'key manager is closed')
    if (!this.state) throw new StoreError('LOCKED', LOCKED_MESSAGE)
    return this.state
  }

  private mustRing(): Keyring {
    this.mustState()
    return this.ring!
  }

  /** Runs key file changes one at a time; an aborted signal stops a change before it starts. */
  private serial<R>(fn: () => Promise<R>, signal?: AbortSignal): Promise<R> {
    const p = this.chain.then(() => {
      if (signal?.aborted)
        throw new StoreError('ABORTED', 'key file change aborted', { cause: signal.reason })
      return fn()
    })
    this.chain = p.catch(() => undefined)
    return p
  }
}

/** CSPRNG bytes served from an 8 KiB pool refilled by `randomFillSync`: a nonce per record costs a copy. */
function pooledRandom(): (n: number) => Uint8Array {
  const pool = new Uint8Array(8192)
  let at = pool.length
  return (n) => {
    if (n > pool.length) return new Uint8Array(randomBytes(n))
    if (at + n > pool.length) {
      randomFillSync(pool)
      at = 0
    }
    const out = pool.slice(at, at + n)
    pool.fill(0, at, at + n)
    at += n
    return out
  }
}

function normalizeKey(key: string | Uint8Array): string {
  const bytes = parseUnlockKey(key)
  return `SWMKEY-1-${Buffer.from(bytes).toString('base64').replace(/=+$/, '')}`
}

function freshKey(random: (n: number) => Uint8Array, avoid: Uint8Array[]): Uint8Array {
  const ids = new Set(avoid.map(keyId))
  for (;;) {
    const k = random(KEY_BYTES)
    if (!(k instanceof Uint8Array) || k.length !== KEY_BYTES)
      throw typeError('random', 'return the bytes asked for')
    if (!ids.has(keyId(k))) return new Uint8Array(k)
  }
}

function rotated(s: KeyState, random: (n: number) => Uint8Array): KeyState {
  const previous = [s.current, ...s.previous]
  if (previous.length > MAX_PREVIOUS) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `${previous.length - 1} earlier data keys are still held: snapshot and retire them before rotating again`,
    )
  }
  return { ...s, current: freshKey(random, previous), previous }
}

function ringOf(s: KeyState, impl: CipherImpl): Keyring {
  return {
    impl,
    current: ringKey(s.current),
    previous: s.previous.map(ringKey),
    retiredFloor: s.retiredFloor,
    retired: s.retired,
  }
}

function plainFile(s: KeyState): KeyFile {
  const payload = encodeState(s)
  return {
    format: FORMAT,
    version: VERSION,
    autolock: false,
    payload: b64(payload),
    checksum: hex(sha256(payload)),
  }
}

function readPlain(f: KeyFile): KeyState {
  const payload = unb64(f.payload, 'payload')
  if (typeof f.checksum !== 'string' || f.checksum !== hex(sha256(payload)))
    throw corrupt('checksum mismatch')
  return decodeState(payload)
}
