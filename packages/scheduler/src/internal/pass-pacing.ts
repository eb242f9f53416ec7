/**
 * Paces the orchestrator's passes over a large service. A pass walks every task of the service, so its cost
 * grows with the service, not with what changed; during a rolling update of 50,000 slots the reports and
 * commits that mark the service changed came faster than a pass took, the passes ran back to back, and the
 * leader spent most of its CPU walking the same 100,000 tasks (issue #18). A service of at least `minTasks`
 * rests after each pass for as long as the pass itself ran (its time in slices, not what ran between them;
 * its changes accumulate meanwhile and the next pass takes them all), so its passes use at most about half
 * of the event loop. Real time, not the orchestrator's clock: this shares the CPU, it decides nothing.
 */
export class PassPacing {
  readonly #restUntil = new Map<string, number>()
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>()

  constructor(
    /** A resting service may run a pass again. */
    private readonly onReady: (serviceId: string) => void,
    readonly minTasks = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether `serviceId` rests now; if so, `onReady` is called once its rest is over. */
  resting(serviceId: string): boolean {
    const until = this.#restUntil.get(serviceId)
    if (until === undefined) return false
    const left = until - this.now()
    if (left <= 0) {
      this.#restUntil.delete(serviceId)
      return false
    }
    if (!this.#timers.has(serviceId)) {
      const timer = setTimeout(() => {
        this.#timers.delete(serviceId)
        this.onReady(serviceId)
      }, Math.ceil(left))
      timer.unref?.()
      this.#timers.set(serviceId, timer)
    }
    return true
  }

  /** A pass over `serviceId`'s `tasks` tasks took `ms`. */
  passed(serviceId: string, tasks: number, ms: number): void {
    if (tasks >= this.minTasks) this.#restUntil.set(serviceId, this.now() + ms)
    else this.#restUntil.delete(serviceId)
  }

  stop(): void {
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
    this.#restUntil.clear()
  }
}
