/** Where a TimeSlice adds the time it ran before each yield (what a sliced job cost, without what ran between). */
export interface SliceMeter {
  busyMs: number
  /** The slices' length for the job this meter measures, when not the slice's own default. */
  readonly budgetMs?: number
}

/**
 * Long work on the event loop in slices: a manager's raft heartbeats, elections and RPCs share the loop with
 * the orchestrator and scheduler, so a pass over tens of thousands of tasks that never yields can stall it
 * past the election timeout and cost the leader its leadership. `due()` says when the slice's time is spent
 * (it reads the clock once every few calls); `yield()` lets timers and I/O run, then starts a new slice.
 */
export class TimeSlice {
  #start = performance.now()
  #calls = 0

  readonly budgetMs: number

  constructor(
    budgetMs = 10,
    private readonly meter?: SliceMeter,
  ) {
    this.budgetMs = meter?.budgetMs ?? budgetMs
  }

  due(): boolean {
    if (++this.#calls < 32) return false
    this.#calls = 0
    return performance.now() - this.#start >= this.budgetMs
  }

  async yield(): Promise<void> {
    if (this.meter) this.meter.busyMs += performance.now() - this.#start
    await new Promise<void>((resolve) => setImmediate(resolve))
    this.#start = performance.now()
    this.#calls = 0
  }
}
