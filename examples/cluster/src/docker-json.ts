// Mapping between the store's camelCase objects and the Docker Engine API's PascalCase JSON (API v1.50).
//
// Outgoing objects are converted generically (keys to PascalCase with Docker's acronyms, timestamps to
// RFC 3339, bytes to base64, label-like maps copied verbatim). Incoming specs are read field by field
// (`*FromDocker`): only what the store models is taken, every value is type-checked, and a bad value is
// an `ApiError` 400 naming the field.

import type {
  Config,
  ContainerSpec,
  EndpointSpec,
  Network,
  Node,
  NodeSpec,
  PortConfig,
  ResourceRequirements,
  RestartPolicy,
  Secret,
  Service,
  ServiceMode,
  ServiceSpec,
  Task,
  TaskSpec,
  UpdateConfig,
} from '@swarmkit/store'
import {
  containerExtrasFromDocker,
  genericResourcesFromDocker,
  taskExtrasFromDocker,
} from './container-spec-json.js'
import { ApiError } from './errors.js'

const ACRONYMS: Record<string, string> = {
  id: 'ID',
  nanoCPUs: 'NanoCPUs',
  dnsConfig: 'DNSConfig',
  tlsInfo: 'TLSInfo',
  virtualIPs: 'VirtualIPs',
  ipam: 'IPAM',
  caConfig: 'CAConfig',
  uid: 'UID',
  gid: 'GID',
  pid: 'PID',
  ipv6Enabled: 'EnableIPv6',
  tty: 'TTY',
  caCert: 'CACert',
  caCertHash: 'CACertHash',
  externalCAs: 'ExternalCAs',
  signingCACert: 'SigningCACert',
  fips: 'FIPS',
}

/** Keys whose values are user maps (their own keys are data, never renamed). */
const OPAQUE = new Set(['labels', 'options', 'driverOpts', 'driverAttachmentOpts', 'sysctls', 'reserved'])
/** Keys holding a timestamp (ms since the epoch in the store, RFC 3339 in the API). */
const TIMESTAMPS = new Set([
  'createdAt',
  'updatedAt',
  'timestamp',
  'startedAt',
  'completedAt',
  'lastExecution',
])

export function pascalKey(key: string): string {
  const special = ACRONYMS[key]
  if (special) return special
  const k = key.charAt(0).toUpperCase() + key.slice(1)
  return k.replace(/Id$/, 'ID').replace(/Ids$/, 'IDs')
}

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString()
}

/** Converts a store value to Docker's JSON shape. */
export function toDocker(value: unknown, key = ''): unknown {
  if (value === null || value === undefined) return value
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (typeof value === 'number' && TIMESTAMPS.has(key)) return rfc3339(value)
  if (Array.isArray(value)) return value.map((v) => toDocker(v))
  if (typeof value !== 'object') return value
  if (OPAQUE.has(key)) return { ...(value as Record<string, unknown>) }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue
    out[pascalKey(k)] = toDocker(v, k)
  }
  return out
}

// ------------------------------------------------------------------------------------------------------
// Outgoing objects

function meta(o: { id: string; meta: { version: number; createdAt: number; updatedAt: number } }) {
  return {
    ID: o.id,
    Version: { Index: o.meta.version },
    CreatedAt: rfc3339(o.meta.createdAt),
    UpdatedAt: rfc3339(o.meta.updatedAt),
  }
}

/** Docker's ServiceSpec: `Replicas` always present for replicated services, ContainerSpec never null. */
export function serviceSpecToDocker(spec: ServiceSpec): Record<string, unknown> {
  const out = toDocker(spec) as Record<string, unknown>
  out.Labels ??= {}
  return out
}

const SECOND = 1e9
const DEFAULT_UPDATE_CONFIG = {
  parallelism: 1,
  failureAction: 'pause',
  monitor: 5 * SECOND,
  order: 'stop-first',
} as const

/**
 * The spec with swarm's defaults filled in where the user left a field out, as the daemon answers
 * `GET /services/{id}?insertDefaults=true` (what `docker service inspect` asks for): update and rollback
 * config, restart policy, placement, resources, and the container's stop grace period and DNS config.
 */
export function withServiceDefaults(spec: ServiceSpec): ServiceSpec {
  const t = spec.taskTemplate
  return {
    ...spec,
    taskTemplate: {
      ...t,
      containerSpec: {
        ...t.containerSpec,
        stopGracePeriod: t.containerSpec.stopGracePeriod ?? 10 * SECOND,
        dnsConfig: t.containerSpec.dnsConfig ?? {},
      },
      resources: t.resources ?? {},
      restartPolicy: {
        ...(t.restartPolicy ?? { condition: 'any' }),
        delay: t.restartPolicy?.delay ?? 5 * SECOND,
      },
      placement: t.placement ?? {},
    },
    // Jobs are never rolled out: they have no update config (swarm refuses one).
    ...('replicatedJob' in spec.mode || 'globalJob' in spec.mode
      ? {}
      : {
          updateConfig: { ...DEFAULT_UPDATE_CONFIG, ...spec.updateConfig },
          rollbackConfig: { ...DEFAULT_UPDATE_CONFIG, ...spec.rollbackConfig },
        }),
  }
}

export function serviceToDocker(
  s: Service,
  status?: { running: number; desired: number; completed: number },
  options: { insertDefaults?: boolean } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...meta(s),
    Spec: serviceSpecToDocker(options.insertDefaults ? withServiceDefaults(s.spec) : s.spec),
  }
  if (s.previousSpec) out.PreviousSpec = serviceSpecToDocker(s.previousSpec)
  out.Endpoint = s.endpoint
    ? toDocker(s.endpoint)
    : { Spec: toDocker(s.spec.endpointSpec ?? { mode: 'vip' }), Ports: [], VirtualIPs: [] }
  if (s.updateStatus) out.UpdateStatus = toDocker(s.updateStatus)
  if (s.jobStatus) out.JobStatus = toDocker(s.jobStatus)
  if (status) {
    out.ServiceStatus = {
      RunningTasks: status.running,
      DesiredTasks: status.desired,
      CompletedTasks: status.completed,
    }
  }
  return out
}

export function taskToDocker(t: Task): Record<string, unknown> {
  const { id: _id, meta: _meta, specVersion, ...rest } = t
  const body = toDocker(rest) as Record<string, unknown>
  // The store keeps the service's name in `serviceAnnotations`; Docker has no such field.
  delete body.ServiceAnnotations
  return {
    ...meta(t),
    ...body,
    Spec: toDocker(t.spec),
    Labels: t.labels ?? {},
    ...(specVersion ? { SpecVersion: { Index: specVersion.index } } : {}),
    NetworksAttachments: t.networks.map((n) => ({ Network: { ID: n.networkId }, Addresses: n.addresses })),
  }
}

/**
 * Each node's Docker form, kept while the node object is the same (store objects are immutable: a change is
 * a new object). `node ls` of a thousand nodes, polled, rebuilt every one of them each time: half a second
 * of a manager's event loop per call at 1,000 nodes under load (issue #18). Callers must not change it.
 */
const nodeJson = new WeakMap<Node, Record<string, unknown>>()

export function nodeToDocker(n: Node): Record<string, unknown> {
  let out = nodeJson.get(n)
  if (!out) nodeJson.set(n, (out = buildNodeJson(n)))
  return out
}

const nodeText = new WeakMap<Node, string>()

/**
 * {@link nodeToDocker} serialized, kept with the node object like it: `node ls` at 5,000 nodes serialized 5 MB
 * of JSON per request, in one call that held a manager's event loop for 250-570 ms under load.
 */
export function nodeJsonText(n: Node): string {
  let out = nodeText.get(n)
  if (out === undefined) nodeText.set(n, (out = JSON.stringify(nodeToDocker(n))))
  return out
}

function buildNodeJson(n: Node): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...meta(n),
    Spec: toDocker(n.spec),
    Description: toDocker(n.description ?? { hostname: '' }),
    Status: toDocker(n.status),
  }
  if (n.managerStatus) {
    out.ManagerStatus = {
      Leader: n.managerStatus.leader,
      Reachability: n.managerStatus.reachability,
      Addr: n.managerStatus.addr,
    }
  }
  return out
}

export function networkToDocker(n: Network): Record<string, unknown> {
  const ipam = n.ipam ?? n.spec.ipam
  return {
    Name: n.spec.name,
    Id: n.id,
    Created: rfc3339(n.meta.createdAt),
    Scope: 'swarm',
    Driver: n.driverState?.name ?? n.spec.driverConfig?.name ?? 'overlay',
    EnableIPv4: true,
    EnableIPv6: n.spec.ipv6Enabled ?? false,
    IPAM: {
      Driver: ipam?.driver.name ?? 'default',
      Options: ipam?.driver.options ?? null,
      Config: (ipam?.configs ?? []).map((c) => ({ Subnet: c.subnet, Gateway: c.gateway ?? '' })),
    },
    Internal: n.spec.internal ?? false,
    Attachable: n.spec.attachable ?? false,
    Ingress: n.spec.ingress ?? false,
    ConfigFrom: { Network: n.spec.configFrom ?? '' },
    ConfigOnly: false,
    Containers: {},
    Options: {
      ...(n.driverState?.options ?? {}),
      ...(n.vni !== undefined ? { 'com.docker.network.driver.overlay.vxlanid_list': String(n.vni) } : {}),
    },
    Labels: n.spec.labels,
  }
}

export function configToDocker(c: Config): Record<string, unknown> {
  return {
    ...meta(c),
    Spec: { Name: c.spec.name, Labels: c.spec.labels, Data: Buffer.from(c.spec.data).toString('base64') },
  }
}

export function secretToDocker(s: Secret): Record<string, unknown> {
  return {
    ...meta(s),
    Spec: {
      Name: s.spec.name,
      Labels: s.spec.labels,
      ...(s.spec.driver ? { Driver: toDocker(s.spec.driver) } : {}),
    },
  }
}

// ------------------------------------------------------------------------------------------------------
// Incoming specs

type Json = Record<string, unknown>

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

export function bad(field: string, what: string): ApiError {
  return new ApiError(400, `invalid ${field}: ${what}`)
}

export function obj(v: unknown, field: string): Json | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObj(v)) throw bad(field, 'expected an object')
  return v
}

export function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw bad(field, 'expected a string')
  if (v.length > 65536) throw bad(field, 'too long')
  return v
}

export function int(v: unknown, field: string, min = 0): number | undefined {
  if (v === undefined || v === null) return undefined
  if (!Number.isSafeInteger(v) || (v as number) < min) throw bad(field, `expected an integer >= ${min}`)
  return v as number
}

export function strings(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || v.length > 4096 || v.some((s) => typeof s !== 'string'))
    throw bad(field, 'expected a list of strings')
  return v as string[]
}

export function labels(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {}
  if (!isObj(v)) throw bad(field, 'expected an object of strings')
  const out: Record<string, string> = {}
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw bad(`${field}.${k}`, 'expected a string')
    out[k] = s
  }
  return out
}

function oneOf<T extends string>(v: unknown, list: readonly T[], field: string): T | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string' || !list.includes(v as T)) throw bad(field, `expected one of ${list.join(', ')}`)
  return v as T
}

/** Drops `undefined` members so that objects compare and store cleanly. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o)) if ((o as Json)[k] === undefined) delete (o as Json)[k]
  return o
}

function containerSpecFromDocker(v: unknown): ContainerSpec {
  const c = obj(v, 'TaskTemplate.ContainerSpec')
  const image = str(c?.Image, 'ContainerSpec.Image')
  if (!c || !image) throw bad('ContainerSpec.Image', 'an image is required')
  const secrets = c.Secrets === undefined || c.Secrets === null ? undefined : c.Secrets
  if (secrets !== undefined && !Array.isArray(secrets)) throw bad('ContainerSpec.Secrets', 'expected a list')
  const configs = c.Configs === undefined || c.Configs === null ? undefined : c.Configs
  if (configs !== undefined && !Array.isArray(configs)) throw bad('ContainerSpec.Configs', 'expected a list')
  return clean({
    image,
    configs: configs?.map((x, i) => {
      const r = obj(x, `ContainerSpec.Configs[${i}]`) ?? {}
      const f = obj(r.File, `ContainerSpec.Configs[${i}].File`)
      const configId = str(r.ConfigID, 'ConfigID')
      const configName = str(r.ConfigName, 'ConfigName')
      if (!configId || !configName)
        throw bad(`ContainerSpec.Configs[${i}]`, 'ConfigID and ConfigName are required')
      return {
        configId,
        configName,
        ...(f
          ? {
              file: {
                name: str(f.Name, 'File.Name') || `/${configName}`,
                uid: str(f.UID, 'File.UID') ?? '0',
                gid: str(f.GID, 'File.GID') ?? '0',
                mode: int(f.Mode, 'File.Mode') ?? 0o444,
              },
            }
          : { runtime: {} }),
      }
    }),
    labels: c.Labels ? labels(c.Labels, 'ContainerSpec.Labels') : undefined,
    command: strings(c.Command, 'ContainerSpec.Command'),
    args: strings(c.Args, 'ContainerSpec.Args'),
    hostname: str(c.Hostname, 'ContainerSpec.Hostname') || undefined,
    env: strings(c.Env, 'ContainerSpec.Env'),
    dir: str(c.Dir, 'ContainerSpec.Dir') || undefined,
    user: str(c.User, 'ContainerSpec.User') || undefined,
    init: typeof c.Init === 'boolean' ? c.Init : undefined,
    tty: typeof c.TTY === 'boolean' ? c.TTY : undefined,
    stopGracePeriod: int(c.StopGracePeriod, 'ContainerSpec.StopGracePeriod'),
    ...containerExtrasFromDocker(c),
    secrets: secrets?.map((s, i) => {
      const r = obj(s, `ContainerSpec.Secrets[${i}]`) ?? {}
      const f = obj(r.File, `ContainerSpec.Secrets[${i}].File`) ?? {}
      const secretId = str(r.SecretID, 'SecretID')
      const secretName = str(r.SecretName, 'SecretName')
      if (!secretId || !secretName)
        throw bad(`ContainerSpec.Secrets[${i}]`, 'SecretID and SecretName are required')
      return {
        secretId,
        secretName,
        file: {
          name: str(f.Name, 'File.Name') || secretName,
          uid: str(f.UID, 'File.UID') ?? '0',
          gid: str(f.GID, 'File.GID') ?? '0',
          mode: int(f.Mode, 'File.Mode') ?? 0o444,
        },
      }
    }),
  })
}

function restartPolicyFromDocker(v: unknown): RestartPolicy | undefined {
  const r = obj(v, 'RestartPolicy')
  if (!r) return undefined
  return clean({
    condition: oneOf(r.Condition, ['none', 'on-failure', 'any'] as const, 'RestartPolicy.Condition') ?? 'any',
    delay: int(r.Delay, 'RestartPolicy.Delay'),
    maxAttempts: int(r.MaxAttempts, 'RestartPolicy.MaxAttempts'),
    window: int(r.Window, 'RestartPolicy.Window'),
  })
}

function resourcesFromDocker(v: unknown): ResourceRequirements | undefined {
  const r = obj(v, 'TaskTemplate.Resources')
  if (!r) return undefined
  const l = obj(r.Limits, 'Resources.Limits')
  const res = obj(r.Reservations, 'Resources.Reservations')
  const limits = l
    ? clean({
        nanoCPUs: int(l.NanoCPUs, 'Limits.NanoCPUs') ?? 0,
        memoryBytes: int(l.MemoryBytes, 'Limits.MemoryBytes') ?? 0,
        pids: int(l.Pids, 'Limits.Pids') || undefined,
      })
    : undefined
  const reservations = res
    ? {
        nanoCPUs: int(res.NanoCPUs, 'Reservations.NanoCPUs') ?? 0,
        memoryBytes: int(res.MemoryBytes, 'Reservations.MemoryBytes') ?? 0,
        ...clean({
          genericResources: genericResourcesFromDocker(res.GenericResources, 'Reservations.GenericResources'),
        }),
      }
    : undefined
  const out = clean({
    limits: limits && (limits.nanoCPUs || limits.memoryBytes || limits.pids) ? limits : undefined,
    reservations:
      reservations && (reservations.nanoCPUs || reservations.memoryBytes || reservations.genericResources)
        ? reservations
        : undefined,
  })
  return Object.keys(out).length > 0 ? out : undefined
}

function taskSpecFromDocker(v: unknown): TaskSpec {
  const t = obj(v, 'TaskTemplate')
  if (!t) throw bad('TaskTemplate', 'required')
  const p = obj(t.Placement, 'TaskTemplate.Placement')
  const nets = t.Networks === undefined || t.Networks === null ? undefined : t.Networks
  if (nets !== undefined && !Array.isArray(nets)) throw bad('TaskTemplate.Networks', 'expected a list')
  const placement = p
    ? clean({
        constraints: strings(p.Constraints, 'Placement.Constraints'),
        preferences: Array.isArray(p.Preferences)
          ? p.Preferences.map((x, i) => {
              const sd = str(
                obj(obj(x, `Preferences[${i}]`)?.Spread, 'Spread')?.SpreadDescriptor,
                'SpreadDescriptor',
              )
              if (!sd) throw bad(`Placement.Preferences[${i}]`, 'expected Spread.SpreadDescriptor')
              return { spread: { spreadDescriptor: sd } }
            })
          : undefined,
        maxReplicas: int(p.MaxReplicas, 'Placement.MaxReplicas') || undefined,
        platforms: Array.isArray(p.Platforms)
          ? p.Platforms.map((x, i) => {
              const pl = obj(x, `Platforms[${i}]`) ?? {}
              return {
                architecture: str(pl.Architecture, 'Platform.Architecture') ?? '',
                os: str(pl.OS, 'Platform.OS') ?? '',
              }
            })
          : undefined,
      })
    : undefined
  return clean({
    containerSpec: containerSpecFromDocker(t.ContainerSpec),
    resources: resourcesFromDocker(t.Resources),
    restartPolicy: restartPolicyFromDocker(t.RestartPolicy),
    placement: placement && Object.keys(placement).length > 0 ? placement : undefined,
    networks: nets?.map((n, i) => {
      const target = str(obj(n, `Networks[${i}]`)?.Target, `Networks[${i}].Target`)
      if (!target) throw bad(`TaskTemplate.Networks[${i}].Target`, 'required')
      const aliases = strings((n as Json).Aliases, `Networks[${i}].Aliases`)
      return clean({ target, aliases })
    }),
    forceUpdate: int(t.ForceUpdate, 'TaskTemplate.ForceUpdate') || undefined,
    ...taskExtrasFromDocker(t),
  })
}

function modeFromDocker(v: unknown): ServiceMode {
  const m = obj(v, 'Mode')
  if (!m || m.Replicated !== undefined) {
    const r = obj(m?.Replicated, 'Mode.Replicated')
    return { replicated: { replicas: int(r?.Replicas, 'Mode.Replicated.Replicas') ?? 1 } }
  }
  if (m.Global !== undefined) return { global: {} }
  if (m.ReplicatedJob !== undefined) {
    // The API's defaults: max concurrent 1, total completions = max concurrent.
    const j = obj(m.ReplicatedJob, 'Mode.ReplicatedJob')
    const maxConcurrent = int(j?.MaxConcurrent, 'Mode.ReplicatedJob.MaxConcurrent') || 1
    const totalCompletions = int(j?.TotalCompletions, 'Mode.ReplicatedJob.TotalCompletions') ?? maxConcurrent
    return { replicatedJob: { maxConcurrent, totalCompletions } }
  }
  if (m.GlobalJob !== undefined) return { globalJob: {} }
  throw new ApiError(400, 'unrecognized service mode')
}

function updateConfigFromDocker(v: unknown, field: string): UpdateConfig | undefined {
  const u = obj(v, field)
  if (!u) return undefined
  return clean({
    parallelism: int(u.Parallelism, `${field}.Parallelism`) ?? 1,
    delay: int(u.Delay, `${field}.Delay`),
    failureAction: oneOf(
      u.FailureAction,
      ['pause', 'continue', 'rollback'] as const,
      `${field}.FailureAction`,
    ),
    monitor: int(u.Monitor, `${field}.Monitor`) || undefined,
    maxFailureRatio: typeof u.MaxFailureRatio === 'number' ? u.MaxFailureRatio : undefined,
    order: oneOf(u.Order, ['stop-first', 'start-first'] as const, `${field}.Order`),
  })
}

function endpointSpecFromDocker(v: unknown): EndpointSpec | undefined {
  const e = obj(v, 'EndpointSpec')
  if (!e) return undefined
  const ports = e.Ports === undefined || e.Ports === null ? [] : e.Ports
  if (!Array.isArray(ports)) throw bad('EndpointSpec.Ports', 'expected a list')
  return {
    mode: oneOf(e.Mode, ['vip', 'dnsrr'] as const, 'EndpointSpec.Mode') ?? 'vip',
    ports: ports.map((p, i): PortConfig => {
      const o = obj(p, `EndpointSpec.Ports[${i}]`) ?? {}
      const targetPort = int(o.TargetPort, 'TargetPort', 1)
      if (targetPort === undefined || targetPort > 65535)
        throw bad('EndpointSpec.Ports.TargetPort', '1-65535')
      const publishedPort = int(o.PublishedPort, 'PublishedPort') ?? 0
      if (publishedPort > 65535) throw bad('EndpointSpec.Ports.PublishedPort', '0-65535')
      return clean({
        name: str(o.Name, 'Name') || undefined,
        protocol: oneOf(o.Protocol, ['tcp', 'udp', 'sctp'] as const, 'Protocol') ?? 'tcp',
        targetPort,
        publishedPort,
        publishMode: oneOf(o.PublishMode, ['ingress', 'host'] as const, 'PublishMode') ?? 'ingress',
      })
    }),
  }
}

/** A `ServiceSpec` from the body of `POST /services/create` or `/services/{id}/update`. */
export function serviceSpecFromDocker(body: unknown): ServiceSpec {
  const b = obj(body, 'body')
  if (!b) throw bad('body', 'expected a service spec')
  const name = str(b.Name, 'Name')
  if (!name) throw new ApiError(400, 'a service name is required')
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name))
    throw new ApiError(400, `invalid name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`)
  return clean({
    name,
    labels: labels(b.Labels, 'Labels'),
    taskTemplate: taskSpecFromDocker(b.TaskTemplate),
    mode: modeFromDocker(b.Mode),
    updateConfig: updateConfigFromDocker(b.UpdateConfig, 'UpdateConfig'),
    rollbackConfig: updateConfigFromDocker(b.RollbackConfig, 'RollbackConfig'),
    endpointSpec: endpointSpecFromDocker(b.EndpointSpec),
  })
}

/** A `NodeSpec` from the body of `POST /nodes/{id}/update`. */
export function nodeSpecFromDocker(body: unknown): NodeSpec {
  const b = obj(body, 'body') ?? {}
  const role = oneOf(b.Role, ['worker', 'manager'] as const, 'Role')
  const availability = oneOf(b.Availability, ['active', 'pause', 'drain'] as const, 'Availability')
  if (!role || !availability) throw new ApiError(400, 'a node spec needs Role and Availability')
  return clean({
    name: str(b.Name, 'Name') || undefined,
    labels: labels(b.Labels, 'Labels'),
    role,
    availability,
  })
}
