/**
 * @packageDocumentation
 * `@swarmkit/transport`: length-prefixed frames over pluggable transports (memory with deterministic
 * fault injection, TCP, mutual TLS 1.3) and the messaging every swarmkit component speaks over them:
 * msgpack-encoded request/response calls with timeouts and cancellation, one-way messages, server
 * streams with credit-based backpressure, and per-method authorization by role.
 *
 * ```ts
 * import { MemoryNetwork, rpcServer, rpcClient } from '@swarmkit/transport'
 * const net = new MemoryNetwork({ seed: 42 })
 * const server = rpcServer({
 *   transport: net.transport('n1'),
 *   methods: { echo: { kind: 'call', handler: (payload) => payload } },
 * })
 * await server.listen('n1')
 * const client = rpcClient({ transport: net.transport('n2'), address: 'n1' })
 * await client.call('echo', 'hello') // 'hello'
 * ```
 */

export {
  type ReconnectOptions,
  RpcClient,
  type RpcClientEvents,
  type RpcClientOptions,
  rpcClient,
} from './client.js'
export { ManualClock, systemClock } from './clock.js'
export { type Codec, type CodecOptions, messageCodec } from './codec.js'
export { isTransportError, type RemoteErrorInfo, TransportError, type TransportErrorCode } from './errors.js'
export { seededRandom } from './internal/random.js'
export {
  type LinkFaults,
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNodeStats,
  type MemoryTransportFactoryOptions,
  type MemoryTransportOptions,
  memoryTransport,
} from './memory.js'
export { RpcServer, type RpcServerEvents, type RpcServerOptions, rpcServer } from './server.js'
export {
  type CallMethod,
  type CallOptions,
  type MethodAccess,
  type MethodAuthorizer,
  type MethodContext,
  type MethodSpec,
  type Methods,
  type NotifyMethod,
  RpcSession,
  type RpcSessionEvents,
  type RpcSessionOptions,
  type RpcStream,
  rpcSession,
  type StreamMethod,
  type StreamOptions,
} from './session.js'
export { type TcpTransportOptions, tcpTransport } from './tcp.js'
export {
  identityOf,
  type TlsCredentials,
  type TlsTransport,
  type TlsTransportOptions,
  tlsTransport,
} from './tls.js'
export type {
  AbortOptions,
  Clock,
  Connection,
  ConnectionEvents,
  DialOptions,
  FrameLimits,
  Listener,
  ListenerEvents,
  PeerIdentity,
  Transport,
} from './types.js'
