import {
  generateId,
  SEQUENCE_MESSAGE,
  type Service,
  type ServiceSpec,
  StoreError,
  type Task,
} from '@swarmkit/store'
import { validatePlacement } from './constraints.js'
import { SchedulerError } from './errors.js'
import { nextJobStatus } from './jobs.js'
import { rollbackSpec } from './orchestrator.js'
import type { SchedulerStore } from './store.js'

function checkSpec(spec: ServiceSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new TypeError('spec: expected a ServiceSpec')
  if (typeof spec.taskTemplate !== 'object' || spec.taskTemplate === null)
    throw new TypeError('spec.taskTemplate: expected a TaskSpec')
  validatePlacement(spec.taskTemplate.placement)
  // Mode, replicas, restart policy and update configs are checked by the store, in the transaction (its
  // `checkServiceSpec`, against the manager's spec limits): every writer passes through there.
}

function sameTemplate(a: Task['spec'], b: Task['spec']): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * Creates a service after checking what the scheduler will need (constraints, preferences); a bad constraint
 * is refused here with the reason (`SchedulerError` `INVALID_CONSTRAINT`). The store refuses a bad mode,
 * restart policy or update config, or a spec over its limits (`StoreError` `INVALID_ARGUMENT`).
 */
export async function createService(
  store: SchedulerStore,
  spec: ServiceSpec,
  options?: { random?: (n: number) => Uint8Array; now?: number },
): Promise<Service> {
  checkSpec(spec)
  const id = options?.random ? generateId(options.random) : generateId()
  return store.update((tx) => {
    const jobStatus = nextJobStatus(undefined, spec, options?.now ?? Date.now())
    return tx.create('services', jobStatus ? { id, spec, jobStatus } : { id, spec })
  })
}

/**
 * Replaces a service's spec as `docker service update` does ({@link serviceUpdate}, in one transaction). With `options.version` (the `meta.version` the caller read, as the API's
 * `?version=` gives it) a service changed since then is refused with the store's `SEQUENCE` error
 * ("update out of sequence").
 */
export async function updateService(
  store: SchedulerStore,
  serviceId: string,
  spec: ServiceSpec,
  options?: { version?: number; now?: number },
): Promise<Service> {
  if (typeof serviceId !== 'string') throw new TypeError('serviceId: expected a string')
  const version = options?.version
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0))
    throw new TypeError('options.version: expected an integer >= 0')
  checkSpec(spec)
  return store.update((tx) => {
    const cur = tx.get('services', serviceId)
    if (!cur) throw new SchedulerError('NOT_FOUND', `service ${serviceId} not found`)
    if (version !== undefined && version !== cur.meta.version)
      throw new StoreError('SEQUENCE', SEQUENCE_MESSAGE)
    return tx.update('services', serviceUpdate(cur, spec, options?.now ?? Date.now()))
  })
}

/** Asks the store for a new spec version: it stamps the commit's version (the raft index when replicated). */
const NEW_SPEC_VERSION = Object.freeze({ index: 0 })

/**
 * The service as `docker service update` leaves it, computed inside the transaction that writes it (every
 * writer of a service update goes through here): the old spec becomes `previousSpec`, the update status is
 * cleared, a job runs again as a new iteration, and the spec version moves on only when the task template
 * changed (so scaling alone never starts a rolling update). A service's mode cannot change
 * (`SchedulerError` `INVALID_SPEC`).
 */
export function serviceUpdate(cur: Service, spec: ServiceSpec, now: number): Service {
  if (typeof cur !== 'object' || cur === null || typeof cur.spec?.mode !== 'object')
    throw new TypeError('cur: expected a Service')
  checkSpec(spec)
  if (typeof spec.mode !== 'object' || spec.mode === null) throw new TypeError('spec.mode: expected a mode')
  if (!Number.isFinite(now)) throw new TypeError('now: expected a time in ms')
  if (Object.keys(cur.spec.mode)[0] !== Object.keys(spec.mode)[0])
    throw new SchedulerError('INVALID_SPEC', 'service mode cannot be changed')
  const changed = !sameTemplate(cur.spec.taskTemplate, spec.taskTemplate)
  const next: Service = {
    ...cur,
    spec,
    previousSpec: cur.spec,
    previousSpecVersion: cur.specVersion,
    specVersion: changed ? NEW_SPEC_VERSION : cur.specVersion,
  }
  delete next.updateStatus
  const jobStatus = nextJobStatus(cur, spec, now)
  if (jobStatus) next.jobStatus = jobStatus
  return next
}

/**
 * Rolls a service back to its previous spec (`docker service rollback`): the update status becomes
 * `rollback_started` ("manually requested rollback") and the orchestrator rolls the tasks back with the
 * rollback config. `SchedulerError` `NO_PREVIOUS_SPEC` if there is nothing to roll back to.
 */
export async function rollbackService(
  store: SchedulerStore,
  serviceId: string,
  options?: { now?: number },
): Promise<Service> {
  if (typeof serviceId !== 'string') throw new TypeError('serviceId: expected a string')
  const now = options?.now ?? Date.now()
  return store.update((tx) => {
    const cur = tx.get('services', serviceId)
    if (!cur) throw new SchedulerError('NOT_FOUND', `service ${serviceId} not found`)
    if (!cur.previousSpec)
      throw new SchedulerError('NO_PREVIOUS_SPEC', `service ${serviceId} does not have a previous spec`)
    const next = rollbackSpec(cur)
    next.updateStatus = { state: 'rollback_started', startedAt: now, message: 'manually requested rollback' }
    return tx.update('services', next)
  })
}
