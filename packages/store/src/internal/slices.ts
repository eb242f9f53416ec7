// Running a generator of steps (internal/snapshot-format.ts, internal/snapshot.ts) to its end, either at once
// or in time slices: the event loop runs between slices, so a snapshot or restore of a large store holds it
// for a few milliseconds at a time rather than for the whole state (issue #18: a whole-store snapshot at
// 100,000+ tasks held a manager's loop past raft's election timeout).

/** How a sliced run lets the event loop go. */
export interface Slicing {
  /** The clock slices are measured on (ms). */
  now(): number
  /** Resolves once the event loop has run (default: the next `setImmediate`). */
  pause(): Promise<void>
  /** A slice ends once this much time has passed (ms)... */
  sliceMs: number
  /** ...or after this many steps, whichever comes first (a bound that does not depend on the clock). */
  maxSteps: number
}

export const defaultSlicing: Slicing = {
  now: () => performance.now(),
  pause: () => new Promise<void>((resolve) => setImmediate(resolve)),
  sliceMs: 5,
  maxSteps: 16,
}

/** Runs `steps` to its end without pausing. */
export function runAtOnce<T>(steps: Generator<unknown, T>): T {
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/**
 * Runs `steps` in slices, pausing between them; `onStep` sees every yielded value. `shouldStop` is asked
 * after each pause: when it returns an error, the run ends with it (and the generator is closed).
 */
export async function runSliced<T, Y>(
  steps: Generator<Y, T>,
  slicing: Slicing,
  onStep?: (value: Y) => void,
  shouldStop?: () => Error | undefined,
): Promise<T> {
  let start = slicing.now()
  let count = 0
  try {
    for (;;) {
      const r = steps.next()
      if (r.done) return r.value
      onStep?.(r.value)
      if (++count >= slicing.maxSteps || slicing.now() - start >= slicing.sliceMs) {
        await slicing.pause()
        const stop = shouldStop?.()
        if (stop) throw stop
        start = slicing.now()
        count = 0
      }
    }
  } finally {
    steps.return(undefined as never)
  }
}
