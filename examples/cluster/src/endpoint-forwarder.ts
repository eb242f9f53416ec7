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
  // Half-open on both sides: a client that sends its request and shuts down its writing side (nc, many
  // scripts) still gets the whole answer.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ host: target.host, port: target.port, allowHalfOpen: true })
    sockets.add(client)
    sockets.add(upstream)
    let closed = 0
    const fail = () => {
      client.destroy()
      upstream.destroy()
    }
    const gone = (s: Socket) => () => {
      sockets.delete(s)
      if (++closed === 2)
        return // One side is fully closed: the other has nothing more to exchange once its own data is out.
      ;(s === client ? upstream : client).end()
    }
    client.on('error', fail).on('close', gone(client))
    upstream.on('error', fail).on('close', gone(upstream))
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
