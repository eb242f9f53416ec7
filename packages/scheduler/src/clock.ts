import { rangeError, typeError } from './internal/check.js'
/**
 * Time as the scheduler and orchestrators see it; inject a {@link ManualClock} to make tests deterministic.
 * The scheduler's own contract, not transport's or pki's: the scheduler may import only `@swarmkit/store`, and
 * its timers hand back a cancel function (restart delays, update monitors) instead of a handle to clear.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Calls `fn` once after `ms` milliseconds; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void
}

/** The real clock: `Date.now` and `setTimeout` (timers are unref'd so they never hold the process open). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    if (typeof fn !== 'function') throw typeError('fn', 'be a function')
    const t = setTimeout(fn, Math.max(0, ms))
    t.unref?.()
    return () => clearTimeout(t)
  },
}

/** A clock that only moves when told to. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing due timers in order (each sees `now()` at its due time). */
  advance(ms: number): void
  /** Timers not yet fired. */
  readonly pendingTimers: number
  /** Due time of the next timer, if any. */
  readonly nextTimer: number | undefined
}

/** A {@link ManualClock} starting at `start` (default 1_700_000_000_000). */
export function manualClock(start = 1_700_000_000_000): ManualClock {
  if (!Number.isFinite(start)) throw rangeError('start', 'be a finite number')
  let now = start
  let seq = 0
  const timers: { at: number; seq: number; fn: () => void }[] = []
  const clock: ManualClock = {
    now: () => now,
    setTimer(ms, fn) {
      if (typeof fn !== 'function') throw typeError('fn', 'be a function')
      if (!Number.isFinite(ms)) throw rangeError('ms', 'be a finite number')
      const t = { at: now + Math.max(0, ms), seq: seq++, fn }
      timers.push(t)
      timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      return () => {
        const i = timers.indexOf(t)
        if (i >= 0) timers.splice(i, 1)
      }
    },
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw rangeError('ms', 'be a finite number >= 0')
      const end = now + ms
      for (;;) {
        const t = timers[0]
        if (!t || t.at > end) break
        timers.shift()
        now = t.at
        t.fn()
      }
      now = end
    },
    get pendingTimers() {
      return timers.length
    },
    get nextTimer() {
      return timers[0]?.at
    },
  }
  return clock
}
