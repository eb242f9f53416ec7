import type { EventEmitter } from 'eventemitter3'
import type { TransportError } from './errors.js'

/** Options every async method accepts. */
export interface AbortOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * A source of time and timers. `systemClock` uses the real ones; `ManualClock` is virtual time that a
 * simulation advances itself, so runs replay exactly. Raft's driver takes this one. `@swarmkit/pki` and
 * `@swarmkit/scheduler` each declare their own `Clock`: neither may import transport (package layering in
 * docs/architecture.md), and both read wall-clock time (certificate validity, task timestamps).
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/**
 * Who the peer of a connection is. For TLS: the subject of the peer's certificate (in swarm: CN = node
 * ID, OU = role, O = cluster ID). For the memory transport: what the endpoint was created with (by
 * default `commonName` is the node name). Plain TCP has no identity.
 */
export interface PeerIdentity {
  readonly commonName: string
  readonly organizationalUnit?: string | undefined
  readonly organization?: string | undefined
  /** The peer's leaf certificate (DER), for TLS. */
  readonly certificate?: Uint8Array | undefined
  /** SHA-256 fingerprint of the peer's certificate as colon-separated hex, for TLS. */
  readonly fingerprint256?: string | undefined
}

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  /** One whole frame arrived. The array may be a view into a larger buffer: copy it to keep it long. */
  'frame:receive': (frame: Uint8Array) => void
  /** The outgoing buffer fell below the high-water mark after a `send` returned false. */
  'connection:drain': () => void
  /** The connection closed; `error` is set when it closed because something went wrong. */
  'connection:close': (error?: TransportError) => void
}

/**
 * A connection carrying length-prefixed frames in order, both ways. Frames are delivered whole or not
 * at all; a frame over `maxFrameBytes` or a malformed stream closes the connection with a
 * `TransportError`.
 */
export interface Connection extends EventEmitter<ConnectionEvents> {
  /** Unique within the process. */
  readonly id: number
  readonly localAddress: string
  readonly remoteAddress: string
  /** The authenticated peer (TLS, memory), or undefined (plain TCP). */
  readonly remoteIdentity: PeerIdentity | undefined
  /** True for the side that dialed. */
  readonly outbound: boolean
  readonly maxFrameBytes: number
  /**
   * Bytes queued for sending and not yet handed to the operating system (or the peer), each frame counted with
   * its 4-byte length prefix (by every transport, the memory one included).
   */
  readonly bufferedBytes: number
  /** True while open and below the high-water mark (what the last `send` would have returned). */
  readonly writable: boolean
  /** True once close began or the connection failed; `send` then throws. */
  readonly closed: boolean
  /**
   * Queue one frame. The frame is always queued when `send` returns (false included) and is delivered in
   * order with every other frame of this connection unless the connection closes first. Returns false when,
   * with this frame, `bufferedBytes` is over the high-water mark: wait for `connection:drain` before sending
   * much more (one drain follows each stretch of false returns, once `bufferedBytes` is back at or under the
   * mark; none after the connection closed). Going over the buffer limit closes the connection with
   * `BUFFER_OVERFLOW`. The transport may hold on to `frame` until it is written: do not modify it.
   * Throws a `TransportError` (`CLOSED`, `FRAME_TOO_LARGE`, `BUFFER_OVERFLOW`); then nothing was queued.
   */
  send(frame: Uint8Array): boolean
  /** Send what is queued, then close. Resolves once closed; never rejects. */
  close(options?: AbortOptions): Promise<void>
  /** Close at once, dropping what is queued; `error` is reported in `connection:close`. */
  abort(error?: TransportError): void
}

/** Events of a {@link Listener}. */
export interface ListenerEvents {
  /** A peer connected (and, for TLS, authenticated and authorized). */
  'connection:open': (connection: Connection) => void
  /** An incoming connection failed before it was handed out (handshake failed, peer refused). */
  'connection:error': (error: TransportError) => void
  'listener:close': () => void
}

/** Accepts connections on one address. */
export interface Listener extends EventEmitter<ListenerEvents> {
  /** The address it listens on, with the port filled in when 0 was asked for. */
  readonly address: string
  /** Stop accepting; connections already accepted stay open. */
  close(options?: AbortOptions): Promise<void>
}

/** Options of `dial`. */
export interface DialOptions extends AbortOptions {
  /** Give up after this long (default: the transport's `connectTimeoutMs`). */
  readonly timeoutMs?: number | undefined
}

/**
 * Opens listeners and connections. Addresses are `host:port` for TCP and TLS, node names for the
 * memory transport.
 */
export interface Transport {
  /** `'memory'`, `'tcp'` or `'tls'`. */
  readonly protocol: string
  /** The clock the transport schedules with; the messaging layer uses it for timeouts and backoff. */
  readonly clock: Clock
  listen(address: string, options?: AbortOptions): Promise<Listener>
  dial(address: string, options?: DialOptions): Promise<Connection>
  /** Close every listener and connection this transport opened. */
  close(options?: AbortOptions): Promise<void>
}

/** Limits shared by every transport. */
export interface FrameLimits {
  /** Largest frame accepted or sent, in bytes (default 4 MiB). */
  readonly maxFrameBytes?: number | undefined
  /** `send` returns false above this many queued bytes (default 1 MiB). */
  readonly highWaterMarkBytes?: number | undefined
  /** A connection with more queued bytes than this is closed with `BUFFER_OVERFLOW` (default 64 MiB). */
  readonly maxBufferedBytes?: number | undefined
}
