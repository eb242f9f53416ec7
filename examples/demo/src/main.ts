import { dockerClusterDemo } from './docker-cluster.js'
import { raftKvFailoverDemo } from './raft-kv-failover.js'
import { secureRpcDemo } from './secure-rpc.js'

const log = (line: string) => console.log(`  ${line}`)
console.log('swarmkit demo\n\n1. join a cluster with a token and talk over mutual TLS')
await secureRpcDemo(log)
console.log('\n2. a replicated key-value store on raft survives losing its leader')
await raftKvFailoverDemo(log)
console.log('\n3. the docker CLI drives a two-node reference cluster')
// `npm run demo -- --keep`: the cluster stays up, its browser view open, until Ctrl-C.
const keep = process.argv.includes('--keep')
await dockerClusterDemo(log, {
  onView: async (url) => {
    log(`the swarm in a browser: ${url}`)
    if (!keep) return
    log('keeping the cluster up (--keep): press Ctrl-C to stop it')
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()))
  },
})
console.log('\ndone')
