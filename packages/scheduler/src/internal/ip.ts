/**
 * IP address and CIDR parsing for `node.ip` constraints (no dependencies; IPv4, IPv6, IPv4-mapped IPv6).
 *
 * `@swarmkit/overlay` parses addresses too (as bigints, for IPAM), but the scheduler may import only
 * `@swarmkit/store`, and overlay no swarmkit package, so neither can be the other's home. This one keeps
 * Go's `net.IP` semantics (16-byte form, IPv4-mapped matching) that docker's constraint matching has.
 */

/** An address as 16 bytes (IPv4 in its IPv4-mapped IPv6 form, as Go's `net.IP` keeps it). */
export type IpBytes = Uint8Array

function parseV4(s: string): number[] | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  const out: number[] = []
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined
    if (p.length > 1 && p[0] === '0') return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out.push(n)
  }
  return out
}

/** Parses a textual IPv4 or IPv6 address; `undefined` when it is not one. */
export function parseIp(text: string): IpBytes | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return undefined
  const v4 = parseV4(text)
  if (v4) {
    const b = new Uint8Array(16)
    b[10] = 0xff
    b[11] = 0xff
    b.set(v4, 12)
    return b
  }
  if (!text.includes(':')) return undefined
  let s = text
  let tail: number[] = []
  const lastColon = s.lastIndexOf(':')
  const maybeV4 = s.slice(lastColon + 1)
  if (maybeV4.includes('.')) {
    const parsed = parseV4(maybeV4)
    if (!parsed) return undefined
    tail = parsed
    s = `${s.slice(0, lastColon + 1)}0:0`
  }
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const group = (h: string): number[] | undefined => {
    if (h === '') return []
    const out: number[] = []
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(Number.parseInt(g, 16))
    }
    return out
  }
  const head = group(halves[0] ?? '')
  const rest = halves.length === 2 ? group(halves[1] ?? '') : []
  if (!head || !rest) return undefined
  const missing = 8 - head.length - rest.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  const words = [...head, ...new Array<number>(missing).fill(0), ...rest]
  const b = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    b[2 * i] = (words[i] ?? 0) >> 8
    b[2 * i + 1] = (words[i] ?? 0) & 0xff
  }
  if (tail.length === 4) b.set(tail, 12)
  return b
}

function isV4Mapped(b: IpBytes): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

export function ipEqual(a: IpBytes, b: IpBytes): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false
  return true
}

/** A parsed CIDR network. */
export interface Cidr {
  v4: boolean
  /** The network address (16 bytes; IPv4 mapped). */
  base: IpBytes
  /** Prefix length within the family (0..32 for IPv4, 0..128 for IPv6). */
  bits: number
}

/** Parses `a.b.c.d/n` or `x::y/n`; `undefined` when it is not a CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string') return undefined
  const slash = text.indexOf('/')
  if (slash < 0) return undefined
  const addr = text.slice(0, slash)
  const bitsText = text.slice(slash + 1)
  if (!/^[0-9]{1,3}$/.test(bitsText)) return undefined
  const bits = Number(bitsText)
  const v4 = parseV4(addr) !== undefined
  const base = parseIp(addr)
  if (!base) return undefined
  if (bits > (v4 ? 32 : 128)) return undefined
  return { v4, base, bits }
}

/** Whether `ip` lies in `net` (an IPv4 network contains only IPv4 addresses, as in Go). */
export function cidrContains(net: Cidr, ip: IpBytes): boolean {
  const offset = net.v4 ? 12 : 0
  if (net.v4 && !isV4Mapped(ip)) return false
  let bits = net.bits
  for (let i = offset; i < 16 && bits > 0; i++) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    if (((ip[i] ?? 0) & mask) !== ((net.base[i] ?? 0) & mask)) return false
    bits -= 8
  }
  return true
}
