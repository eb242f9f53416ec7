#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { parseArgs } from 'node:util'
import { startNode } from './node.js'

const USAGE = `usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT] [--quiet]
                        [--snapshot-interval N] [--heartbeat-period MS] [--max-replicas N]

  --state-dir DIR         where the node keeps its raft log, keys and certificates (one process per directory)
  --api HOST:PORT|PATH    where the Engine API listens (default 127.0.0.1:2375); DOCKER_HOST points here
  --hostname NAME         the name docker node ls shows (default: this machine's host name)
  --listen-addr HOST:PORT overrides the --listen-addr of docker swarm init/join
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

let values: {
  api?: string
  'state-dir'?: string
  hostname?: string
  'listen-addr'?: string
  quiet?: boolean
  help?: boolean
  'snapshot-interval'?: string
  'heartbeat-period'?: string
  'max-replicas'?: string
}
try {
  ;({ values } = parseArgs({
    options: {
      api: { type: 'string', default: '127.0.0.1:2375' },
      'state-dir': { type: 'string' },
      hostname: { type: 'string' },
      'listen-addr': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      'snapshot-interval': { type: 'string' },
      'heartbeat-period': { type: 'string' },
      'max-replicas': { type: 'string' },
    },
  }))
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

const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString()} ${line}`)
let node: Awaited<ReturnType<typeof startNode>>
try {
  node = await startNode({
    stateDir: values['state-dir'],
    apiAddress: values.api!,
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
    ...(snapshotInterval ? { snapshotInterval } : {}),
    ...(heartbeatPeriodMs ? { heartbeatPeriodMs } : {}),
    ...(maxReplicas !== undefined ? { specLimits: { maxReplicas } } : {}),
    ...(log ? { log } : {}),
  })
} catch (err) {
  // A directory in use, a port taken, an unreadable state: one line, no stack trace.
  console.error(`swarmkit-cluster: ${(err as Error)?.message ?? String(err)}`)
  process.exit(1)
}
console.log(`Engine API at ${node.dockerHost}: export DOCKER_HOST=${node.dockerHost}`)
const stop = () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
