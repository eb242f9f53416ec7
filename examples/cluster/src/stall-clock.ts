// Time as this process lived it: the wall clock minus the stretches its event loop was stalled (blocked by
// synchronous work, or starved of CPU). A leader measures its nodes' silence on it, so that its own stall is
// not taken for theirs: heartbeats that arrived during a stall wait in the sockets, and Node runs expired
// timers (the down check) before it reads them.

export interface StallClock {
  /** Milliseconds on a clock that stands still while the event loop is stalled (any origin). */
  now(): number
  /** The stalled milliseconds left out so far. */
  readonly stalledMs: number
  close(): void
}

export interface StallClockOptions {
  /** How often the loop samples the clock when nothing else does. Default 100 ms. */
  readonly tickMs?: number
  /** A gap between two samples longer than this is a stall; all but one tick of it is left out. Default 250 ms. */
  readonly thresholdMs?: number
  /** The wall clock. Default `performance.now`. */
  readonly now?: () => number
  /** Whether to sample on a timer (tests that drive `now` themselves turn it off). Default true. */
  readonly timer?: boolean
}

export function stallClock(options: StallClockOptions = {}): StallClock {
  const tickMs = options.tickMs ?? 100
  const thresholdMs = options.thresholdMs ?? 250
  if (!(tickMs > 0) || !(thresholdMs >= tickMs))
    throw new RangeError('thresholdMs must be at least tickMs > 0')
  const wall = options.now ?? (() => performance.now())
  let last = wall()
  let stalled = 0
  const sample = (): number => {
    const t = wall()
    const gap = t - last
    if (gap > thresholdMs) stalled += gap - tickMs
    last = t
    return t
  }
  const timer = options.timer === false ? undefined : setInterval(sample, tickMs)
  timer?.unref()
  return {
    now: () => sample() - stalled,
    get stalledMs() {
      return stalled
    },
    close: () => clearInterval(timer),
  }
}
