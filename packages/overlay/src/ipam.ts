import { OverlayError } from './errors.js'
import { Bitmap, MAX_BITMAP_SIZE } from './internal/bitmap.js'
import {
  type Cidr,
  cidrEnd,
  cidrSize,
  type Family,
  familyBits,
  formatCidr,
  formatIp,
  formatV4,
  overlaps,
  parseCidr,
  parseIp,
  parseV4,
} from './internal/ip.js'

/** An address pool that subnets are cut from. */
export interface AddressPool {
  /** The pool, e.g. `10.0.0.0/8` or `fd00:5a::/48`. */
  base: string
  /** Prefix length of the subnets cut from it, e.g. 24 (IPv4) or 64 (IPv6). */
  size: number
}

/** The address pools an {@link ipam} cuts network subnets from, and the subnet sizes. */
export interface IpamOptions {
  /**
   * Pools to cut network subnets from, IPv4 and IPv6 mixed; a string uses the family's default size.
   * Default: `['10.0.0.0/8']` (swarm's default address pool). Pools may not overlap.
   */
  pools?: Array<string | AddressPool>
  /** Subnet prefix length for IPv4 pools given as strings. Default 24. */
  subnetSize?: number
  /** Subnet prefix length for IPv6 pools given as strings. Default 64. */
  subnetSize6?: number
}

/** One subnet of a network, as the network object stores it. */
export interface SubnetRecord {
  network: string
  /** CIDR, e.g. `10.0.1.0/24`. */
  subnet: string
  /** The gateway address (by default the first address of the subnet). */
  gateway: string
}

/** One address held by a task, a service (virtual IP) or a node, as that object stores it. */
export interface AddressRecord {
  network: string
  address: string
}

/** What the allocator holds, in a canonical order: the same allocations always give the same records. */
export interface IpamState {
  subnets: SubnetRecord[]
  addresses: AddressRecord[]
}

/** What a network asks of {@link Ipam}: a given subnet and gateway, or any subnet of a family from the pools. */
export interface SubnetRequest {
  /** A user-given subnet (CIDR); checked against every allocated subnet and reserved. */
  subnet?: string
  /** A user-given gateway inside the subnet; default: the first address. */
  gateway?: string
  /** Family of a pool subnet when `subnet` is not given. Default 4. */
  family?: Family
}

/** What a task, virtual IP or node asks of {@link Ipam} on a network: a given address, or the next free one. */
export interface AddressRequest {
  /** A specific address to reserve (e.g. restoring a task's address). */
  address?: string
  /** Family to allocate from when the network has subnets of both. Default: the network's first subnet's. */
  family?: Family
}

/**
 * IP address management for overlay networks: subnets from pools (lowest free first) or user-given, and
 * per-network addresses (next-fit, so a released address is reused last). Synchronous and deterministic.
 */
export interface Ipam {
  /** Allocates a subnet for `network` (a network may hold several, e.g. one IPv4 and one IPv6). */
  allocateSubnet(network: string, request?: SubnetRequest): SubnetRecord
  /** Releases every subnet of `network` and every address in them. */
  releaseNetwork(network: string): void
  /** Allocates an address on `network` for a task, a service's virtual IP or a node. */
  allocateAddress(network: string, request?: AddressRequest): string
  /** Releases an address; `NOT_ALLOCATED` if it was not held. */
  releaseAddress(network: string, address: string): void
  /** The subnets of `network` (empty if unknown). */
  subnets(network: string): SubnetRecord[]
  /** Whether `address` is allocated on `network`. */
  has(network: string, address: string): boolean
  /** Every allocation, canonically ordered; `rebuildIpam(state)` gives an equal allocator. */
  state(): IpamState
  /**
   * Restarts each subnet's next-fit after its highest held address, as {@link rebuildIpam} does: for an
   * allocator rebuilt by holding the addresses one at a time (e.g. in time slices).
   */
  settle(): void
}

interface Pool {
  cidr: Cidr
  subnetPrefix: number
  shift: bigint
  /** Slots cut into pool subnets. User-given subnets are not marked here: the search steps over them. */
  slots: Bitmap
}

interface Subnet {
  network: string
  cidr: Cidr
  text: string
  gateway: bigint
  gatewayText: string
  /** For IPv4, the base as a number (hot path). */
  base4: number
  /** Addresses handed out by the bitmap, as offsets from the base, within [0, window). */
  bits: Bitmap
  window: number
  /** Explicit IPv6 addresses beyond the window (rare). */
  beyond: Set<bigint>
  /** The pool slot this subnet was cut from, if it was. */
  slot: Slot | undefined
}

interface Slot {
  pool: Pool
  index: number
}

const MAX_ID = 256

// The index of the IPv4 block of prefix q holding `base`: below 2^30 for q <= 30, a small integer.
function block4(base: number, q: number): number {
  return q === 0 ? 0 : Math.floor(base / 2 ** (32 - q))
}

function block6(base: bigint, q: number): bigint {
  return ((base >> BigInt(128 - q)) << 8n) | BigInt(q)
}

function bump<K>(map: Map<K, number>, key: K, delta: number): void {
  const n = (map.get(key) ?? 0) + delta
  if (n === 0) map.delete(key)
  else map.set(key, n)
}

function checkNetwork(network: unknown): string {
  if (typeof network !== 'string' || network.length === 0 || network.length > MAX_ID)
    throw new TypeError(`network must be a non-empty string of at most ${MAX_ID} characters`)
  return network
}

class IpamImpl implements Ipam {
  private readonly pools: Pool[] = []
  private readonly networks = new Map<string, Subnet[]>()
  /**
   * Overlap index, O(prefix length) per check whatever the number of subnets: `exact` holds each subnet
   * under its own block; `under` counts the subnets inside every aligned block that contains one. A CIDR
   * overlaps an allocated subnet iff one of its enclosing blocks is a subnet (`exact`) or its own block
   * contains one (`under`). IPv4 keys a block of prefix q by its index at that level (a small integer, so
   * no bigint garbage on the hot path); IPv6 by base and prefix packed in a bigint.
   */
  private readonly exact4 = Array.from({ length: 33 }, () => new Map<number, Subnet>())
  private readonly under4 = Array.from({ length: 33 }, () => new Map<number, number>())
  private readonly exact6 = new Map<bigint, Subnet>()
  private readonly under6 = new Map<bigint, number>()

  constructor(options: IpamOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    const size4 = options.subnetSize ?? 24
    const size6 = options.subnetSize6 ?? 64
    if (!Number.isInteger(size4) || size4 < 1 || size4 > 30) throw new RangeError('subnetSize must be 1..30')
    if (!Number.isInteger(size6) || size6 < 1 || size6 > 126)
      throw new RangeError('subnetSize6 must be 1..126')
    const list = options.pools ?? ['10.0.0.0/8']
    if (!Array.isArray(list)) throw new TypeError('pools must be an array')
    for (const [i, p] of list.entries()) {
      const spec = typeof p === 'string' ? { base: p, size: -1 } : p
      if (typeof spec !== 'object' || spec === null)
        throw new TypeError(`pools[${i}] must be a CIDR or { base, size }`)
      const cidr = parseCidr(spec.base, `pools[${i}]`)
      const size = spec.size === -1 ? (cidr.family === 4 ? size4 : size6) : spec.size
      const max = familyBits(cidr.family) - 2
      if (!Number.isInteger(size) || size < cidr.prefix || size > max)
        throw new RangeError(`pools[${i}].size must be an integer in ${cidr.prefix}..${max}`)
      for (const other of this.pools)
        if (overlaps(other.cidr, cidr))
          throw new OverlayError(
            'SUBNET_OVERLAP',
            `pool ${formatCidr(cidr)} overlaps pool ${formatCidr(other.cidr)}`,
          )
      const slots = 2 ** (size - cidr.prefix)
      this.pools.push({
        cidr,
        subnetPrefix: size,
        shift: BigInt(familyBits(cidr.family) - size),
        slots: new Bitmap(Math.min(slots, MAX_BITMAP_SIZE)),
      })
    }
  }

  allocateSubnet(network: string, request: SubnetRequest = {}): SubnetRecord {
    checkNetwork(network)
    if (typeof request !== 'object' || request === null) throw new TypeError('request must be an object')
    let cidr: Cidr
    let slot: Slot | undefined
    if (request.subnet !== undefined) {
      cidr = parseCidr(request.subnet, 'request.subnet')
      const max = familyBits(cidr.family) - 2
      if (cidr.prefix > max)
        throw new RangeError(`request.subnet must be /${max} or larger to hold a gateway and an address`)
      const s = this.overlapping(cidr)
      if (s !== undefined)
        throw new OverlayError(
          'SUBNET_OVERLAP',
          `subnet ${formatCidr(cidr)} overlaps ${s.text} of network ${s.network}`,
          { holder: s.network },
        )
    } else {
      const family = request.family ?? 4
      if (family !== 4 && family !== 6) throw new RangeError('request.family must be 4 or 6')
      let found: Cidr | undefined
      search: for (const p of this.pools) {
        if (p.cidr.family !== family) continue
        let from = 0
        for (;;) {
          const k = p.slots.firstFree(from)
          if (k < 0) continue search
          const candidate: Cidr = {
            family,
            base: p.cidr.base + (BigInt(k) << p.shift),
            prefix: p.subnetPrefix,
          }
          const blocker = this.overlapping(candidate)
          if (blocker !== undefined) {
            // A user-given subnet covers part of this slot: go on after its end, in one step however many
            // slots it covers (a user /8 over a pool of 2^48 slots).
            const after = ((cidrEnd(blocker.cidr) - p.cidr.base) >> p.shift) + 1n
            if (after >= BigInt(p.slots.size)) continue search
            from = Number(after)
            continue
          }
          p.slots.set(k)
          found = candidate
          slot = { pool: p, index: k }
          break search
        }
      }
      if (found === undefined)
        throw new OverlayError(
          'POOL_EXHAUSTED',
          `no IPv${family} subnet left in the address pools (${this.poolText(family)})`,
        )
      cidr = found
    }
    const size = cidrSize(cidr)
    const window = size > BigInt(MAX_BITMAP_SIZE) ? MAX_BITMAP_SIZE : Number(size)
    const bits = new Bitmap(window)
    bits.set(0) // the network address (IPv6: the subnet-router anycast address)
    if (cidr.family === 4) bits.set(window - 1) // broadcast
    let gateway = cidr.base + 1n
    if (request.gateway !== undefined) {
      const g = parseIp(request.gateway, 'request.gateway')
      if (
        g.family !== cidr.family ||
        g.value <= cidr.base ||
        g.value >= cidr.base + size - (cidr.family === 4 ? 1n : 0n)
      ) {
        if (slot !== undefined) slot.pool.slots.clear(slot.index)
        throw new OverlayError(
          'OUT_OF_RANGE',
          `gateway ${request.gateway} is not a host address of ${formatCidr(cidr)}`,
        )
      }
      gateway = g.value
    }
    const subnet: Subnet = {
      network,
      cidr,
      text: formatCidr(cidr),
      gateway,
      gatewayText: formatIp(cidr.family, gateway),
      base4: cidr.family === 4 ? Number(cidr.base) : 0,
      bits,
      window,
      beyond: new Set(),
      slot,
    }
    this.hold(subnet, gateway)
    let list = this.networks.get(network)
    if (list === undefined) this.networks.set(network, (list = []))
    list.push(subnet)
    this.index(subnet, 1)
    return { network, subnet: subnet.text, gateway: subnet.gatewayText }
  }

  releaseNetwork(network: string): void {
    checkNetwork(network)
    const list = this.networks.get(network)
    if (list === undefined) throw new OverlayError('NOT_FOUND', `network ${network} holds no subnet`)
    for (const s of list) {
      this.index(s, -1)
      if (s.slot !== undefined) s.slot.pool.slots.clear(s.slot.index)
    }
    this.networks.delete(network)
  }

  allocateAddress(network: string, request?: AddressRequest): string {
    const list = this.networks.get(network)
    if (list === undefined) {
      checkNetwork(network)
      throw new OverlayError('NOT_FOUND', `network ${network} holds no subnet`)
    }
    if (request === undefined) {
      // Hot path: the first subnet with room.
      const family = list[0]!.cidr.family
      for (const s of list) {
        if (s.cidr.family !== family) continue
        const off = s.bits.next()
        if (off < 0) continue
        return family === 4 ? formatV4((s.base4 + off) >>> 0) : formatIp(6, s.cidr.base + BigInt(off))
      }
      throw this.exhausted(network, family)
    }
    if (typeof request !== 'object' || request === null) throw new TypeError('request must be an object')
    if (request.address !== undefined) {
      const { family, value } = parseIp(request.address, 'request.address')
      const s = this.find(list, family, value)
      if (s === undefined)
        throw new OverlayError('OUT_OF_RANGE', `${request.address} is in no subnet of network ${network}`)
      if (!this.hold(s, value)) {
        const what = value === s.gateway ? 'the gateway' : 'in use'
        throw new OverlayError('IN_USE', `${request.address} on network ${network} is ${what}`)
      }
      return formatIp(family, value)
    }
    const family = request.family ?? list[0]!.cidr.family
    if (family !== 4 && family !== 6) throw new RangeError('request.family must be 4 or 6')
    for (const s of list) {
      if (s.cidr.family !== family) continue
      const off = s.bits.next()
      if (off >= 0) return formatIp(family, s.cidr.base + BigInt(off))
    }
    throw this.exhausted(network, family)
  }

  releaseAddress(network: string, address: string): void {
    const list = this.networks.get(network)
    if (list === undefined) {
      checkNetwork(network)
      throw new OverlayError('NOT_FOUND', `network ${network} holds no subnet`)
    }
    const v4 = typeof address === 'string' ? parseV4(address) : -1
    if (v4 >= 0) {
      for (const s of list) {
        if (s.cidr.family !== 4) continue
        const off = v4 - s.base4
        if (off >= 0 && off < s.window) {
          if (off === 0 || off === s.window - 1 || BigInt(v4) === s.gateway || !s.bits.clear(off))
            throw this.notAllocated(network, address)
          return
        }
      }
      throw new OverlayError('OUT_OF_RANGE', `${address} is in no subnet of network ${network}`)
    }
    const { family, value } = parseIp(address, 'address')
    const s = this.find(list, family, value)
    if (s === undefined)
      throw new OverlayError('OUT_OF_RANGE', `${address} is in no subnet of network ${network}`)
    const off = value - s.cidr.base
    if (off === 0n || value === s.gateway) throw this.notAllocated(network, address)
    const ok = off < BigInt(s.window) ? s.bits.clear(Number(off)) : s.beyond.delete(value)
    if (!ok) throw this.notAllocated(network, address)
  }

  subnets(network: string): SubnetRecord[] {
    checkNetwork(network)
    return (this.networks.get(network) ?? []).map((s) => ({
      network,
      subnet: s.text,
      gateway: s.gatewayText,
    }))
  }

  has(network: string, address: string): boolean {
    checkNetwork(network)
    const list = this.networks.get(network)
    if (list === undefined) return false
    const { family, value } = parseIp(address, 'address')
    const s = this.find(list, family, value)
    if (s === undefined || value === s.gateway) return false
    const off = value - s.cidr.base
    if (off === 0n) return false
    return off < BigInt(s.window)
      ? s.bits.has(Number(off)) && !(family === 4 && Number(off) === s.window - 1)
      : s.beyond.has(value)
  }

  state(): IpamState {
    const nets = [...this.networks.keys()].sort()
    const subnets: SubnetRecord[] = []
    const addresses: AddressRecord[] = []
    for (const network of nets) {
      for (const s of this.networks.get(network)!) {
        subnets.push({ network, subnet: s.text, gateway: s.gatewayText })
        const gwOff = s.gateway - s.cidr.base
        for (const off of s.bits.values()) {
          if (off === 0 || (s.cidr.family === 4 && off === s.window - 1) || BigInt(off) === gwOff) continue
          addresses.push({ network, address: formatIp(s.cidr.family, s.cidr.base + BigInt(off)) })
        }
        for (const v of [...s.beyond].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
          addresses.push({ network, address: formatIp(s.cidr.family, v) })
      }
    }
    return { subnets, addresses }
  }

  /** After a rebuild: continue next-fit after the highest address, as close to the original as the records allow. */
  settle(): void {
    for (const list of this.networks.values()) for (const s of list) s.bits.resetCursor()
  }

  private index(s: Subnet, delta: 1 | -1): void {
    const { family, prefix } = s.cidr
    if (family === 4) {
      const base = Number(s.cidr.base)
      if (delta > 0) this.exact4[prefix]!.set(block4(base, prefix), s)
      else this.exact4[prefix]!.delete(block4(base, prefix))
      for (let q = 0; q <= prefix; q++) bump(this.under4[q]!, block4(base, q), delta)
      return
    }
    const base = s.cidr.base
    if (delta > 0) this.exact6.set(block6(base, prefix), s)
    else this.exact6.delete(block6(base, prefix))
    for (let q = 0; q <= prefix; q++) bump(this.under6, block6(base, q), delta)
  }

  // An allocated subnet overlapping `cidr`, if any.
  private overlapping(cidr: Cidr): Subnet | undefined {
    const { family, prefix } = cidr
    let inside: boolean
    if (family === 4) {
      const base = Number(cidr.base)
      for (let q = 0; q <= prefix; q++) {
        const hit = this.exact4[q]!.get(block4(base, q))
        if (hit !== undefined) return hit
      }
      inside = this.under4[prefix]!.has(block4(base, prefix))
    } else {
      for (let q = 0; q <= prefix; q++) {
        const hit = this.exact6.get(block6(cidr.base, q))
        if (hit !== undefined) return hit
      }
      inside = this.under6.has(block6(cidr.base, prefix))
    }
    if (!inside) return undefined
    // Something lies inside `cidr`: find it for the message (error path only).
    for (const list of this.networks.values()) for (const s of list) if (overlaps(s.cidr, cidr)) return s
    return undefined
  }

  private find(list: Subnet[], family: Family, value: bigint): Subnet | undefined {
    for (const s of list) {
      if (s.cidr.family !== family) continue
      if (value >= s.cidr.base && value <= cidrEnd(s.cidr)) return s
    }
    return undefined
  }

  // Marks an address held; false if it already was (or is reserved).
  private hold(s: Subnet, value: bigint): boolean {
    const off = value - s.cidr.base
    if (off === 0n) return false
    if (s.cidr.family === 4 && off === BigInt(s.window - 1)) return false
    if (off < BigInt(s.window)) return s.bits.set(Number(off))
    if (s.beyond.has(value)) return false
    s.beyond.add(value)
    return true
  }

  private poolText(family: Family): string {
    const ps = this.pools.filter((p) => p.cidr.family === family)
    return ps.length === 0 ? `no IPv${family} pool configured` : ps.map((p) => formatCidr(p.cidr)).join(', ')
  }

  private exhausted(network: string, family: Family): OverlayError {
    return new OverlayError('POOL_EXHAUSTED', `no IPv${family} address left on network ${network}`)
  }

  private notAllocated(network: string, address: string): OverlayError {
    return new OverlayError('NOT_ALLOCATED', `${address} is not allocated on network ${network}`)
  }
}

/** Creates an empty allocator. */
export function ipam(options: IpamOptions = {}): Ipam {
  return new IpamImpl(options)
}

/**
 * Rebuilds an allocator from the records held by the objects that own the addresses (network subnets,
 * service virtual IPs, task and node addresses) — what a newly elected leader does. Conflicting records
 * (overlapping subnets, an address held twice) throw, naming the record.
 */
export function rebuildIpam(records: IpamState, options: IpamOptions = {}): Ipam {
  if (typeof records !== 'object' || records === null) throw new TypeError('records must be an object')
  if (!Array.isArray(records.subnets)) throw new TypeError('records.subnets must be an array')
  if (!Array.isArray(records.addresses)) throw new TypeError('records.addresses must be an array')
  const a = new IpamImpl(options)
  for (const r of records.subnets) a.allocateSubnet(r.network, { subnet: r.subnet, gateway: r.gateway })
  for (const r of records.addresses) a.allocateAddress(r.network, { address: r.address })
  a.settle()
  return a
}
