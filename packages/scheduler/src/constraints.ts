import type { Node, Placement } from '@swarmkit/store'
import { SchedulerError } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import { type Cidr, cidrContains, type IpBytes, ipEqual, parseCidr, parseIp } from './internal/ip.js'

/** Constraint key prefix for node labels (`node.labels.zone==east`). */
export const NODE_LABEL_PREFIX = 'node.labels.'
/** Constraint key prefix for engine labels (`engine.labels.storage==ssd`). */
export const ENGINE_LABEL_PREFIX = 'engine.labels.'

/** The fixed constraint keys; label keys are `node.labels.<k>` and `engine.labels.<k>`. */
export const CONSTRAINT_KEYS = [
  'node.id',
  'node.hostname',
  'node.ip',
  'node.role',
  'node.platform.os',
  'node.platform.arch',
] as const

/** One parsed placement constraint: `key operator value`. */
export interface Constraint {
  /** The key as written (matched case-insensitively; label names themselves are case-sensitive). */
  readonly key: string
  readonly operator: '==' | '!='
  /** The value as written (compared case-insensitively). */
  readonly value: string
}

type Kind = 'id' | 'hostname' | 'ip' | 'role' | 'os' | 'arch' | 'nodeLabel' | 'engineLabel'

/** A constraint prepared for fast evaluation. */
interface Compiled extends Constraint {
  readonly kind: Kind
  readonly eq: boolean
  readonly lower: string
  readonly label: string
  readonly ip: IpBytes | undefined
  readonly cidr: Cidr | undefined
}

// Swarm's syntax: a key of letters, digits, `-`, `_`, `.` (at least two characters, not starting with a digit);
// a value without operator characters.
const KEY_PATTERN = /^[a-z_][a-z0-9\-_.]+$/i
const VALUE_PATTERN = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i
const OPERATORS = ['==', '!='] as const
const MAX_EXPRESSION_LENGTH = 4096
const MAX_CONSTRAINTS = 256

function invalid(message: string): SchedulerError {
  return new SchedulerError('INVALID_CONSTRAINT', message)
}

function compileOne(expr: string): Compiled {
  for (const op of OPERATORS) {
    const at = expr.indexOf(op)
    if (at < 0) continue
    const key = expr.slice(0, at).trim()
    const value = expr.slice(at + op.length).trim()
    if (!KEY_PATTERN.test(key)) throw invalid(`key '${key}' is invalid`)
    if (!VALUE_PATTERN.test(value)) throw invalid(`value '${value}' is invalid`)
    const lowerKey = key.toLowerCase()
    let kind: Kind
    let label = ''
    if (lowerKey === 'node.id') kind = 'id'
    else if (lowerKey === 'node.hostname') kind = 'hostname'
    else if (lowerKey === 'node.ip') kind = 'ip'
    else if (lowerKey === 'node.role') kind = 'role'
    else if (lowerKey === 'node.platform.os') kind = 'os'
    else if (lowerKey === 'node.platform.arch') kind = 'arch'
    else if (lowerKey.startsWith(NODE_LABEL_PREFIX) && key.length > NODE_LABEL_PREFIX.length) {
      kind = 'nodeLabel'
      label = key.slice(NODE_LABEL_PREFIX.length)
    } else if (lowerKey.startsWith(ENGINE_LABEL_PREFIX) && key.length > ENGINE_LABEL_PREFIX.length) {
      kind = 'engineLabel'
      label = key.slice(ENGINE_LABEL_PREFIX.length)
    } else {
      throw invalid(
        `key '${key}' is not supported: use node.id, node.hostname, node.ip, node.role, node.platform.os, node.platform.arch, node.labels.<key> or engine.labels.<key>`,
      )
    }
    let ip: IpBytes | undefined
    let cidr: Cidr | undefined
    if (kind === 'ip') {
      ip = parseIp(value)
      if (!ip) cidr = parseCidr(value)
      if (!ip && !cidr) throw invalid(`value '${value}' is not an IP address or CIDR network`)
    }
    return { key, operator: op, value, kind, eq: op === '==', lower: value.toLowerCase(), label, ip, cidr }
  }
  throw invalid(`constraint expected one operator from ${OPERATORS.join(', ')}`)
}

function checkList(exprs: unknown, name: string): asserts exprs is readonly string[] {
  if (!Array.isArray(exprs)) throw typeError(name, 'be an array of strings')
  if (exprs.length > MAX_CONSTRAINTS) throw rangeError(name, `hold at most ${MAX_CONSTRAINTS} constraints`)
  for (const e of exprs) {
    if (typeof e !== 'string') throw typeError(name, 'be an array of strings')
    if (e.length > MAX_EXPRESSION_LENGTH)
      throw rangeError(name, `hold no expression longer than ${MAX_EXPRESSION_LENGTH} characters`)
  }
}

/**
 * Parses placement constraints in swarm's syntax (`node.role==manager`, `node.labels.zone != east`,
 * `node.ip==10.0.0.0/8`). Throws a `SchedulerError` `INVALID_CONSTRAINT` naming what is wrong.
 */
export function parseConstraints(exprs: readonly string[]): Constraint[] {
  checkList(exprs, 'exprs')
  return exprs.map((e) => {
    const c = compileOne(e)
    return { key: c.key, operator: c.operator, value: c.value }
  })
}

/**
 * Checks placement constraints as a service is created or updated; throws a `SchedulerError`
 * `INVALID_CONSTRAINT` with the reason (`key 'node.lables' is not supported …`, `value 'a>b' is invalid`).
 */
export function validateConstraints(exprs: readonly string[]): void {
  parseConstraints(exprs)
}

/** A set of constraints compiled once and evaluated against many nodes. */
export class ConstraintSet {
  /** The constraints, as parsed. */
  readonly constraints: readonly Constraint[]
  readonly #compiled: readonly Compiled[]

  private constructor(compiled: Compiled[]) {
    this.#compiled = compiled
    this.constraints = compiled.map((c) => ({ key: c.key, operator: c.operator, value: c.value }))
  }

  /** Compiles `exprs`; throws a `SchedulerError` `INVALID_CONSTRAINT` for a bad expression. */
  static parse(exprs: readonly string[]): ConstraintSet {
    checkList(exprs, 'exprs')
    return new ConstraintSet(exprs.map(compileOne))
  }

  /** The number of constraints. */
  get size(): number {
    return this.#compiled.length
  }

  /** Whether `node` satisfies every constraint. */
  matches(node: Node): boolean {
    for (const c of this.#compiled) if (!matchOne(c, node)) return false
    return true
  }
}

function fold(c: Compiled, actual: string | undefined): boolean {
  const same = (actual ?? '').toLowerCase() === c.lower
  return c.eq ? same : !same
}

function matchOne(c: Compiled, node: Node): boolean {
  const d = node.description
  switch (c.kind) {
    case 'id':
      return fold(c, node.id)
    case 'hostname':
      return fold(c, d?.hostname)
    case 'role':
      return fold(c, node.role)
    case 'os':
      return fold(c, d?.platform?.os)
    case 'arch':
      return fold(c, d?.platform?.architecture)
    case 'nodeLabel':
      return fold(c, node.spec.labels?.[c.label])
    case 'engineLabel':
      return fold(c, d?.engine?.labels?.[c.label])
    case 'ip': {
      const nodeIp = parseIp(node.status?.addr ?? '')
      let hit: boolean
      if (c.ip) hit = nodeIp !== undefined && ipEqual(c.ip, nodeIp)
      else hit = nodeIp !== undefined && c.cidr !== undefined && cidrContains(c.cidr, nodeIp)
      return c.eq ? hit : !hit
    }
  }
}

/** Whether `node` satisfies all of `constraints` (swarm's expressions; throws on a malformed one). */
export function nodeMatchesConstraints(node: Node, constraints: readonly string[]): boolean {
  if (typeof node !== 'object' || node === null || typeof node.id !== 'string')
    throw typeError('node', 'be a Node')
  return ConstraintSet.parse(constraints).matches(node)
}

/**
 * Validates a task template's placement as a service is created: constraints, preferences (only
 * `spread` over `node.labels.<k>` or `engine.labels.<k>`), max replicas (a non-negative integer) and platforms.
 * Throws a `SchedulerError` (`INVALID_CONSTRAINT`, `INVALID_PREFERENCE` or `INVALID_SPEC`).
 */
export function validatePlacement(placement: Placement | undefined): void {
  if (placement === undefined) return
  if (typeof placement !== 'object' || placement === null) throw typeError('placement', 'be an object')
  if (placement.constraints !== undefined) validateConstraints(placement.constraints)
  for (const p of placement.preferences ?? []) {
    const d = p?.spread?.spreadDescriptor
    if (typeof d !== 'string') throw new SchedulerError('INVALID_PREFERENCE', 'preference: expected spread')
    const lower = d.toLowerCase()
    const ok =
      (lower.startsWith(NODE_LABEL_PREFIX) && d.length > NODE_LABEL_PREFIX.length) ||
      (lower.startsWith(ENGINE_LABEL_PREFIX) && d.length > ENGINE_LABEL_PREFIX.length)
    if (!ok)
      throw new SchedulerError(
        'INVALID_PREFERENCE',
        `spread descriptor '${d}' is invalid: use node.labels.<key> or engine.labels.<key>`,
      )
  }
  const max = placement.maxReplicas
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0))
    throw new SchedulerError(
      'INVALID_SPEC',
      `maxReplicas ${String(max)} is invalid: expected an integer >= 0`,
    )
  for (const p of placement.platforms ?? []) {
    if (typeof p?.os !== 'string' || typeof p?.architecture !== 'string')
      throw new SchedulerError('INVALID_SPEC', 'platforms: each needs os and architecture strings')
  }
}
