// A task's endpoints for the userspace routing mesh: an ephemeral TCP or UDP port on the node's address per
// published target port, copied to the task's own address and that port. The userspace mesh and host-mode
// ports reach tasks through them where the kernel path (kernel-ingress.ts) cannot run.

import { createSocket } from 'node:dgram'
import { createConnection, createServer, isIPv6, type Socket } from 'node:net'

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

/** Listens on an ephemeral UDP port of `listen` and relays each client's datagrams to `target` and back. */
export function forwardUdpEndpoint(
  listen: string,
  target: { readonly host: string; readonly port: number },
  limits: { readonly idleMs?: number; readonly maxFlows?: number } = {},
): Promise<EndpointForwarder> {
  const idleMs = limits.idleMs ?? 30_000
  const maxFlows = limits.maxFlows ?? 1024
  const family = isIPv6(listen) ? 'udp6' : 'udp4'
  const server = createSocket(family)
  // One upstream socket per client address and port, so the task's replies find their way back.
  const flows = new Map<string, { upstream: Socket4or6; timer: NodeJS.Timeout }>()
  const end = (key: string) => {
    const f = flows.get(key)
    if (!f) return
    flows.delete(key)
    clearTimeout(f.timer)
    f.upstream.close()
  }
  server.on('message', (msg, from) => {
    const key = `${from.address}|${from.port}`
    let f = flows.get(key)
    if (!f) {
      if (flows.size >= maxFlows) end(flows.keys().next().value!)
      const upstream = createSocket(isIPv6(target.host) ? 'udp6' : 'udp4')
      upstream.on('message', (reply) => {
        flows.get(key)?.timer.refresh()
        server.send(reply, from.port, from.address)
      })
      upstream.on('error', () => end(key))
      const timer = setTimeout(() => end(key), idleMs)
      timer.unref()
      f = { upstream, timer }
      flows.set(key, f)
    }
    f.timer.refresh()
    f.upstream.send(msg, target.port, target.host)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.bind(0, listen, () => {
      server.off('error', reject)
      server.on('error', () => {})
      resolve({
        endpoint: { address: listen, port: server.address().port },
        close() {
          for (const key of [...flows.keys()]) end(key)
          server.close()
        },
      })
    })
  })
}

type Socket4or6 = ReturnType<typeof createSocket>

/** Where a task answers for the userspace mesh: a forwarder on the node per published target port. */
export interface TaskEndpoint {
  readonly address: string
  /** The first TCP target port's forwarder (or the first one): what the mesh reached before per-port ones. */
  readonly port: number
  readonly ports: ReadonlyArray<{
    readonly protocol: 'tcp' | 'udp'
    readonly targetPort: number
    readonly port: number
  }>
}

/**
 * Forwarders on `listen` to every distinct TCP and UDP target port in `ports`, at `host` (the task's
 * address); undefined endpoint when nothing is published.
 */
export async function forwardTaskPorts(
  listen: string,
  host: string,
  ports: ReadonlyArray<{ readonly protocol: string; readonly targetPort: number }>,
): Promise<{ endpoint: TaskEndpoint | undefined; close(): void }> {
  const wanted = new Map<string, { protocol: 'tcp' | 'udp'; targetPort: number }>()
  for (const p of ports)
    if ((p.protocol === 'tcp' || p.protocol === 'udp') && !wanted.has(`${p.protocol}/${p.targetPort}`))
      wanted.set(`${p.protocol}/${p.targetPort}`, { protocol: p.protocol, targetPort: p.targetPort })
  const made: EndpointForwarder[] = []
  const close = () => {
    for (const f of made) f.close()
  }
  const out: Array<{ protocol: 'tcp' | 'udp'; targetPort: number; port: number }> = []
  try {
    for (const p of wanted.values()) {
      const target = { host, port: p.targetPort }
      const f = await (p.protocol === 'tcp'
        ? forwardEndpoint(listen, target)
        : forwardUdpEndpoint(listen, target))
      made.push(f)
      out.push({ ...p, port: f.endpoint.port })
    }
  } catch (err) {
    close()
    throw err
  }
  const first = out.find((p) => p.protocol === 'tcp') ?? out[0]
  return { endpoint: first ? { address: listen, port: first.port, ports: out } : undefined, close }
}
