// Units, labels, object metadata, drivers, platforms and resources: the small types every table uses.

/** Integer nanoseconds, as in Docker's API (`20000000000` is 20 s). Safe as a JS number up to ~104 days. */
export type Nanoseconds = number
/** Milliseconds since the Unix epoch. */
export type Timestamp = number
/** String labels, as in Docker's API. */
export type Labels = Record<string, string>

/** Bookkeeping every stored object carries. */
export interface Meta {
  /** The store version (the raft index when replicated) of the object's last change; starts above 0. */
  version: number
  createdAt: Timestamp
  updatedAt: Timestamp
}

/** A driver reference with options: network driver, IPAM driver, log driver, secret/config driver. */
export interface Driver {
  name: string
  options?: Record<string, string>
}

/** An OS and CPU architecture (Docker's `Platform`). */
export interface Platform {
  /** `amd64`, `arm64`, `x86_64`, … as the engine reports it. */
  architecture: string
  /** `linux`, `windows`. */
  os: string
}

// ---------------------------------------------------------------------------------------------------------
// Resources

/** A generic (user-defined) resource: a named one (e.g. a GPU by UUID) or a discrete count (e.g. `SSD=3`). */
export type GenericResource =
  | { namedResourceSpec: { kind: string; value: string } }
  | { discreteResourceSpec: { kind: string; value: number } }

/** Resources a node offers, or a task reserves. */
export interface Resources {
  /** CPU in units of 1e-9 CPUs (`1500000000` is 1.5 CPUs). */
  nanoCPUs: number
  memoryBytes: number
  genericResources?: GenericResource[]
}

/** A limit; `pids` 0 means unlimited. */
export interface ResourceLimits {
  nanoCPUs: number
  memoryBytes: number
  pids?: number
}

/** Resource limits and reservations of a task (Docker's `ResourceRequirements`). */
export interface ResourceRequirements {
  limits?: ResourceLimits
  reservations?: Resources
}
