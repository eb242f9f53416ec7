// The addresses held on the overlay networks, kept in memory by the leader's task-address allocator and
// changed per store event (as swarm's allocator keeps its IPAM state), instead of an IPAM rebuilt from every
// task, service and node for each pass (issue #18: at 150,000 tasks a rebuild held a new leader's event loop
// for seconds). Each holder (a task, a service's VIPs, a node's attachments) says what it holds; an address
// is held in the IPAM while anyone holds it. Two holders of one address (a duplicate written by an older
// allocator) are tolerated: the address stays held until both let go. Addresses the IPAM cannot hold (an
// unknown network, outside the subnets, the gateway) are counted but never given out anyway.

import { type Ipam, ipam, type SubnetRecord } from '@swarmkit/overlay'
import { addressKey as storeAddressKey } from '@swarmkit/store'

/** One address a holder holds: `network`, and the address with or without its prefix length. */
export interface HeldAddress {
  network: string
  address: string
}

/** `network address` (no prefix length): one address on one network. */
export type AddressKey = string

/** A network's ID and an address on it without its prefix length: the key the store indexes holders by. */
export const addressKey: (network: string, address: string) => AddressKey = storeAddressKey

const NONE: readonly AddressKey[] = []

/** Who holds addresses: a task, a service (its VIPs) or a node (its attachments). */
export type HolderKind = 'task' | 'service' | 'node'

export class AddressBook {
  readonly #ipam: Ipam
  /** Holders and reservations per address; an address is in the IPAM while its count is above zero. */
  readonly #count = new Map<AddressKey, number>()
  /** Counted addresses the IPAM refused to hold (see the module comment): nothing to release there. */
  readonly #outside = new Set<AddressKey>()
  /** What each holder holds, by kind (a task, a service's VIPs, a node's attachments) and ID. */
  readonly #held: Readonly<Record<HolderKind, Map<string, readonly AddressKey[]>>> = {
    task: new Map(),
    service: new Map(),
    node: new Map(),
  }
  /** How many addresses went back to the IPAM so far (an exhausted network may have room again). */
  released = 0

  /** Subnets that overlap one already taken are left out (`onRefused` says which). */
  constructor(subnets: readonly SubnetRecord[], onRefused?: (subnet: SubnetRecord, err: Error) => void) {
    this.#ipam = ipam()
    for (const s of subnets) {
      try {
        this.#ipam.allocateSubnet(s.network, { subnet: s.subnet, gateway: s.gateway })
      } catch (err) {
        onRefused?.(s, err as Error)
      }
    }
  }

  /** Holder `id` of `kind` now holds exactly `addresses` (an empty list: nothing); the IPAM follows. */
  hold(kind: HolderKind, id: string, addresses: readonly HeldAddress[]): void {
    const held = this.#held[kind]
    const before = held.get(id) ?? NONE
    if (addresses.length === 0 && before.length === 0) return
    const now: AddressKey[] = []
    for (const a of addresses) {
      const k = addressKey(a.network, a.address)
      if (!now.includes(k)) now.push(k)
    }
    for (const k of now) if (!before.includes(k)) this.#increment(k)
    for (const k of before) if (!now.includes(k)) this.#decrement(k)
    if (now.length === 0) held.delete(id)
    else held.set(id, now)
  }

  /**
   * Takes the next free address on `network` for a write that has not committed yet: the caller gives it
   * back with {@link unreserve} once the write either failed or committed (and its holder was counted).
   * Throws the IPAM's error (`NOT_FOUND`, `POOL_EXHAUSTED`).
   */
  reserve(network: string): string {
    const address = this.#ipam.allocateAddress(network)
    this.#count.set(addressKey(network, address), 1)
    return address
  }

  unreserve(key: AddressKey): void {
    this.#decrement(key)
  }

  /** Every address counted as held (holders and reservations), for checks. */
  keys(): IterableIterator<AddressKey> {
    return this.#count.keys()
  }

  /** Restarts the IPAM's next-fit after the highest held address (after a rebuild, as `rebuildIpam` does). */
  settle(): void {
    this.#ipam.settle()
  }

  #increment(k: AddressKey): void {
    const n = this.#count.get(k) ?? 0
    this.#count.set(k, n + 1)
    if (n > 0) return
    const space = k.indexOf(' ')
    try {
      this.#ipam.allocateAddress(k.slice(0, space), { address: k.slice(space + 1) })
    } catch {
      this.#outside.add(k)
    }
  }

  #decrement(k: AddressKey): void {
    const n = this.#count.get(k)
    if (n === undefined) return
    if (n > 1) {
      this.#count.set(k, n - 1)
      return
    }
    this.#count.delete(k)
    if (this.#outside.delete(k)) return
    const space = k.indexOf(' ')
    this.#ipam.releaseAddress(k.slice(0, space), k.slice(space + 1))
    this.released++
  }
}
