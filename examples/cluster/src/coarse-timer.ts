// Timers on a coarse grid, for work that recurs on many objects of one process at loose times (the
// heartbeats of thousands of simulated workers in one worker host). Each Node timer with its own expiry wakes
// the event loop on its own, and with it the manager that the work talks to: 1,700 agents heartbeating at
// random phases woke their host and a manager about 340 times a second, one heartbeat each. Callbacks due in
// the same grain of time share one Node timer and run in one turn of the loop, so the heartbeats of a grain
// leave together and reach the manager together. A callback runs at most `grainMs` later than asked, never
// earlier. Like the agent's own timers, these never keep the process alive.

/** The default grain: a hundredth of the default heartbeat period. */
export const COARSE_GRAIN_MS = 50

export interface CoarseTimer {
  /** The callback will not run (if it has not yet). */
  cancel(): void
}

interface Entry {
  fn: (() => void) | undefined
}

/** Pending grains by the time (ms since the epoch, on the grid) their callbacks run. */
const grains = new Map<number, Entry[]>()

function runGrain(due: number): void {
  const entries = grains.get(due)
  grains.delete(due)
  if (!entries) return
  for (const e of entries) {
    const fn = e.fn
    e.fn = undefined
    if (!fn) continue
    try {
      fn()
    } catch (err) {
      // As an uncaught exception in a timer callback would be; the other callbacks still run.
      queueMicrotask(() => {
        throw err
      })
    }
  }
}

/** Runs `fn` once, between `delayMs` and `delayMs + grainMs` from now, with the other callbacks of that grain. */
export function coarseTimeout(fn: () => void, delayMs: number, grainMs = COARSE_GRAIN_MS): CoarseTimer {
  if (typeof fn !== 'function') throw new TypeError('fn must be a function')
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError('delayMs must be a finite number >= 0')
  if (!Number.isFinite(grainMs) || grainMs < 1) throw new RangeError('grainMs must be at least 1')
  const now = Date.now()
  const due = Math.ceil((now + delayMs) / grainMs) * grainMs
  const entry: Entry = { fn }
  let entries = grains.get(due)
  if (!entries) {
    entries = []
    grains.set(due, entries)
    setTimeout(runGrain, due - now, due).unref()
  }
  entries.push(entry)
  return {
    cancel() {
      entry.fn = undefined
    },
  }
}
