// The `filters` query parameter of the list endpoints, as moby reads it: the keys each list accepts (anything
// else is refused with "invalid filter 'KEY'"), and how each key matches (moby `daemon/cluster/filters.go`,
// swarmkit `manager/controlapi`, moby `daemon/network/filter.go`).

import {
  type Config,
  type Network,
  type Node,
  type ReadTx,
  type Secret,
  type Service,
  TASK_STATES,
  type Task,
} from '@swarmkit/store'
import { ApiError } from './errors.js'

/** Parsed filters: each key with its values (a key given with no value has an empty list). */
export type Filters = ReadonlyMap<string, readonly string[]>

/**
 * Parses filters as the CLI encodes them (`{"key":{"value":true}}`, or the legacy `{"key":["value"]}`) and
 * refuses keys outside `accepted` with moby's words. Without `accepted`, every key is let through.
 */
export function parseFilters(raw: string | null, accepted?: readonly string[]): Filters {
  const out = new Map<string, string[]>()
  if (!raw) return out
  let v: unknown
  try {
    v = JSON.parse(raw)
  } catch {
    throw new ApiError(400, 'invalid filter')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(400, 'invalid filter')
  for (const [k, vals] of Object.entries(v)) {
    if (Array.isArray(vals)) out.set(k, vals.map(String))
    else if (typeof vals === 'object' && vals !== null)
      out.set(
        k,
        Object.entries(vals)
          .filter(([, on]) => on === true)
          .map(([s]) => s),
      )
    else throw new ApiError(400, 'invalid filter')
  }
  if (accepted)
    for (const k of out.keys()) if (!accepted.includes(k)) throw new ApiError(400, `invalid filter '${k}'`)
  return out
}

/** The keys each list accepts (moby's). */
export const ACCEPTED = {
  nodes: ['name', 'id', 'label', 'role', 'membership', 'node.label'],
  services: ['name', 'id', 'label', 'mode', 'runtime'],
  tasks: ['name', 'id', 'label', 'service', 'node', 'desired-state', '_up-to-date', 'runtime'],
  networks: ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'],
  secrets: ['names', 'name', 'id', 'label'],
  configs: ['name', 'id', 'label'],
} as const

const anyOf = (values: readonly string[] | undefined, test: (v: string) => boolean) =>
  !values || values.length === 0 || values.some(test)
const prefixOf = (values: readonly string[] | undefined, s: string) => anyOf(values, (v) => s.startsWith(v))

/** swarmkit's label match: every `key` or `key=value` given must be among `labels`. */
export function labelsMatch(
  labels: Readonly<Record<string, string>> | undefined,
  wanted: readonly string[] | undefined,
): boolean {
  if (!wanted) return true
  return wanted.every((w) => {
    const i = w.indexOf('=')
    const key = i < 0 ? w : w.slice(0, i)
    if (!labels || !Object.hasOwn(labels, key)) return false
    return i < 0 || w.slice(i + 1) === '' || labels[key] === w.slice(i + 1)
  })
}

/** moby's `Args.Match`: the value itself, or a regular expression found in it (a bad pattern matches nothing). */
function mobyMatch(values: readonly string[] | undefined, s: string): boolean {
  return anyOf(values, (v) => {
    if (v === s) return true
    try {
      return new RegExp(v).test(s)
    } catch {
      return false
    }
  })
}

function checkValues(f: Filters, key: string, allowed: readonly string[], what: string): void {
  for (const v of f.get(key) ?? [])
    if (v !== '' && !allowed.includes(v.toLowerCase()))
      throw new ApiError(400, `Invalid ${what} filter: '${v}'`)
}

/** `GET /nodes`: name (hostname prefix), id (prefix), label (engine labels), node.label, role, membership. */
export function nodeFilter(f: Filters): (n: Node) => boolean {
  checkValues(f, 'role', ['worker', 'manager'], 'role')
  checkValues(f, 'membership', ['pending', 'accepted'], 'membership')
  const roles = f.get('role')?.map((r) => r.toLowerCase())
  const memberships = f.get('membership')?.map((m) => m.toLowerCase())
  return (n) =>
    prefixOf(f.get('name'), n.description?.hostname ?? '') &&
    prefixOf(f.get('id'), n.id) &&
    labelsMatch(n.description?.engine.labels, f.get('label')) &&
    labelsMatch(n.spec.labels, f.get('node.label')) &&
    anyOf(roles, (r) => n.role === r) &&
    // Nodes are accepted as they join (no manual acceptance): none is pending.
    anyOf(memberships, (m) => m === 'accepted')
}

export function serviceMode(s: Service): string {
  const m = s.spec.mode
  if ('replicated' in m) return 'replicated'
  if ('global' in m) return 'global'
  if ('replicatedJob' in m) return 'replicated-job'
  return 'global-job'
}

/** `GET /services`: name and id (prefixes), label, mode (exact), runtime (every service is a container). */
export function serviceFilter(f: Filters): (s: Service) => boolean {
  return (s) =>
    prefixOf(f.get('name'), s.spec.name) &&
    prefixOf(f.get('id'), s.id) &&
    labelsMatch(s.spec.labels, f.get('label')) &&
    anyOf(f.get('mode'), (m) => m === serviceMode(s)) &&
    anyOf(f.get('runtime'), (r) => r === 'container')
}

/** A task's name as swarm builds it: `service.slot.id`, or `service.node.id` for a global service's task. */
export function taskName(t: Task): string {
  return `${t.serviceAnnotations.name}.${t.slot > 0 ? t.slot : t.nodeId}.${t.id}`
}

/**
 * `GET /tasks`: service and node name or ID (resolved first, as moby's daemon does: an unknown one is a 404),
 * name (prefix of `service.slot.id`), id (prefix), label (the service's labels), desired-state, runtime, and
 * `_up-to-date` (the task runs its service's current spec).
 */
export function taskFilter(
  tx: ReadTx,
  f: Filters,
  resolve: (table: 'services' | 'nodes', ref: string) => string,
): (t: Task) => boolean {
  checkValues(f, 'desired-state', TASK_STATES, 'desired-state')
  const services = f.get('service')?.map((ref) => resolve('services', ref))
  const nodes = f.get('node')?.map((ref) => resolve('nodes', ref))
  const states = f.get('desired-state')?.map((s) => s.toLowerCase())
  const upToDate = f.has('_up-to-date')
  return (t) =>
    prefixOf(f.get('name'), taskName(t)) &&
    prefixOf(f.get('id'), t.id) &&
    labelsMatch(t.serviceAnnotations.labels, f.get('label')) &&
    anyOf(services, (s) => t.serviceId === s) &&
    anyOf(nodes, (n) => t.nodeId === n) &&
    anyOf(states, (s) => t.desiredState === s) &&
    anyOf(f.get('runtime'), (r) => r === 'container' || r === '') &&
    (!upToDate || (t.specVersion?.index ?? -1) === (tx.get('services', t.serviceId)?.specVersion.index ?? -2))
}

/**
 * `GET /networks`: name and id (moby's match: the value, or a pattern found in it), driver, scope (always
 * `swarm`), label, type (`builtin` is the ingress network), dangling (not used by any service).
 */
export function networkFilter(tx: ReadTx, f: Filters): (n: Network) => boolean {
  for (const t of f.get('type') ?? [])
    if (t !== 'builtin' && t !== 'custom') throw new ApiError(400, `invalid filter: 'type'='${t}'`)
  const dangling = f.get('dangling')
  let danglingOnly: boolean | undefined
  if (dangling && dangling.length > 0) {
    if (dangling.length > 1) throw new ApiError(400, 'got more than one value for filter key "dangling"')
    if (dangling[0] === '1' || dangling[0] === 'true') danglingOnly = true
    else if (dangling[0] === '0' || dangling[0] === 'false') danglingOnly = false
    else
      throw new ApiError(
        400,
        `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`,
      )
  }
  const used =
    danglingOnly === undefined
      ? new Set<string>()
      : new Set(tx.find('services').flatMap((s) => (s.endpoint?.virtualIPs ?? []).map((v) => v.networkId)))
  return (n) => {
    const builtin = n.spec.ingress === true
    return (
      mobyMatch(f.get('name'), n.spec.name) &&
      mobyMatch(f.get('id'), n.id) &&
      anyOf(f.get('driver'), (d) => d === (n.spec.driverConfig?.name ?? 'overlay')) &&
      anyOf(f.get('scope'), (s) => s === 'swarm') &&
      labelsMatch(n.spec.labels, f.get('label')) &&
      anyOf(f.get('type'), (t) => (t === 'builtin') === builtin) &&
      (danglingOnly === undefined || (danglingOnly ? !builtin && !used.has(n.id) : builtin || used.has(n.id)))
    )
  }
}

/** `GET /secrets` and `GET /configs`: names (exact, secrets only), name and id (prefixes), label. */
export function blobFilter(f: Filters): (o: Secret | Config) => boolean {
  return (o) =>
    anyOf(f.get('names'), (v) => o.spec.name === v) &&
    prefixOf(f.get('name'), o.spec.name) &&
    prefixOf(f.get('id'), o.id) &&
    labelsMatch(o.spec.labels, f.get('label'))
}
