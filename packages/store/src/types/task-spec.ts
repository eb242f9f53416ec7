// What a task runs (Docker's `TaskSpec` and the container spec inside it): shared by services, which
// hold it as their template, and tasks, which hold a copy.
import type { Driver, Labels, Nanoseconds, Platform, ResourceRequirements } from './common.js'

/** A secret or config exposed to the container as a file. */
export interface FileTarget {
  /** File name under `/run/secrets/` (secrets) or an absolute path (configs). */
  name: string
  uid: string
  gid: string
  /** Permission bits, e.g. `0o444` (292). */
  mode: number
}

/** A secret a task mounts, and how (Docker's `SecretReference`). */
export interface SecretReference {
  secretId: string
  secretName: string
  file: FileTarget
}

/** A config a task mounts, and how (Docker's `ConfigReference`). */
export interface ConfigReference {
  configId: string
  configName: string
  /** A file target; absent for a runtime config (e.g. a credential spec). */
  file?: FileTarget
  runtime?: Record<string, never>
}

/** The kinds of mount a container spec can ask for. */
export const MOUNT_TYPES = ['bind', 'volume', 'tmpfs', 'npipe', 'cluster'] as const
/** A mount's kind: `bind`, `volume`, `tmpfs`, `npipe` or `cluster`. */
export type MountType = (typeof MOUNT_TYPES)[number]

/** A mount of a container spec (Docker's `Mount`). */
export interface Mount {
  type: MountType
  source?: string
  target: string
  readOnly?: boolean
  consistency?: string
  bindOptions?: { propagation?: string; nonRecursive?: boolean }
  volumeOptions?: { noCopy?: boolean; labels?: Labels; driverConfig?: Driver }
  tmpfsOptions?: { sizeBytes?: number; mode?: number }
}

/** A container's health check (Docker's `HealthConfig`). */
export interface HealthConfig {
  /** `[]` inherits the image's check; `['NONE']` disables; `['CMD', …]` or `['CMD-SHELL', cmd]`. */
  test: string[]
  interval?: Nanoseconds
  timeout?: Nanoseconds
  retries?: number
  startPeriod?: Nanoseconds
  startInterval?: Nanoseconds
}

/** What a task's container runs (Docker's `ContainerSpec`). */
export interface ContainerSpec {
  /** Image reference, possibly pinned: `nginx:alpine@sha256:…`. */
  image: string
  labels?: Labels
  /** Entrypoint override (`--entrypoint`); the image's when absent. */
  command?: string[]
  /** Arguments (the CMD given to `docker service create`). */
  args?: string[]
  hostname?: string
  /** `KEY=value` strings. */
  env?: string[]
  /** Working directory. */
  dir?: string
  user?: string
  groups?: string[]
  init?: boolean
  tty?: boolean
  openStdin?: boolean
  readOnly?: boolean
  stopSignal?: string
  stopGracePeriod?: Nanoseconds
  healthcheck?: HealthConfig
  hosts?: string[]
  dnsConfig?: { nameservers?: string[]; search?: string[]; options?: string[] }
  mounts?: Mount[]
  secrets?: SecretReference[]
  configs?: ConfigReference[]
  isolation?: string
  sysctls?: Record<string, string>
  capabilityAdd?: string[]
  capabilityDrop?: string[]
  ulimits?: { name: string; soft: number; hard: number }[]
}

/** The conditions under which a task is restarted. */
export const RESTART_CONDITIONS = ['none', 'on-failure', 'any'] as const
/** When a task is restarted: `none`, `on-failure` or `any`. */
export type RestartCondition = (typeof RESTART_CONDITIONS)[number]

/** How and when a service's tasks are restarted (Docker's `RestartPolicy`). */
export interface RestartPolicy {
  condition: RestartCondition
  /** Delay between restart attempts (swarm's default 5 s). */
  delay?: Nanoseconds
  /** 0 means unlimited. */
  maxAttempts?: number
  /** Window in which attempts are counted; 0 means unbounded. */
  window?: Nanoseconds
}

/** `spread=node.labels.zone` is `{ spread: { spreadDescriptor: 'node.labels.zone' } }`. */
export interface PlacementPreference {
  spread: { spreadDescriptor: string }
}

/** Where a service's tasks may run: constraints, preferences, per-node limit, platforms (Docker's `Placement`). */
export interface Placement {
  /** `node.role==worker`, `node.labels.zone!=east`, … all must hold. */
  constraints?: string[]
  preferences?: PlacementPreference[]
  /** Maximum replicas of this service per node; 0 means unlimited. */
  maxReplicas?: number
  platforms?: Platform[]
}

/** A network a task attaches to. */
export interface NetworkAttachmentConfig {
  /** Network ID (the HTTP layer resolves names to IDs before storing). */
  target: string
  aliases?: string[]
  driverOpts?: Record<string, string>
}

/** The template each task of a service is created from (also the task's own spec). */
export interface TaskSpec {
  containerSpec: ContainerSpec
  resources?: ResourceRequirements
  restartPolicy?: RestartPolicy
  placement?: Placement
  networks?: NetworkAttachmentConfig[]
  logDriver?: Driver
  /** Bumped to force a redeploy with an unchanged spec (`docker service update --force`). */
  forceUpdate?: number
  runtime?: string
}
