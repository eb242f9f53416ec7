// One raft-kv member as a process:
//   node dist/main.js --id n1 --data ./data/n1 --client 127.0.0.1:8001 \
//     --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003
// Prints `ready <clientAddress>` once serving, and `leader <id> term <n>` on each leader change.
import { parseArgs } from 'node:util'
import { startKvServer } from './server.js'

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: 'string' },
      data: { type: 'string' },
      client: { type: 'string', default: '127.0.0.1:0' },
      peers: { type: 'string' },
      'preallocate-bytes': { type: 'string' },
    },
  })
  if (!values.id || !values.data || !values.peers) {
    throw new TypeError(
      'usage: --id ID --data DIR --peers id=host:port,... [--client host:port] [--preallocate-bytes N]',
    )
  }
  const prealloc = values['preallocate-bytes']
  if (prealloc !== undefined && !/^\d+$/.test(prealloc))
    throw new TypeError(`--preallocate-bytes wants a byte count, not ${JSON.stringify(prealloc)}`)
  const peers = values.peers.split(',').map((p) => {
    const [id, address] = p.split('=')
    if (!id || !address) throw new TypeError(`bad peer ${JSON.stringify(p)}: want id=host:port`)
    return { id, address }
  })
  const server = await startKvServer({
    id: values.id,
    peers,
    dataDir: values.data,
    clientAddress: values.client!,
    ...(prealloc !== undefined && { preallocateBytes: Number(prealloc) }),
    log: (line) => process.stdout.write(`${line}\n`),
  })
  process.stdout.write(`ready ${server.clientAddress}\n`)
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
