/**
 * @packageDocumentation
 * raft-kv: a replicated key-value server on `@swarmkit/raft` (RaftNode + FileLogStorage) and the TCP
 * transport, one process per member, with a small pipelined TCP client protocol and its client library.
 */
export { KvClient, KvError } from './client.js'
export { encodePut, KvStateMachine, MAX_KEY_BYTES } from './kv.js'
export { main as runKvServerCli } from './main.js'
export { type KvServer, type KvServerOptions, startKvServer } from './server.js'
