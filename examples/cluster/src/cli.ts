#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { parseArgs } from 'node:util'
import { type ApiTlsOptions, checkApiExposure, loadApiTls } from './api-tls.js'
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

const USAGE =
  'usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT]\n' +
  '       [--tlsverify --tlscacert FILE --tlscert FILE --tlskey FILE | --tls=false] [--metrics-addr HOST:PORT]\n' +
  '       [--log-level debug|info|warn|error|fatal] [--log-format text|json] [--debug] [--quiet]'

/** A user mistake: one line on standard error, no stack trace, exit status 2. */
function fail(message: string): never {
  console.error(`swarmkit-cluster: ${message}\n${USAGE}`)
  process.exit(2)
}

// dockerd's `--tls=false` / `--tlsverify=false` (explicitly no TLS): parseArgs takes no value on a boolean.
const explicitlyOff = new Set<string>()
const args = process.argv.slice(2).filter((a) => {
  const m = /^--(tls|tlsverify)=(false|true)$/.exec(a)
  if (m?.[2] === 'false') explicitlyOff.add(m[1]!)
  return !m || m[2] === 'true'
})
let values: ReturnType<typeof parse>['values']
function parse() {
  return parseArgs({
    args: args.map((a) => a.replace(/^--(tls|tlsverify)=true$/, '--$1')),
    options: {
      api: { type: 'string', default: '127.0.0.1:2375' },
      'state-dir': { type: 'string' },
      hostname: { type: 'string' },
      'listen-addr': { type: 'string' },
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
    },
  })
}
try {
  values = parse().values
} catch (err) {
  fail((err as Error).message)
}
if (!values['state-dir']) fail('--state-dir is required')
const level = values.debug ? 'debug' : values['log-level']!
if (!LOG_LEVELS.includes(level as LogLevel))
  fail(`unknown --log-level "${level}": use one of ${LOG_LEVELS.join(', ')}`)
if (!LOG_FORMATS.includes(values['log-format'] as LogFormat))
  fail(`unknown --log-format "${values['log-format']}": use text or json`)
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
  for (const w of checkApiExposure(values.api!, apiTls, explicitlyOff.size > 0).warnings) logger.warn(w)
} catch (err) {
  fail((err as Error).message)
}

const observer = debugObserver(logger)
let node: Awaited<ReturnType<typeof startNode>>
try {
  node = await startNode({
    stateDir: values['state-dir'],
    apiAddress: values.api!,
    ...(apiTls ? { apiTls } : {}),
    ...(values['metrics-addr'] ? { metricsAddress: values['metrics-addr'] } : {}),
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
    ...(values.quiet ? {} : { log: lineLog(logger) }),
    ...(observer ? { observer } : {}),
  })
} catch (err) {
  // Expected failures (an address in use, a state directory of another cluster): the message, no stack.
  logger.error(`could not start: ${(err as Error).message}`)
  process.exit(1)
}
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
