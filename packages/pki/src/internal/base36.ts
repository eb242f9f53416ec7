// Fixed-width lowercase base 36 of big-endian byte strings (swarm's token encoding).
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'

export function bytesToBigInt(b: Uint8Array): bigint {
  let n = 0n
  for (const x of b) n = (n << 8n) | BigInt(x)
  return n
}

export function bigIntToBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn)
    n >>= 8n
  }
  return out
}

export function toBase36(b: Uint8Array, width: number): string {
  return bytesToBigInt(b).toString(36).padStart(width, '0')
}

/** Parses exactly `width` lowercase base-36 digits into `bytes` bytes; undefined if invalid or too large. */
export function fromBase36(s: string, width: number, bytes: number): Uint8Array | undefined {
  if (s.length !== width) return undefined
  let n = 0n
  for (let i = 0; i < s.length; i++) {
    const d = ALPHABET.indexOf(s[i]!)
    if (d < 0) return undefined
    n = n * 36n + BigInt(d)
  }
  if (n >> BigInt(bytes * 8) !== 0n) return undefined
  return bigIntToBytes(n, bytes)
}
