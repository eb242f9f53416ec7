// The store's write lock: one transaction (or batch commit) at a time, each callback running only after the
// previous write committed, so it reads the latest committed state. FIFO, without timers.

/** A first-in first-out mutex for the store's writers. */
export class WriteLock {
  /** Whether a writer holds the lock. */
  locked = false
  private readonly queue: (() => void)[] = []

  /** Takes the lock at once if it is free (the local fast path); false if a writer holds it. */
  tryAcquire(): boolean {
    if (this.locked) return false
    this.locked = true
    return true
  }

  /** Resolves once the caller holds the lock. */
  acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true
      return Promise.resolve()
    }
    return new Promise((resolve) => this.queue.push(resolve))
  }

  /** Hands the lock to the next writer in line, or frees it. */
  release(): void {
    const next = this.queue.shift()
    if (next) next()
    else this.locked = false
  }
}
