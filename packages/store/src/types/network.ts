// The `networks` table: a network's spec and what the allocator filled in (driver state, IPAM, VNI).
import type { Driver, Labels, Meta } from './common.js'

/** One subnet of a network, with its gateway and range (Docker's `IPAMConfig`). */
export interface IPAMConfig {
  family?: 'ipv4' | 'ipv6'
  /** CIDR, e.g. `10.0.1.0/24`. */
  subnet: string
  /** Sub-range to allocate from (CIDR). */
  range?: string
  gateway?: string
  /** Reserved addresses (name -> address). */
  reserved?: Record<string, string>
}

/** A network's IP address management: driver and subnets (Docker's `IPAMOptions`). */
export interface IPAMOptions {
  driver: Driver
  configs: IPAMConfig[]
}

/** What an operator asks a network to be (Docker's `NetworkSpec`). */
export interface NetworkSpec {
  name: string
  labels: Labels
  /** `overlay` by default for swarm networks. */
  driverConfig?: Driver
  ipv6Enabled?: boolean
  internal?: boolean
  attachable?: boolean
  /** The routing-mesh network (`ingress`); there is at most one. */
  ingress?: boolean
  /** Requested IPAM; the allocated form is `Network.ipam`. */
  ipam?: IPAMOptions
  /** Name of a config-only network this one takes its configuration from. */
  configFrom?: string
}

/** A cluster network (Docker's `Network`): its spec, driver state and IPAM. */
export interface Network {
  id: string
  meta: Meta
  spec: NetworkSpec
  /** The driver as allocated, with its runtime options. */
  driverState?: Driver
  /** The VXLAN network identifier (4096 .. 2^24-1) allocated to an overlay network. */
  vni?: number
  /** IPAM as allocated (subnets and gateways filled in). */
  ipam?: IPAMOptions
  pendingDelete?: boolean
}
