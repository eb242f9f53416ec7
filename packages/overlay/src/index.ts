/**
 * @packageDocumentation
 * `@swarmkit/overlay` — swarm's overlay networking as a library.
 *
 * Control plane (pure, synchronous, deterministic): {@link ipam} (subnets from address pools, per-network
 * addresses, virtual IPs, IPv4 and IPv6, rebuilt exactly from the objects holding the addresses with
 * {@link rebuildIpam}), {@link vniAllocator} (VXLAN network identifiers 4096..2^24-1) and
 * {@link portAllocator} (published ports, one space per protocol, dynamic ones from 30000-32767).
 *
 * Data plane: the {@link NetworkDriver} interface with {@link linuxDriver} (bridges, VXLAN devices,
 * static forwarding and neighbour entries, network-namespace sandboxes, all through iproute2) and
 * {@link memoryDriver}, fed per node by {@link nodeDataPlane}; and {@link routingMesh}, which balances
 * connections round-robin over a service's healthy endpoints, as a userspace TCP and UDP proxy or (mode
 * `kernel`, root) as nftables NAT rules.
 *
 * Errors are {@link OverlayError} with a typed `code`.
 */

export {
  type EmbeddedResolver,
  type EmbeddedResolverOptions,
  embeddedResolver,
  type NameSource,
  type ResolverAttachment,
  type ResolverEvents,
  systemResolvers,
} from './dns-resolver.js'
export {
  DNS_TYPE,
  type DnsAnswer,
  DnsFormatError,
  type DnsHeader,
  type DnsQuery,
  type DnsQuestion,
  decodeHeader,
  decodeName,
  decodeQuery,
  encodeName,
  encodeResponse,
  RCODE,
} from './dns-wire.js'
export type {
  CallOptions,
  DataPlaneState,
  DesiredDataPlane,
  NetworkDriver,
  OverlayNetwork,
  Peer,
  PeerUpdate,
  Sandbox,
  SandboxEndpoint,
  SandboxSpec,
} from './driver.js'
export { isOverlayError, OverlayError, type OverlayErrorCode } from './errors.js'
export { INGRESS_SANDBOX, type IngressMesh, type IngressMeshOptions, ingressMesh } from './ingress.js'
export {
  type AddressPool,
  type AddressRecord,
  type AddressRequest,
  type Ipam,
  type IpamOptions,
  type IpamState,
  ipam,
  rebuildIpam,
  type SubnetRecord,
  type SubnetRequest,
} from './ipam.js'
export {
  type EncryptionKey,
  type IpsecDataPlane,
  type IpsecDataPlaneOptions,
  type IpsecPlan,
  type IpsecPlanInput,
  ipsecDataPlane,
  ipsecPlan,
  KEY_ROTATION_MS,
  type KeyRing,
  newKeyRing,
  rotateKeyRing,
  rotationDue,
  sendingKey,
  spiOf,
} from './ipsec.js'
export type { KernelMeshOptions, NftRunner } from './kernel-mesh.js'
export { type CommandRunner, checkLinuxDriver, type LinuxDriverOptions, linuxDriver } from './linux-driver.js'
export { macFor } from './mac.js'
export { type MemoryDriverOptions, type MemoryNetworkDriver, memoryDriver } from './memory-driver.js'
export {
  type CloseOptions,
  type MeshEndpoint,
  type MeshService,
  type RoutingMesh,
  type RoutingMeshEvents,
  type RoutingMeshMode,
  type RoutingMeshOptions,
  routingMesh,
} from './mesh.js'
export { type NetworkDb, type NetworkEndpoint, networkDb, type PeerDelta } from './network-db.js'
export { type ClusterView, nodeDataPlane } from './plan.js'
export {
  type PortAllocator,
  type PortAllocatorOptions,
  type PortConfig,
  type PortProtocol,
  type PublishMode,
  portAllocator,
} from './ports.js'
export {
  type DirectoryService,
  type DirectoryState,
  type DirectoryTask,
  type Resolution,
  type ServiceDirectory,
  serviceDirectory,
} from './service-directory.js'
export {
  type ServiceLoadBalancer,
  type ServiceLoadBalancerOptions,
  serviceLoadBalancer,
  type VipEntry,
  vipScript,
} from './service-lb.js'
export {
  type AttachTaskOptions,
  type SwarmNode,
  type SwarmNodeOptions,
  type SwarmView,
  swarmNode,
} from './swarm-node.js'
export { VNI_MAX, VNI_MIN, type VniAllocator, type VniAllocatorOptions, vniAllocator } from './vni.js'
