// A task's container as the Engine API creates it (`POST /containers/create`), the way swarm's container
// adapter builds it: swarm's labels and name, the container spec (command, env, user, mounts, healthcheck,
// stop signal, capabilities, ulimits, sysctls, DNS, hosts, init, log driver), resource limits, generic
// resources as `DOCKER_RESOURCE_*` variables, secrets and configs as read-only file mounts, and no network
// (the node gives the container its sandbox after it starts). Swarm's templates (`{{.Task.Name}}`, …) are
// expanded in the hostname, env and mount sources.

import type { ContainerSpec, GenericResource, Mount } from '@swarmkit/store'
import type { Assignment } from './dispatcher.js'

/** The labels swarm puts on every task container. */
export const SWARM_LABELS = {
  nodeId: 'com.docker.swarm.node.id',
  serviceId: 'com.docker.swarm.service.id',
  serviceName: 'com.docker.swarm.service.name',
  task: 'com.docker.swarm.task',
  taskId: 'com.docker.swarm.task.id',
  taskName: 'com.docker.swarm.task.name',
} as const

/** `web.1.<task id>` for a replicated task, `web.<node id>.<task id>` for a global one. */
export function taskName(task: Assignment): string {
  return `${task.serviceName}.${task.slot || task.nodeId}.${task.taskId}`
}

/** A secret or config file written on the node's tmpfs, to mount into the container. */
export interface MountedFile {
  /** Where it is on the node (a tmpfs). */
  readonly source: string
  /** Where the container sees it. */
  readonly target: string
}

/** The default stop grace period (swarm's 10 s). */
export const DEFAULT_STOP_GRACE_NS = 10e9

/** Swarm's template fields for a task (hostname, env and mount sources may use them). */
export function expandTemplate(text: string, task: Assignment, nodeHostname: string): string {
  if (!text.includes('{{')) return text
  const fields: Record<string, string> = {
    '.Service.ID': task.serviceId,
    '.Service.Name': task.serviceName,
    '.Node.ID': task.nodeId,
    '.Node.Hostname': nodeHostname,
    '.Task.ID': task.taskId,
    '.Task.Name': taskName(task),
    '.Task.Slot': String(task.slot || task.nodeId),
  }
  return text.replace(/\{\{\s*(\.[A-Za-z.]+)\s*\}\}/g, (all, field: string) => fields[field] ?? all)
}

/** The body of `POST /containers/create` for `task`. */
export function containerConfig(
  task: Assignment,
  options: { nodeHostname: string; files: readonly MountedFile[] },
): Record<string, unknown> {
  const c: ContainerSpec = task.spec.containerSpec
  const t = (s: string) => expandTemplate(s, task, options.nodeHostname)
  const labels: Record<string, string> = {
    ...(c.labels ?? {}),
    [SWARM_LABELS.nodeId]: task.nodeId,
    [SWARM_LABELS.serviceId]: task.serviceId,
    [SWARM_LABELS.serviceName]: task.serviceName,
    [SWARM_LABELS.task]: '',
    [SWARM_LABELS.taskId]: task.taskId,
    [SWARM_LABELS.taskName]: taskName(task),
  }
  const env = [...(c.env ?? []).map(t), ...genericResourceEnv(task.genericResources)]
  const limits = task.spec.resources?.limits
  const reservations = task.spec.resources?.reservations
  const health = c.healthcheck
  const log = task.spec.logDriver
  const grace = c.stopGracePeriod ?? DEFAULT_STOP_GRACE_NS
  return {
    Image: c.image,
    ...(c.command?.length ? { Entrypoint: c.command } : {}),
    ...(c.args?.length ? { Cmd: c.args } : {}),
    Env: env,
    ...(c.user ? { User: c.user } : {}),
    ...(c.dir ? { WorkingDir: c.dir } : {}),
    ...(c.hostname ? { Hostname: t(c.hostname) } : {}),
    Labels: labels,
    ...(c.tty ? { Tty: true } : {}),
    ...(c.openStdin ? { OpenStdin: true } : {}),
    ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
    StopTimeout: Math.ceil(grace / 1e9),
    ...(health
      ? {
          Healthcheck: {
            Test: health.test,
            ...(health.interval ? { Interval: health.interval } : {}),
            ...(health.timeout ? { Timeout: health.timeout } : {}),
            ...(health.retries ? { Retries: health.retries } : {}),
            ...(health.startPeriod ? { StartPeriod: health.startPeriod } : {}),
          },
        }
      : {}),
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [
        ...(c.mounts ?? []).map((m) => mountConfig(m, t)),
        ...options.files.map((f) => ({ Type: 'bind', Source: f.source, Target: f.target, ReadOnly: true })),
      ],
      ...(c.readOnly ? { ReadonlyRootfs: true } : {}),
      ...(c.capabilityAdd?.length ? { CapAdd: c.capabilityAdd } : {}),
      ...(c.capabilityDrop?.length ? { CapDrop: c.capabilityDrop } : {}),
      ...(c.ulimits?.length
        ? { Ulimits: c.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) }
        : {}),
      ...(c.sysctls && Object.keys(c.sysctls).length ? { Sysctls: c.sysctls } : {}),
      // On an overlay network the task's resolver is the node's embedded DNS (swarm's 127.0.0.11).
      ...(c.dnsConfig?.nameservers?.length
        ? { Dns: c.dnsConfig.nameservers }
        : (task.spec.networks?.length ?? 0) > 0
          ? { Dns: ['127.0.0.11'] }
          : {}),
      ...(c.dnsConfig?.search?.length ? { DnsSearch: c.dnsConfig.search } : {}),
      ...(c.dnsConfig?.options?.length ? { DnsOptions: c.dnsConfig.options } : {}),
      ...(c.hosts?.length ? { ExtraHosts: c.hosts.flatMap(extraHosts) } : {}),
      ...(c.init !== undefined ? { Init: c.init } : {}),
      ...(c.groups?.length ? { GroupAdd: c.groups } : {}),
      ...(c.isolation && c.isolation !== 'default' ? { Isolation: c.isolation } : {}),
      ...(log?.name ? { LogConfig: { Type: log.name, Config: log.options ?? {} } } : {}),
      ...(limits?.nanoCPUs ? { NanoCpus: limits.nanoCPUs } : {}),
      ...(limits?.memoryBytes ? { Memory: limits.memoryBytes } : {}),
      ...(limits?.pids ? { PidsLimit: limits.pids } : {}),
      ...(reservations?.memoryBytes ? { MemoryReservation: reservations.memoryBytes } : {}),
    },
  }
}

function mountConfig(m: Mount, t: (s: string) => string): Record<string, unknown> {
  const type = m.type === 'volume' || m.type === 'tmpfs' || m.type === 'npipe' ? m.type : 'bind'
  return {
    Type: type,
    ...(m.source ? { Source: t(m.source) } : {}),
    Target: m.target,
    ...(m.readOnly ? { ReadOnly: true } : {}),
    ...(m.consistency ? { Consistency: m.consistency } : {}),
    ...(type === 'bind' && m.bindOptions
      ? {
          BindOptions: {
            ...(m.bindOptions.propagation ? { Propagation: m.bindOptions.propagation } : {}),
            ...(m.bindOptions.nonRecursive ? { NonRecursive: true } : {}),
          },
        }
      : {}),
    ...(type === 'volume' && m.volumeOptions
      ? {
          VolumeOptions: {
            ...(m.volumeOptions.noCopy ? { NoCopy: true } : {}),
            ...(m.volumeOptions.labels ? { Labels: m.volumeOptions.labels } : {}),
            ...(m.volumeOptions.driverConfig
              ? {
                  DriverConfig: {
                    Name: m.volumeOptions.driverConfig.name,
                    Options: m.volumeOptions.driverConfig.options ?? {},
                  },
                }
              : {}),
          },
        }
      : {}),
    ...(type === 'tmpfs' && m.tmpfsOptions
      ? {
          TmpfsOptions: {
            ...(m.tmpfsOptions.sizeBytes ? { SizeBytes: m.tmpfsOptions.sizeBytes } : {}),
            ...(m.tmpfsOptions.mode ? { Mode: m.tmpfsOptions.mode } : {}),
          },
        }
      : {}),
  }
}

/** Swarm's hosts entries are `IP host [alias…]`; the engine wants `host:IP`. */
function extraHosts(entry: string): string[] {
  const [ip, ...names] = entry.trim().split(/\s+/)
  if (!ip || names.length === 0) return []
  return names.map((n) => `${n}:${ip}`)
}

/** Generic resources reach the task as environment variables, as swarm does (`DOCKER_RESOURCE_GPU=…`). */
function genericResourceEnv(resources: readonly GenericResource[] | undefined): string[] {
  const byKind = new Map<string, string[]>()
  for (const r of resources ?? []) {
    const [kind, value] =
      'namedResourceSpec' in r
        ? [r.namedResourceSpec.kind, r.namedResourceSpec.value]
        : [r.discreteResourceSpec.kind, String(r.discreteResourceSpec.value)]
    const key = `DOCKER_RESOURCE_${kind.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
    byKind.set(key, [...(byKind.get(key) ?? []), value])
  }
  return [...byKind].map(([k, v]) => `${k}=${v.join(',')}`)
}

/** Where a secret or config file appears in the container (swarm's defaults). */
export function fileTarget(kind: 'secret' | 'config', name: string): string {
  if (name.startsWith('/')) return name
  return kind === 'secret' ? `/run/secrets/${name}` : `/${name}`
}
