import { StoreError } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import {
  RESTART_CONDITIONS,
  type ServiceSpec,
  UPDATE_FAILURE_ACTIONS,
  UPDATE_ORDERS,
  type UpdateConfig,
} from './types.js'

/**
 * What one service spec may ask of the managers. Every transaction that creates or changes a service is
 * checked against the proposing manager's limits (`ClusterStoreOptions.limits`), so a spec that would
 * exhaust a manager (`--replicas 999999999`) is refused before it reaches the log.
 */
export interface SpecLimits {
  /**
   * The most tasks one service may ask for at once: a replicated service's replicas, a replicated job's
   * total completions and max concurrent (default 10,000). Every task is an object in every manager's
   * memory and in the raft log.
   */
  maxReplicas: number
}

/** The limits a store applies unless given others. */
export const DEFAULT_SPEC_LIMITS: Readonly<SpecLimits> = Object.freeze({ maxReplicas: 10_000 })

/** `limits` with the defaults filled in; `RangeError` naming the field for a bad value. */
export function specLimits(limits: Partial<SpecLimits> | undefined, name = 'limits'): Readonly<SpecLimits> {
  if (limits === undefined) return DEFAULT_SPEC_LIMITS
  if (typeof limits !== 'object' || limits === null) throw typeError(name, 'be an object')
  const maxReplicas = limits.maxReplicas ?? DEFAULT_SPEC_LIMITS.maxReplicas
  if (!Number.isSafeInteger(maxReplicas) || maxReplicas < 1)
    throw rangeError(`${name}.maxReplicas`, 'be an integer >= 1')
  return Object.freeze({ maxReplicas })
}

const isObj = (v: unknown): v is Record<string, any> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function invalid(message: string): StoreError {
  return new StoreError('INVALID_ARGUMENT', message)
}

function count(v: unknown, what: string, limits: Readonly<SpecLimits>): void {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw invalid(`${what} must be an integer >= 0`)
  if ((v as number) > limits.maxReplicas)
    throw invalid(
      `${what} ${v as number} exceeds the limit of ${limits.maxReplicas} tasks per service (maxReplicas)`,
    )
}

function duration(v: unknown, what: string): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 0))
    throw invalid(`${what} cannot be negative`)
}

function oneOf(v: unknown, list: readonly string[], what: string): void {
  if (v !== undefined && (typeof v !== 'string' || !list.includes(v)))
    throw invalid(`${what} must be one of ${list.join(', ')}`)
}

function checkUpdateConfig(c: UpdateConfig | undefined, what: string): void {
  if (c === undefined) return
  if (!isObj(c)) throw invalid(`${what} must be an object`)
  if (!Number.isSafeInteger(c.parallelism) || c.parallelism < 0)
    throw invalid(`${what}.parallelism must be an integer >= 0`)
  duration(c.delay, `${what}.delay`)
  duration(c.monitor, `${what}.monitor`)
  oneOf(c.failureAction, UPDATE_FAILURE_ACTIONS, `${what}.failureAction`)
  oneOf(c.order, UPDATE_ORDERS, `${what}.order`)
  const r = c.maxFailureRatio
  if (r !== undefined && !(typeof r === 'number' && r >= 0 && r <= 1))
    throw invalid(`${what}.maxFailureRatio cannot be less than 0 or bigger than 1`)
}

/**
 * Checks what the orchestrator relies on in a service spec (mode, restart policy, update and rollback
 * configs) and the spec's size against `limits`. `StoreError` `INVALID_ARGUMENT` naming the field;
 * swarm's wording where swarm has one.
 */
export function checkServiceSpec(
  spec: ServiceSpec,
  limits: Readonly<SpecLimits> = DEFAULT_SPEC_LIMITS,
): void {
  const mode = spec.mode as Record<string, any>
  const kinds = isObj(mode) ? Object.keys(mode) : []
  if (kinds.length !== 1)
    throw invalid('spec.mode must have exactly one of replicated, global, replicatedJob, globalJob')
  if (isObj(mode.replicated)) count(mode.replicated.replicas, 'replicas', limits)
  else if (isObj(mode.replicatedJob)) {
    count(mode.replicatedJob.maxConcurrent, 'max concurrent', limits)
    count(mode.replicatedJob.totalCompletions, 'total completions', limits)
  } else if (!isObj(mode.global) && !isObj(mode.globalJob))
    throw invalid(`spec.mode.${kinds[0]}: not a service mode`)
  const rp = spec.taskTemplate.restartPolicy
  if (rp !== undefined) {
    if (!isObj(rp)) throw invalid('restart policy must be an object')
    oneOf(rp.condition, RESTART_CONDITIONS, 'restart condition')
    duration(rp.delay, 'restart-delay')
    duration(rp.window, 'restart-window')
    if (rp.maxAttempts !== undefined && (!Number.isSafeInteger(rp.maxAttempts) || rp.maxAttempts < 0))
      throw invalid('restart-max-attempts must be an integer >= 0')
  }
  if ((mode.replicatedJob || mode.globalJob) && spec.updateConfig !== undefined)
    throw invalid('Jobs may not have an update config')
  checkUpdateConfig(spec.updateConfig, 'update config')
  checkUpdateConfig(spec.rollbackConfig, 'rollback config')
}
