import { randomBytes } from 'node:crypto'
import { typeError } from './internal/check.js'

const ID_LENGTH = 25

// `@swarmkit/pki` makes node and cluster IDs in this same format. Neither package may import the other (pki
// depends on no swarmkit package, store only on raft), so each keeps its own few lines; the workspace test
// test/shared-contracts.test.ts holds them to the same output for the same random bytes.

/**
 * A new object ID in swarm's format: 25 lowercase base-36 characters carrying 128 random bits
 * (e.g. `dflye3tzgrsvg9r1cqpafsvk3`). `random` returns `n` random bytes and is injectable for
 * deterministic tests; it defaults to `node:crypto`'s CSPRNG.
 */
export function generateId(random: (n: number) => Uint8Array = randomBytes): string {
  if (typeof random !== 'function') throw typeError('random', 'be a function')
  const bytes = random(16)
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) throw typeError('random', 'return 16 bytes')
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return n.toString(36).padStart(ID_LENGTH, '0')
}

/** Whether `id` has the shape of a swarm object ID (25 lowercase base-36 characters). */
export function isId(id: unknown): id is string {
  return typeof id === 'string' && /^[0-9a-z]{25}$/.test(id)
}
