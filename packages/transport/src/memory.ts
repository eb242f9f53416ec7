import { EventEmitter } from 'eventemitter3'
import { systemClock } from './clock.js'
import { TransportError } from './errors.js'
import { checkSignal, throwIfAborted } from './internal/abort.js'
import { MinHeap } from './internal/heap.js'
import { nextConnectionId } from './internal/ids.js'
import { checkAddress, checkFrame, type ResolvedLimits, resolveLimits } from './internal/limits.js'
import { seededRandom } from './internal/random.js'
import type {
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

/** Faults applied to frames in flight (network-wide with `setFaults`, per direction with `setLinkFaults`). */
export interface LinkFaults {
  /** Probability in [0, 1] that a frame is lost. */
  readonly dropRate?: number | undefined
  /** Probability in [0, 1] that a frame is delivered twice. */
  readonly duplicateRate?: number | undefined
  /** Delay of each frame in ms: a fixed number, or `[min, max]` drawn uniformly per frame. */
  readonly delayMs?: number | readonly [number, number] | undefined
  /** Let frames overtake each other (each draws its own delay); otherwise a link stays first-in first-out. */
  readonly reorder?: boolean | undefined
}

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions extends FrameLimits {
  /** Seed of the fault decisions (default 0). The same seed and the same sends give the same outcome. */
  readonly seed?: number | undefined
  /**
   * Clock for delivery and delays (default: real time). With a `ManualClock` every frame, even an
   * undelayed one, is delivered from a timer of that clock, so the simulation decides when.
   */
  readonly clock?: Clock | undefined
}

/** Options of {@link MemoryNetwork.transport}. */
export interface MemoryTransportOptions {
  /** What peers see as this endpoint's identity (default `{ commonName: name }`). */
  readonly identity?: PeerIdentity | undefined
}

/** Counters of one node, from {@link MemoryNetwork.stats}. */
export interface MemoryNodeStats {
  /** Frames the node sent (including those the network then dropped) and their bytes. */
  messagesSent: number
  bytesSent: number
  /** Frames delivered to the node and their bytes. */
  messagesReceived: number
  bytesReceived: number
  /** Frames the node sent that were lost to faults or partitions. */
  messagesDropped: number
  /** Extra copies of the node's frames the network delivered. */
  messagesDuplicated: number
}

interface Faults {
  dropRate: number
  duplicateRate: number
  delayMin: number
  delayMax: number
  reorder: boolean
}

interface Delayed {
  at: number
  seq: number
  from: MemoryConnection
  frame: Uint8Array
}

const FIN = new Uint8Array(0)
const RST = new Uint8Array(0)
const NO_FAULTS: Faults = { dropRate: 0, duplicateRate: 0, delayMin: 0, delayMax: 0, reorder: false }
const REORDER_WINDOW = 64
/**
 * Each queued frame counts with the 4-byte length prefix that TCP and TLS put before it, so that `send` returns
 * false and `connection:drain` fires after exactly the same sends as over the real transports.
 */
const LENGTH_PREFIX_BYTES = 4

/**
 * A network in one process for tests and simulations. Addresses are node names (optionally
 * `name:service`); faults and partitions act on frames in flight and are decided by a PRNG seeded
 * from `seed`, so a run replays exactly when the sends happen in the same order.
 *
 * ```ts
 * const net = new MemoryNetwork({ seed: 42 })
 * const t1 = net.transport('n1')
 * net.partition(['n1'], ['n2', 'n3'])
 * net.heal()
 * ```
 */
export class MemoryNetwork {
  readonly seed: number
  readonly clock: Clock
  /** @internal */ readonly limits: ResolvedLimits
  /** @internal */ readonly manual: boolean
  private readonly random: () => number
  private readonly endpoints = new Map<string, MemoryTransport>()
  /** @internal */ readonly listeners = new Map<string, MemoryListener>()
  private readonly counters = new Map<string, MemoryNodeStats>()
  private readonly blocked = new Map<string, Set<string>>()
  private readonly isolated = new Set<string>()
  /** Nodes paused, with the frames that reached them meanwhile, in arrival order. */
  private readonly paused = new Map<string, { from: MemoryConnection; frame: Uint8Array }[]>()
  private partitioned = false
  private faults: Faults = NO_FAULTS
  private rawFaults: LinkFaults = {}
  private readonly rawLinkFaults = new Map<string, Map<string, LinkFaults>>()
  private readonly linkFaults = new Map<string, Map<string, Faults>>()
  private faulty = false
  private seq = 0
  // Frames due now, in order: two parallel arrays so the common case allocates nothing per frame.
  private nowFrom: MemoryConnection[] = []
  private nowFrames: Uint8Array[] = []
  private spareFrom: MemoryConnection[] = []
  private spareFrames: Uint8Array[] = []
  private nowScheduled = false
  private readonly delayed = new MinHeap<Delayed>()
  private delayedTimer: unknown
  private delayedAt = Number.POSITIVE_INFINITY

  constructor(options?: MemoryNetworkOptions) {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError('options must be an object')
    }
    const seed = options?.seed ?? 0
    if (typeof seed !== 'number' || !Number.isInteger(seed))
      throw new TypeError('options.seed must be an integer')
    const clock = options?.clock
    if (
      clock !== undefined &&
      (typeof clock.now !== 'function' ||
        typeof clock.setTimeout !== 'function' ||
        typeof clock.clearTimeout !== 'function')
    ) {
      throw new TypeError('options.clock must have now, setTimeout and clearTimeout')
    }
    this.seed = seed
    this.clock = clock ?? systemClock
    this.manual = clock !== undefined && clock !== systemClock
    this.limits = resolveLimits(options)
    this.random = seededRandom(seed)
  }

  /**
   * The endpoint of node `name`: a Transport whose addresses are node names. While it is open the same
   * endpoint is returned; after it is closed a fresh one (a restarted node).
   */
  transport(name: string, options?: MemoryTransportOptions): Transport {
    checkName(name, 'name')
    const identity = options?.identity
    if (identity !== undefined && (typeof identity !== 'object' || typeof identity.commonName !== 'string')) {
      throw new TypeError('options.identity must have a string commonName')
    }
    const existing = this.endpoints.get(name)
    if (existing) return existing
    const endpoint = new MemoryTransport(this, name, identity ?? { commonName: name })
    this.endpoints.set(name, endpoint)
    this.counter(name)
    return endpoint
  }

  /** Groups that cannot reach each other (both directions). Adds to partitions already in place. */
  partition(...groups: ReadonlyArray<readonly string[]>): void {
    if (groups.length < 2) throw new RangeError('partition needs at least two groups')
    for (const [i, g] of groups.entries()) {
      if (!Array.isArray(g)) throw new TypeError(`groups[${i}] must be an array of node names`)
      for (const n of g) checkName(n, `groups[${i}]`)
    }
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue
        for (const a of groups[i]!) for (const b of groups[j]!) if (a !== b) this.block(a, b)
      }
    }
    this.partitioned = true
  }

  /** Cut nodes off from every other node. */
  isolate(...names: string[]): void {
    for (const n of names) checkName(n, 'name')
    for (const n of names) this.isolated.add(n)
    this.partitioned = this.isolated.size > 0 || this.blocked.size > 0
  }

  /** Remove every partition and isolation (faults stay: see `setFaults`). */
  heal(): void {
    this.blocked.clear()
    this.isolated.clear()
    this.partitioned = false
  }

  /**
   * Pauses node `name` as SIGSTOP pauses a process: frames that reach it wait (in order, and still counted in
   * their senders' buffers, so the senders see backpressure) until `resume`. Its own timers are the caller's
   * to hold (the network does not own them).
   */
  pause(name: string): void {
    checkName(name, 'name')
    if (!this.paused.has(name)) this.paused.set(name, [])
  }

  /** Resumes a paused node: the frames that waited for it are delivered now, in the order they arrived. */
  resume(name: string): void {
    checkName(name, 'name')
    const waiting = this.paused.get(name)
    if (!waiting) return
    this.paused.delete(name)
    for (const { from, frame } of waiting) this.deliver(from, frame)
  }

  /** Whether node `name` is paused. */
  isPaused(name: string): boolean {
    return this.paused.has(name)
  }

  /** Whether a frame from `from` to `to` would get through partitions and isolations now. */
  reachable(from: string, to: string): boolean {
    if (!this.partitioned || from === to) return true
    if (this.isolated.has(from) || this.isolated.has(to)) return false
    return !this.blocked.get(from)?.has(to)
  }

  /** Replace the network-wide faults (`null` or `{}` for none). */
  setFaults(faults: LinkFaults | null): void {
    const raw = faults === null ? {} : faults
    normalizeFaults(raw, 'faults')
    this.rawFaults = { ...raw }
    this.recomputeFaults()
  }

  /**
   * Faults of one direction of one link, over the network-wide ones (fields not given here come from
   * `setFaults`). `null` removes them.
   */
  setLinkFaults(from: string, to: string, faults: LinkFaults | null): void {
    checkName(from, 'from')
    checkName(to, 'to')
    if (faults === null) {
      this.rawLinkFaults.get(from)?.delete(to)
    } else {
      normalizeFaults(faults, 'faults')
      let m = this.rawLinkFaults.get(from)
      if (!m) this.rawLinkFaults.set(from, (m = new Map()))
      m.set(to, { ...faults })
    }
    this.recomputeFaults()
  }

  /** Remove every fault, network-wide and per link. */
  clearFaults(): void {
    this.rawFaults = {}
    this.rawLinkFaults.clear()
    this.recomputeFaults()
  }

  /** Counters per node name (a copy). */
  stats(): Record<string, MemoryNodeStats> {
    const out: Record<string, MemoryNodeStats> = {}
    for (const [name, c] of this.counters) out[name] = { ...c }
    return out
  }

  /** Frames in flight (sent, not yet delivered or dropped). */
  get inFlight(): number {
    return this.nowFrames.length + this.delayed.size
  }

  // ---- internals used by the endpoints ----

  /** @internal */
  counter(name: string): MemoryNodeStats {
    let c = this.counters.get(name)
    if (!c) {
      c = {
        messagesSent: 0,
        bytesSent: 0,
        messagesReceived: 0,
        bytesReceived: 0,
        messagesDropped: 0,
        messagesDuplicated: 0,
      }
      this.counters.set(name, c)
    }
    return c
  }

  /** @internal */
  release(endpoint: MemoryTransport): void {
    if (this.endpoints.get(endpoint.name) === endpoint) this.endpoints.delete(endpoint.name)
  }

  /** @internal Queue a frame (or FIN/RST marker) from `from` to its peer. */
  enqueue(from: MemoryConnection, frame: Uint8Array): void {
    const control = frame === FIN || frame === RST
    if (!this.faulty || control) {
      const now = this.clock.now()
      if (from.lastAt > now) {
        this.pushDelayed(from, frame, from.lastAt, this.seq++ + (control ? REORDER_WINDOW + 1 : 0))
      } else {
        this.pushNow(from, frame)
      }
      return
    }
    const f = this.effectiveFaults(from.localNode, from.remoteNode)
    const stats = from.stats
    if (f.dropRate > 0 && this.random() < f.dropRate) {
      stats.messagesDropped++
      from.release(frame.byteLength + LENGTH_PREFIX_BYTES)
      return
    }
    const copies = f.duplicateRate > 0 && this.random() < f.duplicateRate ? 2 : 1
    if (copies === 2) {
      stats.messagesDuplicated++
      from.buffered += frame.byteLength + LENGTH_PREFIX_BYTES
    }
    const now = this.clock.now()
    for (let i = 0; i < copies; i++) {
      const delay = f.delayMax > 0 ? f.delayMin + this.random() * (f.delayMax - f.delayMin) : 0
      let at = now + delay
      let seq = this.seq++
      if (f.reorder) {
        seq += this.random() * REORDER_WINDOW
      } else if (at < from.lastAt) {
        at = from.lastAt
      }
      if (!f.reorder) from.lastAt = at
      else if (at > from.lastAt) from.lastAt = at
      if (at <= now && !f.reorder) this.pushNow(from, frame)
      else this.pushDelayed(from, frame, at, seq)
    }
  }

  private pushNow(from: MemoryConnection, frame: Uint8Array): void {
    this.nowFrom.push(from)
    this.nowFrames.push(frame)
    if (!this.nowScheduled) {
      this.nowScheduled = true
      if (this.manual) this.clock.setTimeout(this.flushNow, 0)
      else setImmediate(this.flushNow)
    }
  }

  private pushDelayed(from: MemoryConnection, frame: Uint8Array, at: number, seq: number): void {
    this.delayed.push({ at, seq, from, frame })
    if (at < this.delayedAt) this.armDelayed(at)
  }

  private armDelayed(at: number): void {
    if (this.delayedTimer !== undefined) this.clock.clearTimeout(this.delayedTimer)
    this.delayedAt = at
    this.delayedTimer = this.clock.setTimeout(this.flushDelayed, Math.max(0, at - this.clock.now()))
  }

  private readonly flushNow = (): void => {
    this.nowScheduled = false
    const from = this.nowFrom
    const frames = this.nowFrames
    this.nowFrom = this.spareFrom
    this.nowFrames = this.spareFrames
    for (let i = 0; i < from.length; i++) this.deliver(from[i]!, frames[i]!)
    from.length = 0
    frames.length = 0
    this.spareFrom = from
    this.spareFrames = frames
  }

  private readonly flushDelayed = (): void => {
    this.delayedTimer = undefined
    this.delayedAt = Number.POSITIVE_INFINITY
    const now = this.clock.now()
    const due: Delayed[] = []
    for (let top = this.delayed.peek(); top && top.at <= now + 0.001; top = this.delayed.peek()) {
      due.push(this.delayed.pop()!)
    }
    for (const d of due) this.deliver(d.from, d.frame)
    const next = this.delayed.peek()
    if (next && next.at < this.delayedAt) this.armDelayed(next.at)
  }

  private deliver(from: MemoryConnection, frame: Uint8Array): void {
    const to = from.peer!
    if (this.paused.size > 0) {
      const waiting = this.paused.get(to.localNode)
      if (waiting) {
        waiting.push({ from, frame })
        return
      }
    }
    if (frame === FIN || frame === RST) {
      to.remoteClosed(frame === RST)
      return
    }
    from.release(frame.byteLength + LENGTH_PREFIX_BYTES)
    if (to.closed) return
    if (this.partitioned && !this.reachable(from.localNode, to.localNode)) {
      from.stats.messagesDropped++
      return
    }
    const s = to.stats
    s.messagesReceived++
    s.bytesReceived += frame.byteLength
    to.emit('frame:receive', frame)
  }

  private block(a: string, b: string): void {
    let s = this.blocked.get(a)
    if (!s) this.blocked.set(a, (s = new Set()))
    s.add(b)
  }

  private effectiveFaults(from: string, to: string): Faults {
    return this.linkFaults.get(from)?.get(to) ?? this.faults
  }

  private recomputeFaults(): void {
    this.faults = normalizeFaults(this.rawFaults, 'faults')
    this.linkFaults.clear()
    let any = hasFaults(this.faults)
    for (const [from, m] of this.rawLinkFaults) {
      const out = new Map<string, Faults>()
      for (const [to, raw] of m) {
        const merged: LinkFaults = { ...this.rawFaults }
        for (const [k, v] of Object.entries(raw))
          if (v !== undefined) (merged as Record<string, unknown>)[k] = v
        const f = normalizeFaults(merged, 'faults')
        any ||= hasFaults(f)
        out.set(to, f)
      }
      this.linkFaults.set(from, out)
    }
    this.faulty = any
  }
}

function hasFaults(f: Faults): boolean {
  return f.dropRate > 0 || f.duplicateRate > 0 || f.delayMax > 0 || f.reorder
}

function normalizeFaults(faults: LinkFaults, name: string): Faults {
  if (typeof faults !== 'object' || faults === null) throw new TypeError(`${name} must be an object or null`)
  const rate = (v: number | undefined, field: string): number => {
    if (v === undefined) return 0
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      throw new RangeError(`${name}.${field} must be in [0, 1]`)
    return v
  }
  let delayMin = 0
  let delayMax = 0
  const d = faults.delayMs
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new RangeError(`${name}.delayMs must be a finite number >= 0`)
    delayMin = delayMax = d
  } else if (Array.isArray(d)) {
    const [lo, hi] = d as readonly [number, number]
    if (
      d.length !== 2 ||
      typeof lo !== 'number' ||
      typeof hi !== 'number' ||
      !Number.isFinite(lo) ||
      !Number.isFinite(hi) ||
      lo < 0 ||
      hi < lo
    ) {
      throw new RangeError(`${name}.delayMs must be [min, max] with 0 <= min <= max`)
    }
    delayMin = lo
    delayMax = hi
  } else if (d !== undefined) {
    throw new TypeError(`${name}.delayMs must be a number or [min, max]`)
  }
  if (faults.reorder !== undefined && typeof faults.reorder !== 'boolean') {
    throw new TypeError(`${name}.reorder must be a boolean`)
  }
  return {
    dropRate: rate(faults.dropRate, 'dropRate'),
    duplicateRate: rate(faults.duplicateRate, 'duplicateRate'),
    delayMin,
    delayMax,
    reorder: faults.reorder ?? false,
  }
}

function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256 || name.includes(':')) {
    throw new TypeError(`${what} must be a node name: a non-empty string without ':'`)
  }
}

/** The node part of a memory address (`name` or `name:service`). */
function nodeOf(address: string): string {
  const i = address.indexOf(':')
  return i < 0 ? address : address.slice(0, i)
}

class MemoryTransport implements Transport {
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

class MemoryListener extends EventEmitter<ListenerEvents> implements Listener {
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

class MemoryConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly id = nextConnectionId()
  readonly localAddress: string
  readonly localNode: string
  readonly maxFrameBytes: number
  peer: MemoryConnection | undefined
  closed = false
  buffered = 0
  lastAt = 0
  private needDrain = false
  private done = false
  readonly stats: MemoryNodeStats

  constructor(
    private readonly owner: MemoryTransport,
    readonly remoteNode: string,
    readonly remoteAddress: string,
    readonly remoteIdentity: PeerIdentity,
    readonly outbound: boolean,
    private readonly limits: ResolvedLimits,
  ) {
    super()
    this.localNode = owner.name
    this.localAddress = owner.name
    this.maxFrameBytes = limits.maxFrameBytes
    this.stats = owner.stats
  }

  get bufferedBytes(): number {
    return this.buffered
  }

  get writable(): boolean {
    return !this.closed && this.buffered <= this.limits.highWaterMarkBytes
  }

  send(frame: Uint8Array): boolean {
    checkFrame(frame)
    if (this.closed) throw new TransportError('CLOSED', 'connection is closed')
    const n = frame.byteLength
    if (n > this.maxFrameBytes) {
      throw new TransportError(
        'FRAME_TOO_LARGE',
        `frame of ${n} bytes is over the limit of ${this.maxFrameBytes}`,
      )
    }
    this.buffered += n + LENGTH_PREFIX_BYTES
    if (this.buffered > this.limits.maxBufferedBytes) {
      const error = new TransportError(
        'BUFFER_OVERFLOW',
        `more than ${this.limits.maxBufferedBytes} bytes queued for ${this.remoteAddress}`,
      )
      this.abort(error)
      throw error
    }
    this.stats.messagesSent++
    this.stats.bytesSent += n
    this.owner.network.enqueue(this, frame)
    if (this.buffered > this.limits.highWaterMarkBytes) {
      this.needDrain = true
      return false
    }
    return true
  }

  /** Bytes of a frame left the sender's buffer (delivered or dropped). */
  release(n: number): void {
    this.buffered -= n
    if (this.needDrain && this.buffered <= this.limits.highWaterMarkBytes) {
      this.needDrain = false
      if (!this.closed) this.emit('connection:drain')
    }
  }

  async close(options?: AbortOptions): Promise<void> {
    checkSignal(options)
    if (this.closed) return
    this.closed = true
    this.owner.network.enqueue(this, FIN)
    this.finish(undefined)
  }

  abort(error?: TransportError): void {
    if (this.closed) return
    this.closed = true
    this.owner.network.enqueue(this, RST)
    this.finish(error)
  }

  /** The peer closed (FIN) or reset (RST) its side. */
  remoteClosed(reset: boolean): void {
    if (this.done) return
    this.closed = true
    this.finish(reset ? new TransportError('CLOSED', `connection reset by ${this.remoteAddress}`) : undefined)
  }

  private finish(error: TransportError | undefined): void {
    if (this.done) return
    this.done = true
    this.owner.forget(this)
    this.emit('connection:close', error)
    this.removeAllListeners()
  }
}

let defaultNetwork: MemoryNetwork | undefined
let anonymous = 0

/** Options of {@link memoryTransport}. */
export interface MemoryTransportFactoryOptions extends MemoryTransportOptions {
  /** The network to join (default: one shared by the whole process, with real time and seed 0). */
  readonly network?: MemoryNetwork | undefined
  /** The node name (default: a fresh `memory-N`). */
  readonly name?: string | undefined
}

/** A memory transport endpoint: `network.transport(name)` with defaults for both. */
export function memoryTransport(options?: MemoryTransportFactoryOptions): Transport {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  if (options?.network !== undefined && !(options.network instanceof MemoryNetwork)) {
    throw new TypeError('options.network must be a MemoryNetwork')
  }
  const network = options?.network ?? (defaultNetwork ??= new MemoryNetwork())
  return network.transport(options?.name ?? `memory-${++anonymous}`, { identity: options?.identity })
}
