import { OverlayError } from './errors.js'
import { Bitmap } from './internal/bitmap.js'

/** The VXLAN network identifier space: 24 bits; swarm allocates from 4096 up, below that is for users. */
export const VNI_MIN = 4096
/** The largest VXLAN network identifier (24 bits). */
export const VNI_MAX = 2 ** 24 - 1

/** The VNI range a {@link vniAllocator} hands out dynamically. */
export interface VniAllocatorOptions {
  /** First VNI handed out dynamically. Default 4096. */
  min?: number
  /** Last VNI handed out dynamically. Default 2^24-1. */
  max?: number
}

/** Hands out VXLAN network identifiers (lowest free first) and reserves user-given ones. */
export interface VniAllocator {
  /** Allocates a VNI for `network`; `POOL_EXHAUSTED` when the range is used up. */
  allocate(network: string): number
  /** Reserves a user-given (or restored) VNI, 1..2^24-1; `IN_USE` names the network holding it. */
  reserve(network: string, vni: number): void
  /** Releases a VNI; `NOT_ALLOCATED` if nobody held it. */
  release(vni: number): void
  /** The network holding `vni`, if any. */
  holder(vni: number): string | undefined
  /** Every held VNI with its network, ascending. */
  state(): Array<{ network: string; vni: number }>
}

function checkVni(vni: unknown, name: string): number {
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 1 || vni > VNI_MAX)
    throw new RangeError(`${name} must be an integer in 1..${VNI_MAX}`)
  return vni
}

class VniAllocatorImpl implements VniAllocator {
  private readonly owners = new Map<number, string>()
  private readonly min: number
  private readonly max: number
  private readonly low: Bitmap

  constructor(options: VniAllocatorOptions) {
    this.min = checkVni(options.min ?? VNI_MIN, 'options.min')
    this.max = checkVni(options.max ?? VNI_MAX, 'options.max')
    if (this.max < this.min) throw new RangeError('options.max must be >= options.min')
    // The bitmap covers the dynamic range only; reservations outside it are tracked by owners alone.
    this.low = new Bitmap(this.max - this.min + 1)
  }

  allocate(network: string): number {
    checkNetwork(network)
    const i = this.low.lowest()
    if (i < 0)
      throw new OverlayError('POOL_EXHAUSTED', `no VXLAN network identifier left in ${this.min}..${this.max}`)
    const vni = this.min + i
    this.owners.set(vni, network)
    return vni
  }

  reserve(network: string, vni: number): void {
    checkNetwork(network)
    checkVni(vni, 'vni')
    const held = this.owners.get(vni)
    if (held !== undefined)
      throw new OverlayError('IN_USE', `VXLAN network identifier ${vni} is in use by network ${held}`, {
        holder: held,
      })
    if (vni >= this.min && vni <= this.max) this.low.set(vni - this.min)
    this.owners.set(vni, network)
  }

  release(vni: number): void {
    checkVni(vni, 'vni')
    if (!this.owners.delete(vni))
      throw new OverlayError('NOT_ALLOCATED', `VXLAN network identifier ${vni} is not allocated`)
    if (vni >= this.min && vni <= this.max) this.low.clear(vni - this.min)
  }

  holder(vni: number): string | undefined {
    checkVni(vni, 'vni')
    return this.owners.get(vni)
  }

  state(): Array<{ network: string; vni: number }> {
    return [...this.owners].sort((a, b) => a[0] - b[0]).map(([vni, network]) => ({ network, vni }))
  }
}

function checkNetwork(network: unknown): void {
  if (typeof network !== 'string' || network.length === 0 || network.length > 256)
    throw new TypeError('network must be a non-empty string of at most 256 characters')
}

/** Creates a VNI allocator over 4096..2^24-1 (configurable). */
export function vniAllocator(options: VniAllocatorOptions = {}): VniAllocator {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  return new VniAllocatorImpl(options)
}
