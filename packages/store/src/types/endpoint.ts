// Published ports and endpoints: asked for in a service spec, allocated on the service and its tasks.

/** The protocols a published port can use. */
export const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const
/** `tcp`, `udp` or `sctp`. */
export type PortProtocol = (typeof PORT_PROTOCOLS)[number]

/** The ways a port can be published. */
export const PUBLISH_MODES = ['ingress', 'host'] as const
/** `ingress` (the routing mesh) or `host` (the node running the task). */
export type PublishMode = (typeof PUBLISH_MODES)[number]

/** A published port (Docker's `PortConfig`). */
export interface PortConfig {
  name?: string
  protocol: PortProtocol
  targetPort: number
  /** 0 in a spec means "allocate one" (ingress: 30000-32767). */
  publishedPort: number
  publishMode: PublishMode
}

/** The ways a service's endpoint resolves. */
export const ENDPOINT_MODES = ['vip', 'dnsrr'] as const
/** `vip` (one virtual IP) or `dnsrr` (DNS round robin). */
export type EndpointMode = (typeof ENDPOINT_MODES)[number]

/** How a service is reached: endpoint mode and published ports (Docker's `EndpointSpec`). */
export interface EndpointSpec {
  mode: EndpointMode
  ports?: PortConfig[]
}

/** The allocated endpoint: ports with published ports filled in, and a virtual IP per network (vip mode). */
export interface Endpoint {
  spec: EndpointSpec
  ports: PortConfig[]
  virtualIPs: { networkId: string; addr: string }[]
}
