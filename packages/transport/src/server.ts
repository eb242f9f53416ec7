import { EventEmitter } from 'eventemitter3'
import { TransportError } from './errors.js'
import { checkSignal } from './internal/abort.js'
import { checkAddress } from './internal/limits.js'
import { type RpcSessionOptions, resolveSessionOptions } from './session/options.js'
import { RpcSession } from './session.js'
import type { AbortOptions, Listener, PeerIdentity, Transport } from './types.js'

/** Options of {@link rpcServer}. */
export interface RpcServerOptions extends RpcSessionOptions {
  readonly transport: Transport
}

/** Events of an {@link RpcServer}. */
export interface RpcServerEvents {
  'session:open': (session: RpcSession) => void
  'session:close': (session: RpcSession, error?: TransportError) => void
  /** An incoming connection failed before it became a session (handshake, authorization), or one broke. */
  'connection:error': (error: TransportError) => void
  /** A handler threw where no caller could be told (one-way messages), or an answer could not be sent. */
  'handler:fail': (method: string, error: unknown) => void
  'request:refuse': (method: string, identity: PeerIdentity | undefined, error: TransportError) => void
}

/**
 * Serves `methods` to every connection accepted on a transport: each connection becomes an
 * {@link RpcSession}, which can also call back into the peer.
 */
export class RpcServer extends EventEmitter<RpcServerEvents> {
  private readonly options: RpcServerOptions
  private listener: Listener | undefined
  private readonly live = new Set<RpcSession>()
  private isClosed = false

  constructor(options: RpcServerOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    const t = options.transport
    if (!t || typeof t.listen !== 'function' || typeof t.dial !== 'function') {
      throw new TypeError('options.transport must be a Transport')
    }
    this.options = { ...options, clock: options.clock ?? t.clock }
    // Check the session options now rather than at the first connection.
    resolveSessionOptions(this.options)
  }

  /** The address listened on, once `listen` resolved. */
  get address(): string | undefined {
    return this.listener?.address
  }

  /** Open sessions. */
  get sessions(): ReadonlySet<RpcSession> {
    return this.live
  }

  /** Listen on `address`; resolves with the address actually bound. */
  async listen(address: string, options?: AbortOptions): Promise<string> {
    checkAddress(address)
    checkSignal(options)
    if (this.isClosed) throw new TransportError('CLOSED', 'server is closed')
    if (this.listener)
      throw new TransportError('ADDRESS_IN_USE', `server already listens on ${this.listener.address}`)
    const listener = await this.options.transport.listen(address, options)
    if (this.isClosed) {
      await listener.close()
      throw new TransportError('CLOSED', 'server is closed')
    }
    this.listener = listener
    listener.on('connection:open', (connection) => {
      if (this.isClosed) {
        connection.abort(new TransportError('CLOSED', 'server is closed'))
        return
      }
      const session = new RpcSession(connection, this.options)
      this.live.add(session)
      session.on('handler:fail', (m, e) => this.emit('handler:fail', m, e))
      session.on('request:refuse', (m, i, e) => this.emit('request:refuse', m, i, e))
      session.on('session:close', (error) => {
        this.live.delete(session)
        if (error) this.emit('connection:error', error)
        this.emit('session:close', session, error)
      })
      this.emit('session:open', session)
    })
    listener.on('connection:error', (error) => this.emit('connection:error', error))
    return listener.address
  }

  /** Stop listening and close every session (their pending calls fail with `CLOSED`). */
  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.isClosed) return
    this.isClosed = true
    await this.listener?.close(options)
    await Promise.all([...this.live].map((s) => s.close(options)))
  }
}

/** Serve `methods` on a transport; call `listen(address)` next. */
export function rpcServer(options: RpcServerOptions): RpcServer {
  return new RpcServer(options)
}
