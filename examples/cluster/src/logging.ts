// The node's log (`--log-level`, `--log-format text|json`, `--debug`): leveled, one line per record, each with
// time, level, msg, module and fields (logrus-style text as dockerd writes it, or one JSON object per line).
// The parts of a node log plain lines (`log: (line) => void`); `lineLog` turns them into records, and
// `debugObserver` adds raft's and the dispatcher's detail at debug level.

import type { ManagerObserver } from './observer.js'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]
export type LogFields = Record<string, unknown>

export interface Logger {
  readonly level: LogLevel
  enabled(level: LogLevel): boolean
  log(level: LogLevel, msg: string, fields?: LogFields): void
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  /** The same log with `module` set on every record. */
  child(module: string): Logger
}

export interface LoggerOptions {
  /** Records below this level are dropped. Default `info`. */
  readonly level?: LogLevel
  readonly format?: LogFormat
  /** Where each line goes (with its newline). Default: standard error. */
  readonly write?: (line: string) => void
  readonly module?: string
  readonly clock?: () => Date
}

const rank = (l: LogLevel) => LOG_LEVELS.indexOf(l)
/** A level as logrus (dockerd) writes it: `warning` for warn. */
const levelName = (l: LogLevel) => (l === 'warn' ? 'warning' : l)

/** logrus quotes a value when it holds anything but word characters and a few safe ones. */
function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  return /^[\w./:@-]+$/.test(s) ? s : JSON.stringify(s)
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  if (!LOG_LEVELS.includes(level))
    throw new RangeError(`options.level must be one of ${LOG_LEVELS.join(', ')}`)
  const format = options.format ?? 'text'
  if (!LOG_FORMATS.includes(format)) throw new RangeError('options.format must be text or json')
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  const clock = options.clock ?? (() => new Date())
  const make = (module: string): Logger => {
    const log = (at: LogLevel, msg: string, given: LogFields = {}) => {
      if (rank(at) < rank(level)) return
      // An Error serializes as {}: its message is what an operator reads.
      const fields = Object.fromEntries(
        Object.entries(given).map(([k, v]) => [k, v instanceof Error ? v.message : v]),
      )
      const time = clock().toISOString()
      if (format === 'json') {
        write(`${JSON.stringify({ time, level: levelName(at), msg, module, fields })}\n`)
        return
      }
      const extra = Object.entries(fields)
        .map(([k, v]) => ` ${k}=${textValue(v)}`)
        .join('')
      write(`time="${time}" level=${levelName(at)} msg=${JSON.stringify(msg)} module=${module}${extra}\n`)
    }
    return {
      level,
      enabled: (at) => rank(at) >= rank(level),
      log,
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (m) => make(m),
    }
  }
  return make(options.module ?? 'daemon')
}

/**
 * A `log: (line) => void` for the node's parts: `manager ID: …` and `agent ID: …` lines go to those modules
 * with the node ID as a field; lines about failures are warnings; a stack trace (an unexpected error) is an
 * error whose stack is kept only at debug level.
 */
export function lineLog(logger: Logger): (line: string) => void {
  return (line) => {
    let module = 'daemon'
    const fields: LogFields = {}
    let msg = line
    const m = /^(manager|agent) ([a-z0-9]+): /.exec(line)
    if (m) {
      module = m[1]!
      fields.node = m[2]
      msg = line.slice(m[0].length)
    }
    const stack = msg.indexOf('\n    at ')
    if (stack >= 0) {
      if (logger.enabled('debug')) fields.stack = msg.slice(msg.indexOf('\n') + 1)
      logger.child(module).error(msg.slice(0, msg.indexOf('\n')), fields)
      return
    }
    const level: LogLevel = /\b(fail(ed|s)?|error|refused|not recorded|not forwarded)\b/i.test(msg)
      ? 'warn'
      : 'info'
    logger.child(module).log(level, msg, fields)
  }
}

/** Raft's log lines and the dispatcher's heartbeats and status reports, at debug level. */
export function debugObserver(logger: Logger): ManagerObserver | undefined {
  if (!logger.enabled('debug')) return undefined
  const raft = logger.child('raft')
  const dispatcher = logger.child('dispatcher')
  return {
    raftLog: {
      debug: (msg, fields) => raft.debug(msg, fields),
      warn: (msg, fields) => raft.warn(msg, fields),
      error: (msg, fields) => raft.error(msg, fields),
    },
    heartbeat: (node) => dispatcher.debug('heartbeat', { node }),
    statusUpdates: (node, count) => dispatcher.debug('task status updates', { node, count }),
    raftSnapshot: (bytes) => raft.debug('snapshot taken', { bytes }),
    started: (m) => {
      raft.debug('raft started', { id: m.raftId, term: m.raft.term, leader: m.raft.leaderId })
      m.raft.on('leader:change', (leader, term) => raft.debug('leader changed', { leader, term }))
      m.raft.on('role:change', (role) => raft.debug('role changed', { role }))
    },
  }
}
