#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { hostname as osHostname } from 'node:os'
import { parseArgs } from 'node:util'
import { type ApiTlsOptions, checkApiExposure, loadApiTls } from './api-tls.js'
import { chooseExecutor, parseGenericResources } from './executor-choice.js'
import {
  createLogger,
  debugObserver,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  lineLog,
} from './logging.js'
import { startNode } from './node.js'

const USAGE = `usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT] [--quiet]
                        [--engine-addr unix:///path|tcp://HOST:PORT | --simulated] [--node-generic-resource KIND=VALUE]
                        [--snapshot-interval N] [--heartbeat-period MS] [--max-replicas N]

  --state-dir DIR         where the node keeps its raft log, keys and certificates (one process per directory)
  --api HOST:PORT|PATH    where the Engine API listens (default 127.0.0.1:2375); DOCKER_HOST points here
  --hostname NAME         the name docker node ls shows (default: this machine's host name)
  --listen-addr HOST:PORT overrides the --listen-addr of docker swarm init/join
  --engine-addr ADDR      the Docker Engine that runs this node's tasks (default unix:///var/run/docker.sock
                          if an engine answers there, else the simulated executor)
  --simulated             the simulated executor even where an engine answers
  --node-generic-resource KIND=VALUE
                          a resource this node offers to --generic-resource tasks (gpu=UUID, ssd=2); repeatable
  --tlsverify             answer only clients with a certificate from --tlscacert (mutual TLS, as dockerd)
  --tlscacert FILE        the CA of the clients (PEM)
  --tlscert FILE          the API's certificate (PEM)
  --tlskey FILE           the API's key (PEM)
  --tls                   TLS without checking clients; --tls=false serves a non-loopback address in the clear
  --metrics-addr HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics
  --log-level LEVEL       debug, info (default), warn (or warning), error or fatal
  --log-format FORMAT     text (default) or json (one object per line)
  -D, --debug             --log-level debug, with raft's and the dispatcher's detail
  --quiet                 no log lines on stderr
  --snapshot-interval N   raft entries between two snapshots, after which the log is compacted (default 10000)
  --heartbeat-period MS   the dispatcher's heartbeat period in milliseconds (default 5000)
  --max-replicas N        the most tasks one service may ask for (replicas, job completions); over it: 400
  --help                  this text`

/** A mistake on the command line: the reason and the usage on stderr, exit code 2. */
function usageError(reason: string): never {
  console.error(`swarmkit-cluster: ${reason}\n${USAGE}`)
  process.exit(2)
}

// dockerd's `--tls=false` / `--tlsverify=false` (explicitly no TLS): parseArgs takes no value on a boolean.
const explicitlyOff = new Set<string>()
const args = process.argv.slice(2).filter((a) => {
  const m = /^--(tls|tlsverify)=(false|true)$/.exec(a)
  if (m?.[2] === 'false') explicitlyOff.add(m[1]!)
  return !m || m[2] === 'true'
})
function parse() {
  return parseArgs({
    args: args.map((a) => a.replace(/^--(tls|tlsverify)=true$/, '--$1')),
    options: {
      api: { type: 'string', default: '127.0.0.1:2375' },
      'state-dir': { type: 'string' },
      hostname: { type: 'string' },
      'listen-addr': { type: 'string' },
      'engine-addr': { type: 'string' },
      simulated: { type: 'boolean', default: false },
      'node-generic-resource': { type: 'string', multiple: true },
      tls: { type: 'boolean', default: false },
      tlsverify: { type: 'boolean', default: false },
      tlscacert: { type: 'string' },
      tlscert: { type: 'string' },
      tlskey: { type: 'string' },
      'metrics-addr': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'log-format': { type: 'string', default: 'text' },
      debug: { type: 'boolean', short: 'D', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      'snapshot-interval': { type: 'string' },
      'heartbeat-period': { type: 'string' },
      'max-replicas': { type: 'string' },
    },
  })
}
let values: ReturnType<typeof parse>['values']
try {
  values = parse().values
} catch (err) {
  usageError((err as Error).message)
}
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
if (!values['state-dir']) usageError('--state-dir is required')
/** A positive integer flag. */
const count = (flag: 'snapshot-interval' | 'heartbeat-period' | 'max-replicas'): number | undefined => {
  const v = values[flag]
  if (v === undefined) return undefined
  if (!/^[1-9][0-9]{0,8}$/.test(v)) usageError(`--${flag} must be a positive integer, got "${v}"`)
  return Number(v)
}
const snapshotInterval = count('snapshot-interval')
const heartbeatPeriodMs = count('heartbeat-period')
// The most tasks one service may ask for (replicas, job completions); specs over it get a 400.
const maxReplicas = count('max-replicas')
// dockerd takes `warning` as well as `warn`.
const level = values.debug ? 'debug' : values['log-level'] === 'warning' ? 'warn' : values['log-level']!
if (!LOG_LEVELS.includes(level as LogLevel))
  usageError(`unknown --log-level "${level}": use one of ${LOG_LEVELS.join(', ')}`)
if (!LOG_FORMATS.includes(values['log-format'] as LogFormat))
  usageError(`unknown --log-format "${values['log-format']}": use text or json`)
const logger = createLogger({ level: level as LogLevel, format: values['log-format'] as LogFormat })

const verify = values.tlsverify && !explicitlyOff.has('tlsverify')
const useTls = (values.tls || verify) && !explicitlyOff.has('tls')
let apiTls: ApiTlsOptions | undefined
try {
  if (useTls)
    apiTls = await loadApiTls({
      verify,
      ...(values.tlscacert ? { cacert: values.tlscacert } : {}),
      ...(values.tlscert ? { cert: values.tlscert } : {}),
      ...(values.tlskey ? { key: values.tlskey } : {}),
    })
  for (const w of checkApiExposure(values.api!, apiTls, explicitlyOff.size > 0).warnings)
    logger.warn(w, { host: `tcp://${values.api}` })
} catch (err) {
  usageError((err as Error).message)
}

const observer = debugObserver(logger)
if (values.simulated && values['engine-addr'] !== undefined)
  usageError('--simulated and --engine-addr exclude each other')

// Which executor runs the tasks is the node's first log line, printed once the node starts (a node that
// cannot start, e.g. on a locked state directory, prints only why).
const nodeLog = values.quiet ? undefined : lineLog(logger)
let executorLine: string | undefined
const log = nodeLog
  ? (line: string) => {
      if (executorLine) nodeLog(executorLine)
      executorLine = undefined
      nodeLog(line)
    }
  : undefined
let choice: Awaited<ReturnType<typeof chooseExecutor>>
try {
  choice = values.simulated
    ? { executor: undefined, line: 'executor: simulated (--simulated)' }
    : await chooseExecutor({
        hostname: values.hostname ?? osHostname(),
        ...(values['engine-addr'] !== undefined ? { engineAddr: values['engine-addr'] } : {}),
        ...(values['node-generic-resource']?.length
          ? { genericResources: parseGenericResources(values['node-generic-resource']) }
          : {}),
        ...(log ? { log } : {}),
      })
} catch (err) {
  console.error(`swarmkit-cluster: ${(err as Error).message}`)
  process.exit(2)
}
executorLine = choice.line
let node: Awaited<ReturnType<typeof startNode>>
try {
  node = await startNode({
    ...(choice.executor ? { executor: choice.executor } : {}),
    stateDir: values['state-dir'],
    apiAddress: values.api!,
    ...(apiTls ? { apiTls } : {}),
    ...(values['metrics-addr'] ? { metricsAddress: values['metrics-addr'] } : {}),
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
    ...(snapshotInterval ? { snapshotInterval } : {}),
    ...(heartbeatPeriodMs ? { heartbeatPeriodMs } : {}),
    ...(maxReplicas !== undefined ? { specLimits: { maxReplicas } } : {}),
    ...(log ? { log } : {}),
    ...(observer ? { observer } : {}),
  })
} catch (err) {
  // A directory in use, a port taken, an unreadable state: one line, no stack trace (a log record in the
  // log's format; with --log-format text the daemon's own one-line words).
  await choice.executor?.close()
  const message = (err as Error)?.message ?? String(err)
  if (values['log-format'] === 'json') logger.error(`could not start: ${message}`)
  else console.error(`swarmkit-cluster: ${message}`)
  process.exit(1)
}
if (executorLine && nodeLog) nodeLog(executorLine)
executorLine = undefined
console.log(`Engine API at ${node.dockerHost}: export DOCKER_HOST=${node.dockerHost}`)
if (node.uiUrl) console.log(`Swarm view at ${node.uiUrl} (on a manager)`)
if (node.metricsUrl) console.log(`Metrics at ${node.metricsUrl}`)
const stop = () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
