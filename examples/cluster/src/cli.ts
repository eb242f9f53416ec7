#!/usr/bin/env node
// swarmkit-cluster: one node of the reference cluster. Point the docker CLI at its Engine API:
//   swarmkit-cluster --api 127.0.0.1:2375 --state-dir /tmp/node1 &
//   DOCKER_HOST=tcp://127.0.0.1:2375 docker swarm init
import { parseArgs } from 'node:util'
import { checkApiExposure, loadApiTls } from './api-tls.js'
import { startNode } from './node.js'

// dockerd's `--tls=false` / `--tlsverify=false` (explicitly no TLS): parseArgs takes no value on a boolean.
const explicitlyOff = new Set<string>()
const args = process.argv.slice(2).filter((a) => {
  const m = /^--(tls|tlsverify)=(false|true)$/.exec(a)
  if (m?.[2] === 'false') explicitlyOff.add(m[1]!)
  return !m || m[2] === 'true'
})
const { values } = parseArgs({
  args: args.map((a) => a.replace(/^--(tls|tlsverify)=true$/, '--$1')),
  options: {
    tls: { type: 'boolean', default: false },
    tlsverify: { type: 'boolean', default: false },
    tlscacert: { type: 'string' },
    tlscert: { type: 'string' },
    tlskey: { type: 'string' },
    'metrics-addr': { type: 'string' },
    api: { type: 'string', default: '127.0.0.1:2375' },
    'state-dir': { type: 'string' },
    hostname: { type: 'string' },
    'listen-addr': { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
})
if (!values['state-dir']) {
  console.error(
    'usage: swarmkit-cluster --state-dir DIR [--api HOST:PORT|/path.sock] [--hostname NAME] [--listen-addr HOST:PORT]',
  )
  process.exit(2)
}
const verify = values.tlsverify && !explicitlyOff.has('tlsverify')
const useTls = (values.tls || verify) && !explicitlyOff.has('tls')
let apiTls: Awaited<ReturnType<typeof loadApiTls>> | undefined
try {
  if (useTls)
    apiTls = await loadApiTls({
      verify,
      ...(values.tlscacert ? { cacert: values.tlscacert } : {}),
      ...(values.tlscert ? { cert: values.tlscert } : {}),
      ...(values.tlskey ? { key: values.tlskey } : {}),
    })
  for (const w of checkApiExposure(values.api!, apiTls, explicitlyOff.size > 0).warnings)
    console.error(`WARN ${w}`)
} catch (err) {
  console.error(`swarmkit-cluster: ${(err as Error).message}`)
  process.exit(2)
}
const log = values.quiet ? undefined : (line: string) => console.error(`${new Date().toISOString()} ${line}`)
const node = await startNode({
  stateDir: values['state-dir'],
  apiAddress: values.api!,
  ...(apiTls ? { apiTls } : {}),
  ...(values['metrics-addr'] ? { metricsAddress: values['metrics-addr'] } : {}),
  ...(values.hostname ? { hostname: values.hostname } : {}),
  ...(values['listen-addr'] ? { listenAddr: values['listen-addr'] } : {}),
  ...(log ? { log } : {}),
})
console.log(`Engine API at ${node.dockerHost}: export DOCKER_HOST=${node.dockerHost}`)
if (node.metricsUrl) console.log(`Metrics at ${node.metricsUrl}`)
const stop = () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
