// The store's former names, kept so that code written against them still compiles. `MemoryStore` was the
// production replicated store, yet every other `Memory*` in swarmkit is a test double; `ClusterStore` says
// what it holds. These aliases go in a future major version.
import { ClusterStore, clusterStore } from './cluster-store.js'
import type { ClusterStoreOptions } from './store-types.js'

/**
 * The cluster store under its former name.
 *
 * @deprecated Use {@link ClusterStore}: the same class (`new MemoryStore()` builds a `ClusterStore`).
 */
export const MemoryStore = ClusterStore
/** @deprecated Use {@link ClusterStore}. */
export type MemoryStore = ClusterStore

/**
 * A new cluster store, under its former name.
 *
 * @deprecated Use {@link clusterStore}.
 */
export const memoryStore = clusterStore

/**
 * Options of the cluster store, under their former name.
 *
 * @deprecated Use {@link ClusterStoreOptions}.
 */
export type MemoryStoreOptions = ClusterStoreOptions
