// IPv4 and IPv6 addresses as bigints (v4 also as a uint32 number on the hot path), parsing and canonical
// formatting (RFC 5952 for v6), CIDR parsing. Strings from users are checked strictly: no leading zeros in
// v4 octets, no host bits in a CIDR, nothing longer than an address can be.

export type Family = 4 | 6

export interface Cidr {
  family: Family
  /** The network address. */
  base: bigint
  prefix: number
}

const MAX_TEXT = 64

/** Parses a dotted-quad IPv4 address into a uint32, or returns -1. */
export function parseV4(s: string): number {
  const n = s.length
  if (n < 7 || n > 15) return -1
  let value = 0
  let octet = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1
      value = value * 256 + octet
      octet = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1 // leading zero
      octet = octet * 10 + (c - 48)
      if (octet > 255) return -1
      digits++
    } else return -1
  }
  if (digits === 0 || dots !== 3) return -1
  return value * 256 + octet
}

export function formatV4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** Parses an IPv6 address (with `::` and an optional dotted-quad tail) into a bigint, or returns -1n. */
export function parseV6(s: string): bigint {
  if (s.length < 2 || s.length > 45) return -1n
  const halves = s.split('::')
  if (halves.length > 2) return -1n
  const groups = (part: string): number[] | null => {
    if (part === '') return []
    const out: number[] = []
    const pieces = part.split(':')
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!
      if (i === pieces.length - 1 && p.includes('.')) {
        const v4 = parseV4(p)
        if (v4 < 0) return null
        out.push(v4 >>> 16, v4 & 0xffff)
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null
        out.push(Number.parseInt(p, 16))
      }
    }
    return out
  }
  const head = groups(halves[0]!)
  if (head === null) return -1n
  let all: number[]
  if (halves.length === 2) {
    const tail = groups(halves[1]!)
    if (tail === null || head.length + tail.length > 7) return -1n
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  } else {
    if (head.length !== 8) return -1n
    all = head
  }
  let v = 0n
  for (const g of all) v = (v << 16n) | BigInt(g)
  return v
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
export function formatV6(v: bigint): string {
  const g: number[] = new Array(8)
  for (let i = 7; i >= 0; i--) {
    g[i] = Number(v & 0xffffn)
    v >>= 16n
  }
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':')
  if (bestStart < 0) return hex(g)
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128
}

export function parseIp(s: unknown, name: string): { family: Family; value: bigint } {
  if (typeof s !== 'string') throw new TypeError(`${name} must be an IP address string`)
  if (s.length > MAX_TEXT) throw new RangeError(`${name} is not an IP address: too long`)
  const v4 = parseV4(s)
  if (v4 >= 0) return { family: 4, value: BigInt(v4) }
  const v6 = s.includes(':') ? parseV6(s) : -1n
  if (v6 >= 0n) return { family: 6, value: v6 }
  throw new RangeError(`${name} is not an IPv4 or IPv6 address: ${JSON.stringify(s)}`)
}

export function formatIp(family: Family, value: bigint): string {
  return family === 4 ? formatV4(Number(value)) : formatV6(value)
}

/** Parses `a.b.c.d/n` or `x::/n`; the address must be the network address (no host bits set). */
export function parseCidr(s: unknown, name: string): Cidr {
  if (typeof s !== 'string') throw new TypeError(`${name} must be a CIDR string such as "10.0.0.0/24"`)
  if (s.length > MAX_TEXT) throw new RangeError(`${name} is not a CIDR: too long`)
  const slash = s.indexOf('/')
  if (slash < 0) throw new RangeError(`${name} is not a CIDR (missing /prefix): ${JSON.stringify(s)}`)
  const { family, value } = parseIp(s.slice(0, slash), name)
  const p = s.slice(slash + 1)
  const bits = familyBits(family)
  if (!/^\d{1,3}$/.test(p) || Number(p) > bits)
    throw new RangeError(`${name} has an invalid prefix length: ${JSON.stringify(s)}`)
  const prefix = Number(p)
  const hostMask = (1n << BigInt(bits - prefix)) - 1n
  if ((value & hostMask) !== 0n)
    throw new RangeError(
      `${name} has host bits set: ${JSON.stringify(s)} (did you mean ${formatCidr({ family, base: value & ~hostMask, prefix })}?)`,
    )
  return { family, base: value, prefix }
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.base)}/${c.prefix}`
}

/** Number of addresses in the CIDR, as a bigint. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix)
}

export function cidrEnd(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrEnd(b) && b.base <= cidrEnd(a)
}

/** A locally administered MAC derived from an address (the last four bytes), as swarm does for v4. */
export function macFor(family: Family, value: bigint): string {
  const low = Number(value & 0xffffffffn)
  const bytes = [
    0x02,
    family === 4 ? 0x42 : 0x43,
    low >>> 24,
    (low >>> 16) & 255,
    (low >>> 8) & 255,
    low & 255,
  ]
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':')
}
