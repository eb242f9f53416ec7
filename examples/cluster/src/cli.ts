#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { parseArgs } from 'node:util'
import { startNode } from './node.js'

const { values } = parseArgs({
  options: {
    api: { type: 'string', default: '127.0.0.1:2375' },
    'state-dir': { type: 'string' },
    hostname: { type: 'string' },
    'listen-addr': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    'max-replicas': { type: 'string' },
  },
})
if (!values['state-dir']) {
  console.error(
    'usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT] [--max-replicas N]',
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
const node = await startNode({
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
