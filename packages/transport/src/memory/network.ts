// The memory network itself: endpoints by node name, partitions, pauses, seeded faults, counters, and the
// delivery queues (frames due now, and a heap of delayed ones) that decide when each frame arrives.
import { systemClock } from '../clock.js'
import { MinHeap } from '../internal/heap.js'
import { type ResolvedLimits, resolveLimits } from '../internal/limits.js'
import { seededRandom } from '../internal/random.js'
import type { Clock, FrameLimits, PeerIdentity, Transport } from '../types.js'
import { FIN, LENGTH_PREFIX_BYTES, type MemoryConnection, RST } from './connection.js'
import { type MemoryListener, MemoryTransport } from './endpoint.js'
import { type Faults, hasFaults, type LinkFaults, NO_FAULTS, normalizeFaults } from './faults.js'

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

interface Delayed {
  at: number
  seq: number
  from: MemoryConnection
  frame: Uint8Array
}

const REORDER_WINDOW = 64

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

/** A node name: non-empty, at most 256 characters, without the `:` that separates a service. */
function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256 || name.includes(':')) {
    throw new TypeError(`${what} must be a node name: a non-empty string without ':'`)
  }
}
