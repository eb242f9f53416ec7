// A node's endpoint on the memory network (a Transport) and its listeners: address checks, dialing through
// partitions, and a backlog so that connections made before anyone listens are not lost.
import { EventEmitter } from 'eventemitter3'
import { TransportError } from '../errors.js'
import { checkSignal, throwIfAborted } from '../internal/abort.js'
import { checkAddress } from '../internal/limits.js'
import type {
  AbortOptions,
  Clock,
  Connection,
  DialOptions,
  Listener,
  ListenerEvents,
  PeerIdentity,
  Transport,
} from '../types.js'
import { MemoryConnection } from './connection.js'
import type { MemoryNetwork, MemoryNodeStats } from './network.js'

/** The node part of a memory address (`name` or `name:service`). */
function nodeOf(address: string): string {
  const i = address.indexOf(':')
  return i < 0 ? address : address.slice(0, i)
}

/** The endpoint of one node (see {@link MemoryNetwork.transport}). */
export class MemoryTransport implements Transport {
  readonly protocol = 'memory'
  readonly clock: Clock
  private closed = false
  private readonly listeners = new Set<MemoryListener>()
  private readonly connections = new Set<MemoryConnection>()
  readonly stats: MemoryNodeStats

  constructor(
    readonly network: MemoryNetwork,
    readonly name: string,
    readonly identity: PeerIdentity,
  ) {
    this.clock = network.clock
    this.stats = network.counter(name)
  }

  async listen(address: string, options?: AbortOptions): Promise<Listener> {
    checkAddress(address)
    checkSignal(options)
    throwIfAborted(options?.signal, 'listen')
    if (this.closed) throw new TransportError('CLOSED', `memory transport ${this.name} is closed`)
    if (nodeOf(address) !== this.name) {
      throw new TypeError(`address must be this node's name (${this.name}) or ${this.name}:<service>`)
    }
    if (this.network.listeners.has(address)) {
      throw new TransportError('ADDRESS_IN_USE', `${address} is already listened on`)
    }
    const listener = new MemoryListener(this, address)
    this.network.listeners.set(address, listener)
    this.listeners.add(listener)
    return listener
  }

  async dial(address: string, options?: DialOptions): Promise<Connection> {
    checkAddress(address)
    checkSignal(options)
    throwIfAborted(options?.signal, 'dial')
    if (this.closed) throw new TransportError('CLOSED', `memory transport ${this.name} is closed`)
    const listener = this.network.listeners.get(address)
    const target = nodeOf(address)
    if (!listener) throw new TransportError('DIAL_FAILED', `nothing listens on ${address}`)
    if (!this.network.reachable(this.name, target) || !this.network.reachable(target, this.name)) {
      throw new TransportError('DIAL_FAILED', `${address} is unreachable from ${this.name}`)
    }
    const limits = this.network.limits
    const local = new MemoryConnection(this, target, address, listener.owner.identity, true, limits)
    const remote = new MemoryConnection(listener.owner, this.name, this.name, this.identity, false, limits)
    local.peer = remote
    remote.peer = local
    this.connections.add(local)
    listener.owner.connections.add(remote)
    listener.accept(remote)
    return local
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    for (const l of [...this.listeners]) await l.close()
    for (const c of [...this.connections]) await c.close()
    this.network.release(this)
  }

  /** @internal */
  forget(item: MemoryListener | MemoryConnection): void {
    if (item instanceof MemoryListener) this.listeners.delete(item)
    else this.connections.delete(item)
  }
}

/** A listener on one memory address. */
export class MemoryListener extends EventEmitter<ListenerEvents> implements Listener {
  private closed = false
  /**
   * Connections that arrived before anyone listened for them. Over TCP and TLS a connection is accepted in a
   * later turn of the event loop than the one `listen` resolved in, so a handler attached right after
   * `await listen()` sees every connection; here a dial may run in between (from another promise callback),
   * so such connections wait for the first handler instead of being lost.
   */
  private backlog: MemoryConnection[] = []

  constructor(
    readonly owner: MemoryTransport,
    readonly address: string,
  ) {
    super()
  }

  /** @internal */
  accept(c: MemoryConnection): void {
    if (this.listenerCount('connection:open') > 0) this.emit('connection:open', c)
    else this.backlog.push(c)
  }

  override on<T extends EventEmitter.EventNames<ListenerEvents>>(
    event: T,
    fn: EventEmitter.EventListener<ListenerEvents, T>,
    context?: unknown,
  ): this {
    super.on(event, fn, context)
    if (event === 'connection:open' && this.backlog.length > 0) {
      const waiting = this.backlog
      this.backlog = []
      for (const c of waiting) if (!c.closed) this.emit('connection:open', c)
    }
    return this
  }

  override addListener<T extends EventEmitter.EventNames<ListenerEvents>>(
    event: T,
    fn: EventEmitter.EventListener<ListenerEvents, T>,
    context?: unknown,
  ): this {
    return this.on(event, fn, context)
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    for (const c of this.backlog.splice(0)) c.abort()
    if (this.owner.network.listeners.get(this.address) === this)
      this.owner.network.listeners.delete(this.address)
    this.owner.forget(this)
    this.emit('listener:close')
  }
}
