import { randomBytes } from 'node:crypto'
import { typeError } from './internal/check.js'

const PREFIX = 'SWMKEY-1-'

// The home of swarm's unlock-key format (it is the key encryption key of the at-rest encryption). `@swarmkit/pki`
// keeps deprecated copies for its existing users, since pki may import no swarmkit package.
const KEY_BYTES = 32

/**
 * A new manager unlock key in swarm's format: `SWMKEY-1-` and 32 random bytes in unpadded standard base64
 * (52 characters in all). It is the key encryption key (KEK) of every manager's key file.
 */
export function generateUnlockKey(random: (n: number) => Uint8Array = randomBytes): string {
  if (typeof random !== 'function') throw typeError('random', 'be a function')
  const bytes = random(KEY_BYTES)
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES)
    throw typeError('random', 'return 32 bytes')
  return formatUnlockKey(bytes)
}

/** Formats 32 key bytes as `SWMKEY-1-…`. */
export function formatUnlockKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw typeError('key', 'be 32 bytes')
  return PREFIX + Buffer.from(key).toString('base64').replace(/=+$/, '')
}

/**
 * The 32 key bytes of an unlock key: a `SWMKEY-1-…` string (surrounding whitespace ignored), or the raw
 * bytes. Throws TypeError for anything else (a wrong but well-formed key is only found out by `unlock`).
 */
export function parseUnlockKey(key: string | Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.length !== KEY_BYTES) throw typeError('key', 'be 32 bytes')
    return new Uint8Array(key)
  }
  if (typeof key !== 'string') throw typeError('key', 'be a SWMKEY-1- string or 32 bytes')
  const text = key.trim()
  if (!text.startsWith(PREFIX)) throw typeError('key', 'be a swarm unlock key (SWMKEY-1-…)')
  const b64 = text.slice(PREFIX.length)
  if (!/^[A-Za-z0-9+/]{43}$/.test(b64)) throw typeError('key', 'be a well-formed unlock key')
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'))
  if (bytes.length !== KEY_BYTES || formatUnlockKey(bytes) !== text)
    throw typeError('key', 'be a well-formed unlock key')
  return bytes
}
