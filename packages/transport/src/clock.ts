import { MinHeap } from './internal/heap.js'
import type { AbortOptions, Clock } from './types.js'

/** Real time: `performance.now()` and the global timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
})

interface ManualTimer {
  at: number
  seq: number
  callback: (() => void) | undefined
}

/**
 * Virtual time for simulations: nothing happens until the owner advances it. Timers fire in order of
 * due time, then of scheduling, so a run replays exactly. A timer scheduled while advancing fires in
 * the same advance if it falls due within it (so a zero-delay message exchange completes in one step).
 *
 * ```ts
 * const clock = new ManualClock()
 * const net = new MemoryNetwork({ seed: 1, clock })
 * await clock.advanceAsync(10)   // fires timers due in the next 10 ms, letting promises settle between them
 * ```
 */
export class ManualClock implements Clock {
  private time: number
  private seq = 0
  private readonly timers = new MinHeap<ManualTimer>()
  private live = 0

  constructor(options?: { readonly startMs?: number | undefined }) {
    const start = options?.startMs ?? 0
    if (!Number.isFinite(start)) throw new RangeError('startMs must be a finite number')
    this.time = start
  }

  now(): number {
    return this.time
  }

  setTimeout(callback: () => void, ms: number): unknown {
    if (typeof callback !== 'function') throw new TypeError('callback must be a function')
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    const timer: ManualTimer = { at: this.time + delay, seq: this.seq++, callback }
    this.timers.push(timer)
    this.live++
    return timer
  }

  clearTimeout(handle: unknown): void {
    const timer = handle as ManualTimer | undefined
    if (timer && typeof timer === 'object' && timer.callback !== undefined) {
      timer.callback = undefined
      this.live--
    }
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.live
  }

  /** When the next timer falls due, or undefined when none is pending. */
  nextAt(): number | undefined {
    this.dropCleared()
    return this.timers.peek()?.at
  }

  /**
   * Move time forward by `ms`, firing every timer that falls due, in order; time stands at each
   * timer's due time while it runs. Returns how many fired. Promise callbacks run only after it
   * returns: use {@link advanceAsync} when handlers are async.
   */
  advance(ms: number): number {
    checkMs(ms)
    const end = this.time + ms
    let fired = 0
    for (;;) {
      const timer = this.takeDue(end)
      if (!timer) break
      fired++
      timer()
    }
    this.time = end
    return fired
  }

  /**
   * Like {@link advance}, but after each timer it lets every pending promise callback run (it waits
   * one `setImmediate`), so async handlers finish and what they schedule is seen in order.
   */
  async advanceAsync(ms: number, options?: AbortOptions): Promise<number> {
    checkMs(ms)
    const end = this.time + ms
    let fired = 0
    await settle()
    for (;;) {
      options?.signal?.throwIfAborted()
      const timer = this.takeDue(end)
      if (!timer) break
      fired++
      timer()
      await settle()
    }
    this.time = end
    return fired
  }

  /** Jump to the next timer and fire everything due then; returns how many fired (0: none pending). */
  async runNextAsync(options?: AbortOptions): Promise<number> {
    await settle()
    const at = this.nextAt()
    if (at === undefined) return 0
    return this.advanceAsync(Math.max(0, at - this.time), options)
  }

  private takeDue(end: number): (() => void) | undefined {
    this.dropCleared()
    const top = this.timers.peek()
    if (!top || top.at > end) return undefined
    this.timers.pop()
    this.live--
    const callback = top.callback!
    top.callback = undefined
    if (top.at > this.time) this.time = top.at
    return callback
  }

  private dropCleared(): void {
    for (let top = this.timers.peek(); top && top.callback === undefined; top = this.timers.peek()) {
      this.timers.pop()
    }
  }
}

function checkMs(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError('ms must be a finite number >= 0')
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
