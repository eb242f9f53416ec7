import { afterAll } from 'vitest'
import { MemoryNetwork, tcpTransport, tlsTransport } from '../src/index.js'
import { transportCompliance } from '../src/testing/index.js'
import { testPki } from './certs.js'

let n = 0
transportCompliance('memory', () => {
  const net = new MemoryNetwork({ seed: ++n })
  return {
    server: net.transport('server'),
    client: net.transport('client'),
    listenAddress: 'server',
    unusedAddress: 'nobody',
    clientIdentity: { commonName: 'client' },
    serverIdentity: { commonName: 'server' },
  }
})

transportCompliance('tcp', () => ({
  server: tcpTransport(),
  client: tcpTransport(),
  listenAddress: '127.0.0.1:0',
  unusedAddress: '127.0.0.1:1',
}))

transportCompliance('tcp with small frames and buffers', () => ({
  server: tcpTransport({ maxFrameBytes: 2 * 1024 * 1024, highWaterMarkBytes: 256 * 1024 }),
  client: tcpTransport({ maxFrameBytes: 2 * 1024 * 1024, highWaterMarkBytes: 256 * 1024 }),
  listenAddress: '127.0.0.1:0',
  unusedAddress: '127.0.0.1:1',
  maxFrameBytes: 2 * 1024 * 1024,
  highWaterMarkBytes: 256 * 1024,
}))

const pki = testPki()
afterAll(() => pki.cleanup())
const manager = pki.issue('node-m1', 'swarm-manager')
const worker = pki.issue('node-w1', 'swarm-worker')

transportCompliance('tls', () => ({
  server: tlsTransport({ ...manager, ca: pki.ca }),
  client: tlsTransport({ ...worker, ca: pki.ca }),
  listenAddress: '127.0.0.1:0',
  unusedAddress: '127.0.0.1:1',
  clientIdentity: { commonName: 'node-w1', organizationalUnit: 'swarm-worker', organization: 'cluster-1' },
  serverIdentity: { commonName: 'node-m1', organizationalUnit: 'swarm-manager', organization: 'cluster-1' },
}))
