import { StoreError } from '../errors.js'
import {
  DEFAULT_CLUSTER_NAME,
  DESIRED_TASK_STATES,
  MAX_SECRET_SIZE,
  NODE_AVAILABILITIES,
  NODE_ROLES,
  NODE_STATES,
  TASK_STATES,
  type Table,
} from '../types.js'

const MAX_ID = 128
const MAX_NAME = 1024
const has = (list: readonly string[], v: unknown): boolean => typeof v === 'string' && list.includes(v)

function bad(table: Table, id: unknown, what: string): StoreError {
  return new StoreError(
    'INVALID_ARGUMENT',
    `${table} object ${typeof id === 'string' ? id : ''}: ${what}`.trim(),
  )
}

const isObj = (v: unknown): v is Record<string, any> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Checks the structure the store itself relies on (ids, names, index fields); the rest is the caller's. `stored`
 * is the stored version of the object being replaced, if any: parts it shares with it (the same frozen objects,
 * checked when they were stored) are not checked again.
 */
export function validateObject(table: Table, o: unknown, stored?: Record<string, any>): void {
  if (!isObj(o)) throw new StoreError('INVALID_ARGUMENT', `${table} object: expected an object`)
  const id = o.id
  if (
    typeof id !== 'string' ||
    id.length === 0 ||
    id.length > MAX_ID ||
    (id !== stored?.id && /[\u0000-\u001f\s]/.test(id))
  ) {
    throw bad(table, undefined, 'id must be a non-empty string without whitespace, up to 128 characters')
  }
  const spec = o.spec
  if (!isObj(spec)) throw bad(table, id, 'spec must be an object')
  if (table !== 'nodes' && table !== 'tasks') {
    if (typeof spec.name !== 'string' || spec.name.length === 0 || spec.name.length > MAX_NAME) {
      throw bad(table, id, 'spec.name must be a non-empty string')
    }
  }
  switch (table) {
    case 'nodes':
      if (spec.name !== undefined && typeof spec.name !== 'string')
        throw bad(table, id, 'spec.name must be a string')
      if (!has(NODE_ROLES, spec.role))
        throw bad(table, id, `spec.role must be one of ${NODE_ROLES.join(', ')}`)
      if (!has(NODE_ROLES, o.role)) throw bad(table, id, `role must be one of ${NODE_ROLES.join(', ')}`)
      if (!has(NODE_AVAILABILITIES, spec.availability)) {
        throw bad(table, id, `spec.availability must be one of ${NODE_AVAILABILITIES.join(', ')}`)
      }
      if (!isObj(o.status) || !has(NODE_STATES, o.status.state)) {
        throw bad(table, id, `status.state must be one of ${NODE_STATES.join(', ')}`)
      }
      if (
        o.description !== undefined &&
        (!isObj(o.description) || typeof o.description.hostname !== 'string')
      ) {
        throw bad(table, id, 'description.hostname must be a string')
      }
      return
    case 'services':
      if (!isObj(spec.mode)) throw bad(table, id, 'spec.mode must be an object')
      checkTaskSpec(table, id, spec.taskTemplate, 'spec.taskTemplate')
      if (
        o.specVersion !== undefined &&
        !(isObj(o.specVersion) && Number.isSafeInteger(o.specVersion.index))
      ) {
        throw bad(table, id, 'specVersion.index must be an integer')
      }
      return
    case 'tasks':
      if (spec !== stored?.spec) checkTaskSpec(table, id, spec, 'spec')
      if (typeof o.serviceId !== 'string') throw bad(table, id, 'serviceId must be a string')
      if (typeof o.nodeId !== 'string') throw bad(table, id, 'nodeId must be a string')
      if (!Number.isSafeInteger(o.slot) || o.slot < 0)
        throw bad(table, id, 'slot must be a non-negative integer')
      if (!has(DESIRED_TASK_STATES, o.desiredState)) {
        throw bad(table, id, `desiredState must be one of ${DESIRED_TASK_STATES.join(', ')}`)
      }
      if (!isObj(o.status) || !has(TASK_STATES, o.status.state))
        throw bad(table, id, 'status.state must be a task state')
      if (!Array.isArray(o.networks)) throw bad(table, id, 'networks must be an array')
      if (o.networks !== stored?.networks)
        for (const n of o.networks) {
          if (!isObj(n) || typeof n.networkId !== 'string')
            throw bad(table, id, 'networks[].networkId must be a string')
        }
      return
    case 'clusters':
      // Swarm has exactly one cluster object, named `default` (names are unique, so there is at most one).
      if (spec.name !== DEFAULT_CLUSTER_NAME)
        throw bad(table, id, `spec.name must be "${DEFAULT_CLUSTER_NAME}"`)
      return
    case 'secrets':
    case 'configs':
      if (!(spec.data instanceof Uint8Array)) throw bad(table, id, 'spec.data must be a Uint8Array')
      if (spec.data.length > MAX_SECRET_SIZE) {
        throw bad(
          table,
          id,
          `spec.data is ${spec.data.length} bytes; the limit is ${MAX_SECRET_SIZE} (500 KiB)`,
        )
      }
      return
    default:
      return
  }
}

const REF_FIELDS = [
  ['secrets', 'secretId'],
  ['configs', 'configId'],
] as const

function checkTaskSpec(table: Table, id: string, spec: unknown, path: string): void {
  if (!isObj(spec) || !isObj(spec.containerSpec))
    throw bad(table, id, `${path}.containerSpec must be an object`)
  const c = spec.containerSpec
  if (typeof c.image !== 'string') throw bad(table, id, `${path}.containerSpec.image must be a string`)
  if (spec.networks !== undefined) {
    if (!Array.isArray(spec.networks)) throw bad(table, id, `${path}.networks must be an array`)
    for (const n of spec.networks) {
      if (!isObj(n) || typeof n.target !== 'string')
        throw bad(table, id, `${path}.networks[].target must be a string`)
    }
  }
  for (const [field, key] of REF_FIELDS) {
    const refs = c[field]
    if (refs === undefined) continue
    if (!Array.isArray(refs)) throw bad(table, id, `${path}.containerSpec.${field} must be an array`)
    for (const r of refs) {
      if (!isObj(r) || typeof r[key] !== 'string') {
        throw bad(table, id, `${path}.containerSpec.${field}[].${key} must be a string`)
      }
    }
  }
}
