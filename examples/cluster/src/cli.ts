#!/usr/bin/env node
import { hostname as osHostname } from 'node:os'
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { parseArgs } from 'node:util'
import { chooseExecutor } from './executor-choice.js'
import { startNode } from './node.js'

const { values } = parseArgs({
  options: {
    api: { type: 'string', default: '127.0.0.1:2375' },
    'state-dir': { type: 'string' },
    hostname: { type: 'string' },
    'listen-addr': { type: 'string' },
    'engine-addr': { type: 'string' },
    simulated: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    'max-replicas': { type: 'string' },
  },
})
if (!values['state-dir']) {
  console.error(
    'usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT] [--engine-addr unix:///path|tcp://HOST:PORT | --simulated] [--max-replicas N]',
  )
  process.exit(2)
}
// The most tasks one service may ask for (replicas, job completions); specs over it get a 400.
const maxReplicas = values['max-replicas'] === undefined ? undefined : Number(values['max-replicas'])
if (maxReplicas !== undefined && !(Number.isSafeInteger(maxReplicas) && maxReplicas >= 1)) {
  console.error('swarmkit-cluster: --max-replicas: expected an integer >= 1')
  process.exit(2)
}
const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString()} ${line}`)
let choice: Awaited<ReturnType<typeof chooseExecutor>>
try {
  if (values.simulated && values['engine-addr'] !== undefined)
    throw new TypeError('--simulated and --engine-addr exclude each other')
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
log?.(choice.line)
const node = await startNode({
  ...(choice.executor ? { executor: choice.executor } : {}),
  stateDir: values['state-dir'],
  apiAddress: values.api!,
  ...(values.hostname ? { hostname: values.hostname } : {}),
  ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
  ...(maxReplicas !== undefined ? { specLimits: { maxReplicas } } : {}),
  ...(log ? { log } : {}),
})
console.log(`Engine API at ${node.dockerHost}: export DOCKER_HOST=${node.dockerHost}`)
const stop = () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
