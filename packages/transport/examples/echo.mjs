// A runnable tour of @swarmkit/transport: an RPC server and client over TCP on loopback (a call, a
// one-way message, a server stream, a role-gated method), then the same messaging over a seeded
// MemoryNetwork with a partition and healing. Run after `npm run build`:
//   node packages/transport/examples/echo.mjs
import { isTransportError, MemoryNetwork, rpcClient, rpcServer, tcpTransport } from '@swarmkit/transport'

const log = (...args) => console.log('[transport]', ...args)

const methods = {
  echo: { kind: 'call', handler: (payload) => payload },
  note: { kind: 'notify', handler: (payload) => log('server got a one-way message:', payload) },
  count: {
    kind: 'stream',
    handler: async function* (n) {
      for (let i = 1; i <= n; i++) yield i
    },
  },
  // Only managers may propose; a plain TCP peer has no certificate, so no role.
  propose: { kind: 'call', handler: () => 'accepted', roles: ['swarm-manager'] },
}

// 1. TCP on loopback.
const serverTransport = tcpTransport()
const server = rpcServer({ transport: serverTransport, methods })
const address = await server.listen('127.0.0.1:0')
log('listening on', address)

const clientTransport = tcpTransport()
const client = rpcClient({ transport: clientTransport, address })
log('echo ->', await client.call('echo', { hello: 'swarm', bytes: Uint8Array.of(1, 2, 3) }))
client.notify('note', 'fire and forget')
const items = []
for await (const item of client.stream('count', 5)) items.push(item)
log('stream ->', items.join(', '))
try {
  await client.call('propose', { op: 'x' })
} catch (error) {
  if (!isTransportError(error, 'FORBIDDEN')) throw error
  log('propose refused:', error.message)
}
await client.close()
await server.close()
await clientTransport.close()
await serverTransport.close()

// 2. The same over a simulated network: seeded faults, a partition, then healing.
const net = new MemoryNetwork({ seed: 42 })
const memServer = rpcServer({ transport: net.transport('n1'), methods })
await memServer.listen('n1')
const memClient = rpcClient({
  transport: net.transport('n2'),
  address: 'n1',
  reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
})
net.setFaults({ delayMs: [1, 5] })
log('memory echo ->', await memClient.call('echo', 'over the simulated network'))
net.partition(['n1'], ['n2'])
const lost = await memClient.call('echo', 'into the void', { timeoutMs: 100 }).catch((error) => error.code)
log('during the partition ->', lost)
net.heal()
log('after heal ->', await memClient.call('echo', 'back again'))
log(
  'frames sent per node:',
  Object.fromEntries(Object.entries(net.stats()).map(([n, s]) => [n, s.messagesSent])),
)
await memClient.close()
await memServer.close()
log('done')
