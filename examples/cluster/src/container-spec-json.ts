// The parts of a Docker ContainerSpec and TaskTemplate that only an executor uses (mounts, healthcheck,
// stop signal, read-only, capabilities, ulimits, sysctls, DNS, hosts, groups, isolation, log driver,
// generic resource reservations), from the Engine API's JSON into the store's types; checked as strictly
// as the rest of the spec.

import type { ContainerSpec, Driver, GenericResource, HealthConfig, Mount } from '@swarmkit/store'
import { MOUNT_TYPES } from '@swarmkit/store'
import { bad, int, labels, obj, str, strings } from './docker-json.js'

type Json = Record<string, unknown>

/** The executor-only members of `ContainerSpec` (the caller merges them into the rest). */
export function containerExtrasFromDocker(c: Json): Partial<ContainerSpec> {
  const out: Partial<ContainerSpec> = {}
  const mounts = list(c.Mounts, 'ContainerSpec.Mounts')
  if (mounts) out.mounts = mounts.map((m, i) => mountFromDocker(m, `ContainerSpec.Mounts[${i}]`))
  const h = obj(c.Healthcheck, 'ContainerSpec.Healthcheck')
  if (h) {
    const health: HealthConfig = { test: strings(h.Test, 'Healthcheck.Test') ?? [] }
    const interval = int(h.Interval, 'Healthcheck.Interval')
    const timeout = int(h.Timeout, 'Healthcheck.Timeout')
    const retries = int(h.Retries, 'Healthcheck.Retries')
    const startPeriod = int(h.StartPeriod, 'Healthcheck.StartPeriod')
    const startInterval = int(h.StartInterval, 'Healthcheck.StartInterval')
    if (interval) health.interval = interval
    if (timeout) health.timeout = timeout
    if (retries) health.retries = retries
    if (startPeriod) health.startPeriod = startPeriod
    if (startInterval) health.startInterval = startInterval
    out.healthcheck = health
  }
  if (c.ReadOnly === true) out.readOnly = true
  if (c.OpenStdin === true) out.openStdin = true
  const stopSignal = str(c.StopSignal, 'ContainerSpec.StopSignal')
  if (stopSignal) out.stopSignal = stopSignal
  const groups = strings(c.Groups, 'ContainerSpec.Groups')
  if (groups?.length) out.groups = groups
  const hosts = strings(c.Hosts, 'ContainerSpec.Hosts')
  if (hosts?.length) out.hosts = hosts
  const capAdd = strings(c.CapabilityAdd, 'ContainerSpec.CapabilityAdd')
  if (capAdd?.length) out.capabilityAdd = capAdd
  const capDrop = strings(c.CapabilityDrop, 'ContainerSpec.CapabilityDrop')
  if (capDrop?.length) out.capabilityDrop = capDrop
  const isolation = str(c.Isolation, 'ContainerSpec.Isolation')
  if (isolation && isolation !== 'default') out.isolation = isolation
  if (c.Sysctls !== undefined && c.Sysctls !== null) {
    const s = labels(c.Sysctls, 'ContainerSpec.Sysctls')
    if (Object.keys(s).length > 0) out.sysctls = s
  }
  const ulimits = list(c.Ulimits, 'ContainerSpec.Ulimits')
  if (ulimits?.length)
    out.ulimits = ulimits.map((u, i) => {
      const x = obj(u, `ContainerSpec.Ulimits[${i}]`) ?? {}
      const name = str(x.Name, 'Ulimit.Name')
      if (!name) throw bad(`ContainerSpec.Ulimits[${i}].Name`, 'required')
      return { name, soft: int(x.Soft, 'Ulimit.Soft', -1) ?? 0, hard: int(x.Hard, 'Ulimit.Hard', -1) ?? 0 }
    })
  const dns = obj(c.DNSConfig, 'ContainerSpec.DNSConfig')
  if (dns) {
    const nameservers = strings(dns.Nameservers, 'DNSConfig.Nameservers')
    const search = strings(dns.Search, 'DNSConfig.Search')
    const options = strings(dns.Options, 'DNSConfig.Options')
    out.dnsConfig = {
      ...(nameservers?.length ? { nameservers } : {}),
      ...(search?.length ? { search } : {}),
      ...(options?.length ? { options } : {}),
    }
  }
  return out
}

/** The executor-only members of `TaskSpec`: the log driver. */
export function taskExtrasFromDocker(t: Json): { logDriver?: Driver } {
  const l = obj(t.LogDriver, 'TaskTemplate.LogDriver')
  if (!l) return {}
  const name = str(l.Name, 'LogDriver.Name')
  if (!name) return {}
  return {
    logDriver: {
      name,
      ...(l.Options !== undefined && l.Options !== null
        ? { options: labels(l.Options, 'LogDriver.Options') }
        : {}),
    },
  }
}

/** `Resources.Reservations.GenericResources` (`--generic-resource gpu=1`). */
export function genericResourcesFromDocker(v: unknown, field: string): GenericResource[] | undefined {
  const items = list(v, field)
  if (!items?.length) return undefined
  return items.map((g, i) => {
    const x = obj(g, `${field}[${i}]`) ?? {}
    const named = obj(x.NamedResourceSpec, 'NamedResourceSpec')
    const discrete = obj(x.DiscreteResourceSpec, 'DiscreteResourceSpec')
    if (named) {
      const kind = str(named.Kind, 'NamedResourceSpec.Kind')
      const value = str(named.Value, 'NamedResourceSpec.Value')
      if (!kind || !value) throw bad(`${field}[${i}]`, 'Kind and Value are required')
      return { namedResourceSpec: { kind, value } }
    }
    if (discrete) {
      const kind = str(discrete.Kind, 'DiscreteResourceSpec.Kind')
      const value = int(discrete.Value, 'DiscreteResourceSpec.Value')
      if (!kind || value === undefined) throw bad(`${field}[${i}]`, 'Kind and Value are required')
      return { discreteResourceSpec: { kind, value } }
    }
    throw bad(`${field}[${i}]`, 'expected NamedResourceSpec or DiscreteResourceSpec')
  })
}

function list(v: unknown, field: string): unknown[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || v.length > 1024) throw bad(field, 'expected a list')
  return v
}

function mountFromDocker(v: unknown, field: string): Mount {
  const m = obj(v, field) ?? {}
  const type = str(m.Type, `${field}.Type`) ?? 'volume'
  if (!(MOUNT_TYPES as readonly string[]).includes(type))
    throw bad(`${field}.Type`, `unknown mount type ${type}`)
  const target = str(m.Target, `${field}.Target`)
  if (!target) throw bad(`${field}.Target`, 'required')
  const source = str(m.Source, `${field}.Source`)
  if (type === 'bind' && !source) throw bad(`${field}.Source`, 'a bind mount needs a source')
  const out: Mount = { type: type as Mount['type'], target }
  if (source) out.source = source
  if (m.ReadOnly === true) out.readOnly = true
  const consistency = str(m.Consistency, `${field}.Consistency`)
  if (consistency) out.consistency = consistency
  const b = obj(m.BindOptions, `${field}.BindOptions`)
  if (b) {
    const propagation = str(b.Propagation, 'BindOptions.Propagation')
    out.bindOptions = {
      ...(propagation ? { propagation } : {}),
      ...(b.NonRecursive === true ? { nonRecursive: true } : {}),
    }
  }
  const vo = obj(m.VolumeOptions, `${field}.VolumeOptions`)
  if (vo) {
    const d = obj(vo.DriverConfig, 'VolumeOptions.DriverConfig')
    const name = d ? str(d.Name, 'DriverConfig.Name') : undefined
    out.volumeOptions = {
      ...(vo.NoCopy === true ? { noCopy: true } : {}),
      ...(vo.Labels ? { labels: labels(vo.Labels, 'VolumeOptions.Labels') } : {}),
      ...(name
        ? {
            driverConfig: {
              name,
              ...(d?.Options ? { options: labels(d.Options, 'DriverConfig.Options') } : {}),
            },
          }
        : {}),
    }
  }
  const t = obj(m.TmpfsOptions, `${field}.TmpfsOptions`)
  if (t) {
    const sizeBytes = int(t.SizeBytes, 'TmpfsOptions.SizeBytes')
    const mode = int(t.Mode, 'TmpfsOptions.Mode')
    out.tmpfsOptions = { ...(sizeBytes ? { sizeBytes } : {}), ...(mode ? { mode } : {}) }
  }
  return out
}
