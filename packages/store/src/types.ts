/**
 * The cluster object model: nodes, services, tasks, networks, the cluster, secrets and configs.
 *
 * Field names are the camelCase forms of Docker's swarm API (Engine API v1.50) so that an HTTP layer can map
 * them to Docker's PascalCase JSON one to one, without loss. Units follow Docker's API: durations are integer
 * nanoseconds ({@link Nanoseconds}), CPU is in units of 1e-9 CPUs, memory in bytes. Timestamps are
 * milliseconds since the Unix epoch ({@link Timestamp}); the HTTP layer renders them as RFC 3339.
 *
 * Objects held by the store are never mutated in place: read an object, build a changed copy, write it back
 * with the `meta.version` you read ("update out of sequence" otherwise).
 */
// One module per table under ./types/ (plus the shared task spec, endpoints and common units); this file
// keeps the table map that ties them together.
import type { Cluster } from './types/cluster.js'
import type { Config } from './types/config.js'
import type { Network } from './types/network.js'
import type { Node } from './types/node.js'
import type { Secret } from './types/secret.js'
import type { Service } from './types/service.js'
import type { Task } from './types/task.js'

export * from './types/cluster.js'
export * from './types/common.js'
export * from './types/config.js'
export * from './types/endpoint.js'
export * from './types/network.js'
export * from './types/node.js'
export * from './types/secret.js'
export * from './types/service.js'
export * from './types/task.js'
export * from './types/task-spec.js'

/** The tables of the store. */
export const TABLES = ['nodes', 'services', 'tasks', 'networks', 'clusters', 'secrets', 'configs'] as const
/** The name of one of the store's tables (`nodes`, `services`, `tasks`, …). */
export type Table = (typeof TABLES)[number]

/** The object type stored in each table. */
export interface TableObjects {
  nodes: Node
  services: Service
  tasks: Task
  networks: Network
  clusters: Cluster
  secrets: Secret
  configs: Config
}

/** Any object the store holds. */
export type StoreObject = TableObjects[Table]
