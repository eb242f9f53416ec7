import dgram from 'node:dgram'
import net from 'node:net'
import { EventEmitter } from 'eventemitter3'
import { OverlayError } from './errors.js'
import { parseIp } from './internal/ip.js'
import { checkService, listeningOf } from './internal/mesh-spec.js'
import { KernelMesh, type KernelMeshOptions } from './kernel-mesh.js'
import type { PublishMode } from './ports.js'

/** One task endpoint of a published service. */
export interface MeshEndpoint {
  /** Where the task listens: its overlay address (or any address this node can reach). */
  address: string
  /** The task's target port. */
  port: number
  /** The node the task runs on (host-mode ports bind only on the task's node). */
  node?: string
  /** False excludes the endpoint from balancing (e.g. a failing health check). Default true. */
  healthy?: boolean
}

/** A published port of a service and its current endpoints. */
export interface MeshService {
  service: string
  protocol: 'tcp' | 'udp'
  publishedPort: number
  /** `ingress` (default): every node answers and balances over all endpoints. `host`: only nodes with a
   * local endpoint bind, and they forward to their local endpoints only. */
  publishMode?: PublishMode
  endpoints: MeshEndpoint[]
}

/**
 * How the mesh carries connections. `userspace` (default): a TCP and UDP proxy in this process; runs
 * unprivileged, anywhere. `kernel`: nftables NAT rules (DNAT round-robin over the endpoints, masquerade on
 * the way out), as swarm's IPVS ingress does; bytes never enter this process; Linux and root only.
 */
export type RoutingMeshMode = 'userspace' | 'kernel'

/** How a {@link routingMesh} binds published ports and picks endpoints: address, mode, timeouts and limits. */
export interface RoutingMeshOptions {
  /** The address published ports bind on, e.g. this node's address, or `127.0.0.2` to share a machine. */
  host: string
  /** `userspace` (default) or `kernel`; see {@link RoutingMeshMode}. */
  mode?: RoutingMeshMode
  /** Kernel mode: the nftables table, namespace and command runner. */
  kernel?: KernelMeshOptions
  /** This node's ID; needed for host-mode ports. */
  node?: string
  /** TCP connect timeout to an endpoint before trying the next one, ms. Default 5000. */
  connectTimeoutMs?: number
  /** A UDP flow (client address and port) is forgotten after this much silence, ms. Default 30000. */
  udpIdleMs?: number
  /** Most concurrent UDP flows per port; the oldest is dropped beyond it. Default 4096. */
  maxUdpFlows?: number
  /**
   * An endpoint whose connect failed is skipped for this long, ms (unless every endpoint is), so a dead
   * task costs one failed attempt rather than every Nth connection until the control plane notices.
   * Default 10000.
   */
  ejectMs?: number
  /** Clock for ejection, ms. Default `Date.now`. */
  now?: () => number
}

/** What a {@link RoutingMesh} reports: ports bound and released, endpoints that failed, traffic dropped. */
export interface RoutingMeshEvents {
  /** A published port was bound on this node. */
  'port:bound': (e: { protocol: 'tcp' | 'udp'; port: number; service: string }) => void
  /** A published port was released on this node. */
  'port:unbound': (e: { protocol: 'tcp' | 'udp'; port: number; service: string }) => void
  /** Connecting to an endpoint failed; the connection was retried on the next endpoint. */
  'endpoint:failed': (e: { service: string; address: string; port: number; error: Error }) => void
  /** A connection or datagram arrived with no healthy endpoint to send it to; it was dropped. */
  'connection:dropped': (e: { service: string; protocol: 'tcp' | 'udp'; port: number }) => void
}

/** Options of {@link RoutingMesh.close}: a signal to stop waiting for open connections to drain. */
export interface CloseOptions {
  signal?: AbortSignal
}

/**
 * A node's routing mesh: answers on every published port and balances connections (UDP: flows)
 * round-robin over the service's healthy endpoints — as a userspace TCP and UDP proxy (default), or in the
 * kernel as nftables NAT rules (`mode: 'kernel'`). In kernel mode a failed connect is not seen, so
 * `endpoint:failed` and `connection:dropped` are never emitted (mark failing endpoints `healthy: false`),
 * a port with no healthy endpoint is left untranslated (the node itself refuses it), and connections
 * already established when a port changes keep their endpoint until they end.
 */
export interface RoutingMesh extends EventEmitter<RoutingMeshEvents> {
  readonly host: string
  /** How this mesh carries connections. */
  readonly mode: RoutingMeshMode
  /**
   * Publishes (or updates the endpoints of) a service's port. Ingress ports bind at once; host-mode ports
   * bind only while an endpoint on this node exists. `IN_USE` if another service holds the port here,
   * `BIND_FAILED` if the address and port cannot be bound.
   */
  publish(service: MeshService, options?: CloseOptions): Promise<void>
  /** Stops answering on a port; open connections are closed. No-op if not published. */
  unpublish(protocol: 'tcp' | 'udp', port: number, options?: CloseOptions): Promise<void>
  /** The ports this node is listening on now. */
  listening(): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }>
  /** Closes every listener and connection. */
  close(options?: CloseOptions): Promise<void>
}

interface Entry {
  spec: MeshService
  /** Endpoints eligible for balancing (healthy; local only in host mode). */
  pool: MeshEndpoint[]
  next: number
  server: net.Server | undefined
  udp: dgram.Socket | undefined
  sockets: Set<net.Socket>
  flows: Map<string, Flow>
  /** Settles when the bind attempt has finished (either way); a close must wait for it. */
  bound: Promise<void>
  /** `address|port` -> until when (ms) an endpoint that failed to connect is skipped. */
  ejected: Map<string, number>
}

interface Flow {
  upstream: dgram.Socket
  timer: NodeJS.Timeout
  /** Datagrams that arrived before the upstream socket finished connecting (bounded). */
  pending: Buffer[] | undefined
}

const MAX_PENDING = 64

/** Bytes buffered per direction of a proxied TCP connection before the reader is paused. */
const BUFFER = 1 << 20
/**
 * Reads from endpoints go into a fixed buffer of this size, forwarded without a copy (net.Socket's
 * `onread`): one syscall per up to 1 MiB instead of a fresh 64 KiB allocation per read, which halves the
 * proxy's CPU per byte in that direction. Node offers this only on sockets it connects, so the client side
 * (accepted sockets) keeps the default reads.
 */
const READ_BUFFER = 1 << 20
/** At most this many read buffers exist per mesh (64 MiB); connections beyond them read the default way. */
const READ_BUFFERS = 64

class Mesh extends EventEmitter<RoutingMeshEvents> implements RoutingMesh {
  readonly host: string
  readonly mode = 'userspace' as const
  private readonly node: string | undefined
  private readonly connectTimeoutMs: number
  private readonly udpIdleMs: number
  private readonly maxUdpFlows: number
  private readonly ejectMs: number
  private readonly now: () => number
  private readonly family: 4 | 6
  private readonly entries = new Map<string, Entry>()
  private closed = false
  /** Read buffers not lent to a connection, and how many are lent. */
  private readonly spare: Buffer[] = []
  private lent = 0

  constructor(options: RoutingMeshOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    this.family = parseIp(options.host, 'options.host').family
    this.host = options.host
    if (options.node !== undefined && (typeof options.node !== 'string' || options.node.length === 0))
      throw new TypeError('options.node must be a non-empty string')
    this.node = options.node
    this.connectTimeoutMs = positive(options.connectTimeoutMs ?? 5000, 'options.connectTimeoutMs')
    this.udpIdleMs = positive(options.udpIdleMs ?? 30_000, 'options.udpIdleMs')
    this.maxUdpFlows = positive(options.maxUdpFlows ?? 4096, 'options.maxUdpFlows')
    this.ejectMs = positive(options.ejectMs ?? 10_000, 'options.ejectMs')
    if (options.now !== undefined && typeof options.now !== 'function')
      throw new TypeError('options.now must be a function')
    this.now = options.now ?? Date.now
  }

  async publish(service: MeshService, options?: CloseOptions): Promise<void> {
    const spec = checkService(service)
    options?.signal?.throwIfAborted()
    if (this.closed) throw new OverlayError('CLOSED', 'the routing mesh is closed')
    if (spec.publishMode === 'host' && this.node === undefined)
      throw new TypeError('host-mode ports need options.node (this node ID) on the routing mesh')
    const key = `${spec.protocol}/${spec.publishedPort}`
    let entry = this.entries.get(key)
    if (entry !== undefined && entry.spec.service !== spec.service)
      throw new OverlayError(
        'IN_USE',
        `port ${spec.publishedPort}/${spec.protocol} is already published by service ${entry.spec.service}`,
        { holder: entry.spec.service },
      )
    const local =
      spec.publishMode === 'host' ? spec.endpoints.filter((e) => e.node === this.node) : spec.endpoints
    const pool = local.filter((e) => e.healthy !== false)
    if (spec.publishMode === 'host' && local.length === 0) {
      // No task of the service here: a host-mode port is not bound on this node.
      if (entry !== undefined) await this.unpublish(spec.protocol, spec.publishedPort)
      return
    }
    if (entry === undefined) {
      entry = {
        spec,
        pool,
        next: 0,
        server: undefined,
        udp: undefined,
        sockets: new Set(),
        flows: new Map(),
        bound: Promise.resolve(),
        ejected: new Map(),
      }
      this.entries.set(key, entry)
      const binding = spec.protocol === 'tcp' ? this.listenTcp(entry) : this.listenUdp(entry)
      entry.bound = binding.then(
        () => {},
        () => {},
      )
      try {
        await binding
      } catch (err) {
        if (this.entries.get(key) === entry) this.entries.delete(key)
        throw err
      }
      if (this.entries.get(key) !== entry) {
        // Unpublished or closed while binding: do not leave the listener behind.
        await this.shut(entry)
        return
      }
      this.emit('port:bound', { protocol: spec.protocol, port: spec.publishedPort, service: spec.service })
    } else {
      entry.spec = spec
      entry.pool = pool
      // Forget ejections of endpoints that are gone.
      const present = new Set(pool.map((e) => `${e.address}|${e.port}`))
      for (const key of entry.ejected.keys()) if (!present.has(key)) entry.ejected.delete(key)
    }
  }

  async unpublish(protocol: 'tcp' | 'udp', port: number, options?: CloseOptions): Promise<void> {
    if (protocol !== 'tcp' && protocol !== 'udp') throw new TypeError('protocol must be tcp or udp')
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new RangeError('port must be an integer in 1..65535')
    options?.signal?.throwIfAborted()
    const key = `${protocol}/${port}`
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    await this.shut(entry)
    this.emit('port:unbound', { protocol, port, service: entry.spec.service })
  }

  listening(): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }> {
    return listeningOf(this.entries.values())
  }

  async close(options?: CloseOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.closed = true
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map((e) => this.shut(e)))
    // Lent buffers come back as their sockets finish closing; the spare ones can go now.
    this.spare.length = 0
  }

  // Round-robin over the eligible endpoints, skipping `tried` and, while any other is left, ejected ones.
  private pick(entry: Entry, tried: Set<MeshEndpoint>): MeshEndpoint | undefined {
    const pool = entry.pool
    const now = entry.ejected.size > 0 ? this.now() : 0
    let fallback: MeshEndpoint | undefined
    for (let i = 0; i < pool.length; i++) {
      const e = pool[entry.next++ % pool.length]!
      if (entry.next >= 1 << 30) entry.next = 0
      if (tried.has(e)) continue
      if (entry.ejected.size > 0) {
        const key = `${e.address}|${e.port}`
        const until = entry.ejected.get(key)
        if (until !== undefined) {
          if (until > now) {
            fallback ??= e
            continue
          }
          entry.ejected.delete(key)
        }
      }
      return e
    }
    return fallback
  }

  private listenTcp(entry: Entry): Promise<void> {
    const server = net.createServer(
      { allowHalfOpen: true, pauseOnConnect: true, highWaterMark: BUFFER },
      (client) => this.onTcp(entry, client),
    )
    entry.server = server
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(this.bindError(entry, err)))
      server.listen({ host: this.host, port: entry.spec.publishedPort, exclusive: true }, () => {
        server.removeAllListeners('error')
        server.on('error', () => {})
        resolve()
      })
    })
  }

  private onTcp(entry: Entry, client: net.Socket): void {
    entry.sockets.add(client)
    client.setNoDelay(true)
    const tried = new Set<MeshEndpoint>()
    let upstream: net.Socket | undefined
    const done = () => {
      client.destroy()
      upstream?.destroy()
    }
    client.on('error', done)
    client.on('close', () => {
      entry.sockets.delete(client)
      upstream?.destroy()
    })
    const attempt = () => {
      const ep = this.pick(entry, tried)
      if (ep === undefined) {
        this.emit('connection:dropped', {
          service: entry.spec.service,
          protocol: 'tcp',
          port: entry.spec.publishedPort,
        })
        client.destroy()
        return
      }
      tried.add(ep)
      // A lent read buffer goes back once the kernel can no longer hold a view of it: when this socket has
      // closed and, if it ever carried data, the client has too (closing a socket ends its pending writes).
      let lease: Buffer | undefined
      if (this.lent < READ_BUFFERS) {
        lease = this.spare.pop() ?? Buffer.allocUnsafe(READ_BUFFER)
        this.lent++
      }
      let upClosed = false
      let clientClosed = false
      const giveBack = () => {
        if (lease === undefined || !upClosed || (connected && !clientClosed)) return
        if (!this.closed) this.spare.push(lease)
        this.lent--
        lease = undefined
      }
      if (lease !== undefined)
        client.once('close', () => {
          clientClosed = true
          giveBack()
        })
      // Endpoint -> client without a copy: write a view of the read buffer; if the kernel did not take it
      // all at once, stop reading (return false) until that write is done, so the buffer is not reused
      // under it.
      let waiting = false
      const written = () => {
        if (waiting) {
          waiting = false
          up.resume()
        }
      }
      const onread =
        lease === undefined
          ? undefined
          : {
              buffer: lease,
              callback: (n: number, buf: Uint8Array): boolean => {
                client.write(buf.subarray(0, n), written)
                if (client.writableLength === 0) return true
                waiting = true
                return false
              },
            }
      // highWaterMark is a stream.Duplex option that net.Socket passes on (missing from its types).
      const up = new net.Socket({
        allowHalfOpen: true,
        highWaterMark: BUFFER,
        ...(onread === undefined ? {} : { onread }),
      } as net.SocketConstructorOpts)
      up.connect({ host: ep.address, port: ep.port, noDelay: true })
      upstream = up
      entry.sockets.add(up)
      const timer = setTimeout(
        () => up.destroy(new Error(`connect timeout after ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      )
      timer.unref()
      let connected = false
      up.on('close', () => {
        clearTimeout(timer)
        entry.sockets.delete(up)
        upClosed = true
        giveBack()
      })
      up.once('connect', () => {
        connected = true
        clearTimeout(timer)
        relay(client, up)
        if (onread === undefined) relay(up, client)
        else up.on('end', () => client.end())
        client.resume()
      })
      up.on('error', (error) => {
        clearTimeout(timer)
        if (connected || client.destroyed) return done()
        entry.ejected.set(`${ep.address}|${ep.port}`, this.now() + this.ejectMs)
        this.emit('endpoint:failed', {
          service: entry.spec.service,
          address: ep.address,
          port: ep.port,
          error,
        })
        up.destroy()
        attempt()
      })
    }
    attempt()
  }

  private listenUdp(entry: Entry): Promise<void> {
    const sock = dgram.createSocket(this.family === 4 ? 'udp4' : 'udp6')
    entry.udp = sock
    sock.on('message', (msg, rinfo) => this.onDatagram(entry, sock, msg, rinfo))
    return new Promise((resolve, reject) => {
      sock.once('error', (err) => {
        sock.close()
        reject(this.bindError(entry, err))
      })
      sock.bind({ address: this.host, port: entry.spec.publishedPort, exclusive: true }, () => {
        sock.removeAllListeners('error')
        sock.on('error', () => {})
        resolve()
      })
    })
  }

  private onDatagram(entry: Entry, sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`
    const flow = entry.flows.get(key)
    if (flow === undefined) {
      const ep = this.pick(entry, new Set())
      if (ep === undefined) {
        this.emit('connection:dropped', {
          service: entry.spec.service,
          protocol: 'udp',
          port: entry.spec.publishedPort,
        })
        return
      }
      if (entry.flows.size >= this.maxUdpFlows) {
        const [oldest] = entry.flows.keys()
        if (oldest !== undefined) this.endFlow(entry, oldest)
      }
      const upstream = dgram.createSocket(parseIp(ep.address, 'address').family === 4 ? 'udp4' : 'udp6')
      upstream.on('message', (reply) => {
        const f = entry.flows.get(key)
        f?.timer.refresh()
        try {
          sock.send(reply, rinfo.port, rinfo.address)
        } catch {
          // the listener closed under this flow
          this.endFlow(entry, key)
        }
      })
      upstream.on('error', () => this.endFlow(entry, key))
      const timer = setTimeout(() => this.endFlow(entry, key), this.udpIdleMs)
      timer.unref()
      const created: Flow = { upstream, timer, pending: [msg] }
      upstream.connect(ep.port, ep.address, () => {
        const queued = created.pending ?? []
        created.pending = undefined
        for (const m of queued) upstream.send(m)
      })
      entry.flows.set(key, created)
      return
    }
    flow.timer.refresh()
    if (flow.pending === undefined) flow.upstream.send(msg)
    else if (flow.pending.length < MAX_PENDING) flow.pending.push(msg)
  }

  private endFlow(entry: Entry, key: string): void {
    const flow = entry.flows.get(key)
    if (flow === undefined) return
    entry.flows.delete(key)
    clearTimeout(flow.timer)
    try {
      flow.upstream.close()
    } catch {
      // already closed
    }
  }

  private async shut(entry: Entry): Promise<void> {
    await entry.bound
    for (const s of entry.sockets) s.destroy()
    entry.sockets.clear()
    for (const key of [...entry.flows.keys()]) this.endFlow(entry, key)
    if (entry.server !== undefined) {
      const server = entry.server
      await new Promise<void>((r) => server.close(() => r()))
    }
    if (entry.udp !== undefined) {
      const udp = entry.udp
      await new Promise<void>((r) => {
        try {
          udp.close(() => r())
        } catch {
          r()
        }
      })
    }
  }

  private bindError(entry: Entry, err: Error): OverlayError {
    return new OverlayError(
      'BIND_FAILED',
      `cannot bind ${entry.spec.protocol} ${this.host}:${entry.spec.publishedPort} for service ${entry.spec.service}: ${err.message}`,
      { cause: err },
    )
  }
}

// Copies one direction with backpressure: pause the reader while the writer holds more than BUFFER bytes.
// Leaner than stream.pipe() on this hot path, with a larger buffer than the 16 KiB default so both sockets
// stay busy. The writer is corked while a burst of reads arrives (libuv reads up to 32 chunks of 64 KiB per
// poll) and uncorked once the loop turns, so a burst goes out in one writev instead of one write each.
function relay(from: net.Socket, to: net.Socket): void {
  let corked = false
  const uncork = () => {
    corked = false
    to.uncork()
  }
  from.on('data', (chunk: Buffer) => {
    if (!corked) {
      corked = true
      to.cork()
      setImmediate(uncork)
    }
    if (!to.write(chunk)) from.pause()
  })
  to.on('drain', () => from.resume())
  from.on('end', () => {
    if (corked) uncork()
    to.end()
  })
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`)
  return n
}

/**
 * Creates a node's routing mesh answering on `options.host`: a userspace proxy by default; with
 * `mode: 'kernel'` nftables rules in the table `options.kernel.table` (root only: the first call rejects
 * with `OverlayError` `PERMISSION_DENIED`, or `UNSUPPORTED` without Linux or `nft`, never falls back).
 */
export function routingMesh(options: RoutingMeshOptions): RoutingMesh {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const mode = options.mode ?? 'userspace'
  if (mode === 'kernel') return new KernelMesh(options)
  if (mode !== 'userspace') throw new TypeError('options.mode must be userspace or kernel')
  return new Mesh(options)
}
