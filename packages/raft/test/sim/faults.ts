// Faults the simulations inject besides the network's own (partitions, drops, delays, crashes): a clock per node
// that runs at its own rate and can be paused as SIGSTOP pauses a process, state machines that apply after a
// random delay, and the per-seed choices of high-water mark and snapshot size that make snapshot transfers
// run into backpressure.
import type { Clock, ManualClock, MemoryNetwork } from '@swarmkit/transport'

interface NodeTimer {
  inner: unknown
  cancelled: boolean
}

/**
 * One node's clock over the simulation's clock: it reads `offset + elapsed * rate` (rates a little off 1:
 * bounded drift, as lease reads assume) and its timers fire after `ms / rate` of simulation time. While the
 * node is paused its timers do not fire (they wait for `resume`), but its clock goes on, as a stopped
 * process finds when it wakes.
 */
export class NodeClock implements Clock {
  readonly #start: number
  #paused = false
  #held: NodeTimer[] = []
  #callbacks = new WeakMap<NodeTimer, () => void>()

  constructor(
    private readonly base: ManualClock,
    readonly rate: number,
    readonly offset: number,
  ) {
    this.#start = base.now()
  }

  get paused(): boolean {
    return this.#paused
  }

  now(): number {
    return this.offset + (this.base.now() - this.#start) * this.rate
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const t: NodeTimer = { inner: undefined, cancelled: false }
    this.#callbacks.set(t, callback)
    t.inner = this.base.setTimeout(() => this.#fire(t), Math.max(0, ms) / this.rate)
    return t
  }

  clearTimeout(handle: unknown): void {
    const t = handle as NodeTimer | undefined
    if (!t || typeof t !== 'object' || !('cancelled' in t)) return
    t.cancelled = true
    this.base.clearTimeout(t.inner)
  }

  pause(): void {
    this.#paused = true
  }

  /** Fires the timers that came due while paused, in order, one simulation timer each. */
  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    const held = this.#held
    this.#held = []
    for (const t of held) t.inner = this.base.setTimeout(() => this.#fire(t), 0)
  }

  #fire(t: NodeTimer): void {
    if (t.cancelled) return
    if (this.#paused) {
      this.#held.push(t)
      return
    }
    this.#callbacks.get(t)?.()
  }
}

/** A node's clock with drift (rate within ±`drift`) and an arbitrary offset, from the seed's PRNG. */
export function skewedClock(base: ManualClock, r: () => number, drift: number): NodeClock {
  return new NodeClock(base, 1 + (r() * 2 - 1) * drift, Math.floor(r() * 1e6))
}

/** Pauses a node (its timers and the frames that reach it) and resumes it after `ms` of simulation time. */
export function pauseNode(
  net: MemoryNetwork,
  base: ManualClock,
  id: string,
  clock: NodeClock,
  ms: number,
  trace: (line: string) => void,
): void {
  if (clock.paused) return
  trace(`pause ${id} for ${ms}ms`)
  clock.pause()
  net.pause(id)
  base.setTimeout(() => {
    if (!clock.paused) return
    trace(`resume ${id}`)
    resumeNode(net, id, clock)
  }, ms)
}

export function resumeNode(net: MemoryNetwork, id: string, clock: NodeClock): void {
  // Timers first: the frames delivered on resume then meet a node whose clock has caught up.
  clock.resume()
  net.resume(id)
}

/** What a seed draws once for the whole run. */
export interface SeedShape {
  /** Transport high-water mark: small, so that snapshot chunks and appends run into backpressure. */
  readonly highWaterMarkBytes: number
  readonly snapshotChunkBytes: number
  /** Padding in every state machine snapshot, so that snapshots are larger than the high-water mark. */
  readonly snapshotPadding: number
  /** Clock drift bound per node (0: all nodes at the simulation's rate). */
  readonly drift: number
  /** Apply entries after a random delay of up to this many ms (0: apply at once). */
  readonly maxApplyDelayMs: number
}

export function seedShape(r: () => number): SeedShape {
  const highWaterMarkBytes = 256 + Math.floor(r() * 2048)
  return {
    highWaterMarkBytes,
    snapshotChunkBytes: [64, 256, 1024][Math.floor(r() * 3)]!,
    snapshotPadding: highWaterMarkBytes + Math.floor(r() * 2 * highWaterMarkBytes),
    drift: r() < 0.5 ? 0.02 * r() : 0,
    // Short delays here (the seeds' shapes stay as they were drawn); sim3.slow.test.ts runs applies of
    // 100-500 ms an entry.
    maxApplyDelayMs: r() < 0.5 ? Math.floor(r() * 30) : 0,
  }
}

/**
 * An apply function that, with `maxDelayMs` > 0, applies most entries after a random delay on the node's clock
 * (an async state machine writing elsewhere), one after another as the node awaits each. `crash()` settles
 * the ones still waiting without applying them: the process is gone, and its stop must not wait for timers
 * that only fire when the simulation advances.
 */
export class DelayedApply<T> {
  readonly #waiting = new Set<() => void>()

  constructor(
    private readonly apply: (cmd: Uint8Array, index: number) => T,
    private readonly clock: Clock,
    private readonly r: () => number,
    private readonly maxDelayMs: number,
    private readonly minDelayMs = 0,
  ) {}

  readonly fn = (cmd: Uint8Array, index: number): T | Promise<T | undefined> => {
    if (this.maxDelayMs <= 0 || this.r() < 0.3) return this.apply(cmd, index)
    const ms = this.minDelayMs + this.r() * (this.maxDelayMs - this.minDelayMs)
    return new Promise<T | undefined>((resolve) => {
      const cancel = () => resolve(undefined)
      this.#waiting.add(cancel)
      this.clock.setTimeout(() => {
        if (!this.#waiting.delete(cancel)) return
        resolve(this.apply(cmd, index))
      }, ms)
    })
  }

  crash(): void {
    const waiting = [...this.#waiting]
    this.#waiting.clear()
    for (const cancel of waiting) cancel()
  }
}
