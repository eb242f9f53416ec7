/**
 * @packageDocumentation
 * @swarmkit/store: Docker Swarm's cluster state. The object model (nodes, services, tasks, networks, the
 * cluster, secrets, configs) following Docker's swarm API, with more to come: the transactional
 * `MemoryStore` with indexes and watches, replication as a raft state machine, and encryption at rest.
 */
export type { StoreErrorCode } from './errors.js'
export { isStoreError, LOCKED_MESSAGE, SEQUENCE_MESSAGE, StoreError } from './errors.js'
export { generateId, isId } from './ids.js'
export * from './types.js'
