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
    'snapshot-interval': { type: 'string' },
    'heartbeat-period': { type: 'string' },
  },
})
if (!values['state-dir']) {
  console.error(
    'usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT]\n' +
      '                        [--snapshot-interval ENTRIES] [--heartbeat-period MS]',
  )
  process.exit(2)
}
/** A positive integer flag, or exit 2 with a plain message. */
const count = (flag: string): number | undefined => {
  const v = values[flag as 'snapshot-interval' | 'heartbeat-period']
  if (v === undefined) return undefined
  if (!/^[1-9][0-9]{0,8}$/.test(v)) {
    console.error(`swarmkit-cluster: --${flag} must be a positive integer, got "${v}"`)
    process.exit(2)
  }
  return Number(v)
}
const snapshotInterval = count('snapshot-interval')
const heartbeatPeriodMs = count('heartbeat-period')
const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString()} ${line}`)
const node = await startNode({
  stateDir: values['state-dir'],
  apiAddress: values.api!,
  ...(values.hostname ? { hostname: values.hostname } : {}),
  ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
  ...(snapshotInterval ? { snapshotInterval } : {}),
  ...(heartbeatPeriodMs ? { heartbeatPeriodMs } : {}),
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
