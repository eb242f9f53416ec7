import { toBase36 } from './internal/base36.js'
import { defaultRandom, type RandomBytes } from './internal/crypto.js'

const ID_RE = /^[0-9a-z]{25}$/

// `@swarmkit/store` has the same format for object IDs (`generateId`, `isId`). Neither package may import the
// other (pki depends on no swarmkit package, store only on raft), so each keeps its own few lines; the workspace
// test test/shared-contracts.test.ts holds them to the same output for the same random bytes.

/**
 * A new node or cluster ID: 16 random bytes (128 bits) in lowercase base 36, left-padded to 25 characters,
 * the shape of swarm's IDs (`dflye3tzgrsvg9r1cqpafsvk3`).
 */
export function generateId(random: RandomBytes = defaultRandom): string {
  if (typeof random !== 'function') throw new TypeError('random must be a function')
  const b = random(16)
  if (!(b instanceof Uint8Array) || b.length !== 16) throw new RangeError('random(16) must return 16 bytes')
  return toBase36(b, 25)
}

/** A new node ID (see {@link generateId}). */
export const generateNodeId = (random?: RandomBytes): string => generateId(random)
/** A new cluster ID (see {@link generateId}). */
export const generateClusterId = (random?: RandomBytes): string => generateId(random)

/** True for a well-formed ID: 25 lowercase base-36 characters. */
export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id)
}
