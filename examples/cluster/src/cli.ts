#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { hostname as osHostname } from 'node:os'
import { parseArgs } from 'node:util'
import { chooseExecutor } from './executor-choice.js'
import { startNode } from './node.js'

const USAGE = `usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT]
                        [--engine-addr unix:///path|tcp://HOST:PORT | --simulated] [--max-replicas N] [--quiet]

  --state-dir DIR         where the node keeps its raft log, keys and certificates (one process per directory)
  --api HOST:PORT|PATH    where the Engine API listens (default 127.0.0.1:2375); DOCKER_HOST points here
  --hostname NAME         the name docker node ls shows (default: this machine's host name)
  --listen-addr HOST:PORT overrides the --listen-addr of docker swarm init/join
  --engine-addr ADDR      the Docker Engine that runs this node's tasks (default unix:///var/run/docker.sock
                          if an engine answers there, else the simulated executor)
  --simulated             the simulated executor even where an engine answers
  --max-replicas N        the most tasks one service may ask for (default 10000); more is refused with a 400
  --quiet                 no log lines on stderr
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
  'engine-addr'?: string
  simulated?: boolean
  'max-replicas'?: string
  quiet?: boolean
  help?: boolean
}
try {
  ;({ values } = parseArgs({
    options: {
      api: { type: 'string', default: '127.0.0.1:2375' },
      'state-dir': { type: 'string' },
      hostname: { type: 'string' },
      'listen-addr': { type: 'string' },
      'engine-addr': { type: 'string' },
      simulated: { type: 'boolean', default: false },
      'max-replicas': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
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
// The most tasks one service may ask for (replicas, job completions); specs over it get a 400.
const maxReplicas = values['max-replicas'] === undefined ? undefined : Number(values['max-replicas'])
if (maxReplicas !== undefined && !(Number.isSafeInteger(maxReplicas) && maxReplicas >= 1))
  usageError('--max-replicas: expected an integer >= 1')
if (values.simulated && values['engine-addr'] !== undefined)
  usageError('--simulated and --engine-addr exclude each other')

const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString()} ${line}`)
let choice: Awaited<ReturnType<typeof chooseExecutor>>
try {
  choice = values.simulated
    ? { executor: undefined, line: 'executor: simulated (--simulated)' }
    : await chooseExecutor({
        hostname: values.hostname ?? osHostname(),
        ...(values['engine-addr'] !== undefined ? { engineAddr: values['engine-addr'] } : {}),
        ...(log ? { log } : {}),
      })
} catch (err) {
  console.error(`swarmkit-cluster: ${(err as Error).message}`)
  process.exit(2)
}
// The executor line is the node's first log line, but only once the node runs: a refused start (a state
// directory in use) says one line and nothing else.
let first: string | undefined = choice.line
const nodeLog =
  log &&
  ((line: string) => {
    if (first !== undefined) log(first)
    first = undefined
    log(line)
  })
let node: Awaited<ReturnType<typeof startNode>>
try {
  node = await startNode({
    ...(choice.executor ? { executor: choice.executor } : {}),
    stateDir: values['state-dir'],
    apiAddress: values.api!,
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
    ...(maxReplicas !== undefined ? { specLimits: { maxReplicas } } : {}),
    ...(nodeLog ? { log: nodeLog } : {}),
  })
} catch (err) {
  // A directory in use, a port taken, an unreadable state: one line, no stack trace.
  await choice.executor?.close()
  console.error(`swarmkit-cluster: ${(err as Error)?.message ?? String(err)}`)
  process.exit(1)
}
if (first !== undefined) log?.(first)
first = undefined
console.log(`Engine API at ${node.dockerHost}: export DOCKER_HOST=${node.dockerHost}`)
const stop = () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
