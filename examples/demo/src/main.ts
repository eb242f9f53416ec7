import { dockerClusterDemo } from './docker-cluster.js'
import { raftKvFailoverDemo } from './raft-kv-failover.js'
import { secureRpcDemo } from './secure-rpc.js'

const log = (line: string) => console.log(`  ${line}`)
console.log('swarmkit demo\n\n1. join a cluster with a token and talk over mutual TLS')
await secureRpcDemo(log)
console.log('\n2. a replicated key-value store on raft survives losing its leader')
await raftKvFailoverDemo(log)
console.log('\n3. the docker CLI drives a two-node reference cluster')
await dockerClusterDemo(log)
console.log('\ndone')
