import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { EventEmitter } from 'eventemitter3'
import { systemClock } from './clock.js'
import { TransportError } from './errors.js'
import { abortedError, checkSignal, throwIfAborted } from './internal/abort.js'
import { formatHostPort, parseHostPort } from './internal/address.js'
import { checkAddress, positiveInt, type ResolvedLimits, resolveLimits } from './internal/limits.js'
import { StreamConnection } from './internal/stream-connection.js'
import type {
  AbortOptions,
  Clock,
  Connection,
  DialOptions,
  FrameLimits,
  Listener,
  ListenerEvents,
  PeerIdentity,
  Transport,
} from './types.js'

/** Options of {@link tcpTransport}. */
export interface TcpTransportOptions extends FrameLimits {
  /** Dial timeout in ms (default 10,000). */
  readonly connectTimeoutMs?: number | undefined
  /** TCP keepalive probe delay in ms (default 15,000; 0 turns keepalive off). */
  readonly keepAliveMs?: number | undefined
  /** Most connections a listener holds at once; more are refused (default 10,000). */
  readonly maxConnections?: number | undefined
  /** Clock for timeouts (default: real time). */
  readonly clock?: Clock | undefined
}

export interface ResolvedStreamOptions {
  limits: ResolvedLimits
  connectTimeoutMs: number
  keepAliveMs: number
  maxConnections: number
  clock: Clock
}

export function resolveStreamOptions(options: TcpTransportOptions | undefined): ResolvedStreamOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  const keepAliveMs = options?.keepAliveMs ?? 15_000
  if (typeof keepAliveMs !== 'number' || !Number.isSafeInteger(keepAliveMs) || keepAliveMs < 0) {
    throw new RangeError('options.keepAliveMs must be an integer >= 0')
  }
  const clock = options?.clock ?? systemClock
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function') {
    throw new TypeError('options.clock must be a Clock')
  }
  return {
    limits: resolveLimits(options),
    connectTimeoutMs: positiveInt(options?.connectTimeoutMs, 10_000, 'options.connectTimeoutMs'),
    keepAliveMs,
    maxConnections: positiveInt(options?.maxConnections, 10_000, 'options.maxConnections'),
    clock,
  }
}

/** Hooks that make the stream transport TCP or TLS. */
export interface StreamFlavor {
  readonly protocol: string
  createServer(
    onSocket: (socket: Socket, identity: PeerIdentity | undefined) => void,
    onError: (e: TransportError) => void,
  ): Server
  /** Connect and resolve once the socket is ready (for TLS: handshake done and the peer authorized). */
  connect(host: string, port: number): { socket: Socket; ready: Promise<PeerIdentity | undefined> }
}

/** TCP and TLS share everything but the socket setup. */
export class StreamTransport implements Transport {
  readonly protocol: string
  readonly clock: Clock
  private closed = false
  private readonly listeners = new Set<StreamListener>()
  private readonly connections = new Set<StreamConnection>()

  constructor(
    private readonly flavor: StreamFlavor,
    readonly options: ResolvedStreamOptions,
  ) {
    this.protocol = flavor.protocol
    this.clock = options.clock
  }

  async listen(address: string, options?: AbortOptions): Promise<Listener> {
    checkAddress(address)
    checkSignal(options)
    throwIfAborted(options?.signal, 'listen')
    const { host, port } = parseHostPort(address)
    if (this.closed) throw new TransportError('CLOSED', `${this.protocol} transport is closed`)
    const listener = new StreamListener(this, this.flavor)
    await listener.start(host, port)
    if (this.closed) {
      await listener.close()
      throw new TransportError('CLOSED', `${this.protocol} transport is closed`)
    }
    this.listeners.add(listener)
    return listener
  }

  async dial(address: string, options?: DialOptions): Promise<Connection> {
    checkAddress(address)
    checkSignal(options)
    const timeoutMs = positiveInt(options?.timeoutMs, this.options.connectTimeoutMs, 'options.timeoutMs')
    const { host, port } = parseHostPort(address)
    throwIfAborted(options?.signal, 'dial')
    if (this.closed) throw new TransportError('CLOSED', `${this.protocol} transport is closed`)
    const { socket, ready } = this.flavor.connect(host, port)
    const signal = options?.signal
    let timer: unknown
    let onAbort: (() => void) | undefined
    try {
      const identity = await new Promise<PeerIdentity | undefined>((resolve, reject) => {
        timer = this.clock.setTimeout(() => {
          reject(new TransportError('TIMEOUT', `dial ${address} timed out after ${timeoutMs} ms`))
        }, timeoutMs)
        if (signal) {
          onAbort = () => reject(abortedError(signal, `dial ${address}`))
          signal.addEventListener('abort', onAbort, { once: true })
        }
        ready.then(resolve, (error: unknown) => {
          reject(
            error instanceof TransportError
              ? error
              : new TransportError('DIAL_FAILED', `dial ${address}: ${(error as Error)?.message ?? error}`, {
                  cause: error,
                }),
          )
        })
      })
      if (this.closed) throw new TransportError('CLOSED', `${this.protocol} transport is closed`)
      const local = formatHostPort(socket.localAddress ?? '?', socket.localPort ?? 0)
      const connection = this.adopt(socket, local, address, identity, true)
      return connection
    } catch (error) {
      socket.destroy()
      ready.catch(() => undefined)
      throw error
    } finally {
      this.clock.clearTimeout(timer)
      if (onAbort) signal!.removeEventListener('abort', onAbort)
    }
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.listeners].map((l) => l.close()))
    await Promise.all([...this.connections].map((c) => c.close(options)))
  }

  /** @internal */
  adopt(
    socket: Socket,
    local: string,
    remote: string,
    identity: PeerIdentity | undefined,
    outbound: boolean,
  ): StreamConnection {
    socket.setNoDelay(true)
    if (this.options.keepAliveMs > 0) socket.setKeepAlive(true, this.options.keepAliveMs)
    const connection = new StreamConnection(
      socket,
      local,
      remote,
      identity,
      outbound,
      this.options.limits,
      this.clock,
    )
    this.connections.add(connection)
    void connection.whenClosed().then(() => this.connections.delete(connection))
    return connection
  }

  /** @internal */
  forget(listener: StreamListener): void {
    this.listeners.delete(listener)
  }
}

class StreamListener extends EventEmitter<ListenerEvents> implements Listener {
  address = ''
  private server: Server | undefined
  private closed = false

  constructor(
    private readonly owner: StreamTransport,
    private readonly flavor: StreamFlavor,
  ) {
    super()
  }

  start(host: string, port: number): Promise<void> {
    const server = this.flavor.createServer(
      (socket, identity) => this.accept(socket, identity),
      (error) => this.emit('connection:error', error),
    )
    server.maxConnections = this.owner.options.maxConnections
    this.server = server
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          error.code === 'EADDRINUSE'
            ? new TransportError('ADDRESS_IN_USE', `${formatHostPort(host, port)} is in use`, {
                cause: error,
              })
            : new TransportError(
                'LISTEN_FAILED',
                `listen on ${formatHostPort(host, port)}: ${error.message}`,
                {
                  cause: error,
                },
              ),
        )
      }
      server.once('error', onError)
      server.listen({ host, port }, () => {
        server.off('error', onError)
        // An error after listening (rare: EMFILE on accept) must not crash the process.
        server.on('error', (error) =>
          this.emit('connection:error', new TransportError('LISTEN_FAILED', error.message, { cause: error })),
        )
        const bound = server.address()
        const actualPort = typeof bound === 'object' && bound ? bound.port : port
        this.address = formatHostPort(host, actualPort)
        resolve()
      })
    })
  }

  private accept(socket: Socket, identity: PeerIdentity | undefined): void {
    if (this.closed) {
      socket.destroy()
      return
    }
    const remote = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0)
    const local = formatHostPort(socket.localAddress ?? '?', socket.localPort ?? 0)
    const connection = this.owner.adopt(socket, local, remote, identity, false)
    this.emit('connection:open', connection)
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    this.owner.forget(this)
    const server = this.server
    // Stops accepting at once; the callback would wait for every accepted connection to end.
    server?.close()
    this.emit('listener:close')
  }
}

/** A TCP transport (`node:net`): addresses are `host:port`; no peer identity. */
export function tcpTransport(options?: TcpTransportOptions): Transport {
  const resolved = resolveStreamOptions(options)
  return new StreamTransport(
    {
      protocol: 'tcp',
      createServer: (onSocket, onError) => {
        const server = createServer({ noDelay: true })
        void onError
        server.on('connection', (socket) => onSocket(socket, undefined))
        return server
      },
      connect: (host, port) => {
        const socket = netConnect({ host, port, noDelay: true })
        const ready = new Promise<PeerIdentity | undefined>((resolve, reject) => {
          socket.once('connect', () => {
            socket.off('error', reject)
            resolve(undefined)
          })
          socket.once('error', reject)
        })
        socket.on('error', () => {})
        return { socket, ready }
      },
    },
    resolved,
  )
}
