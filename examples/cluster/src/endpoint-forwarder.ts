// A task's endpoint for the routing mesh: an ephemeral TCP port on the node's address, copied to the
// task's own address and target port. The userspace mesh and host-mode ports reach tasks through it.

import { createConnection, createServer, type Socket } from 'node:net'

export interface EndpointForwarder {
  /** Where the mesh reaches the task. */
  readonly endpoint: { readonly address: string; readonly port: number }
  /** Stops listening and cuts the connections in flight. */
  close(): void
}

/** Listens on an ephemeral port of `listen` and copies each connection to `target`. */
export function forwardEndpoint(
  listen: string,
  target: { readonly host: string; readonly port: number },
): Promise<EndpointForwarder> {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.host, port: target.port })
    sockets.add(client)
    sockets.add(upstream)
    const done = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', done).on('close', done)
    upstream.on('error', done).on('close', done)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, listen, () => {
      server.off('error', reject)
      resolve({
        endpoint: { address: listen, port: (server.address() as { port: number }).port },
        close() {
          server.close()
          for (const s of sockets) s.destroy()
          sockets.clear()
        },
      })
    })
  })
}
