// Callers waiting for the store to reach a version (a version seen in an event or on another member): settled
// as versions are applied, rejected when the store closes or their signal aborts.
import { StoreError } from '../errors.js'

interface VersionWaiter {
  version: number
  resolve: () => void
  reject: (e: unknown) => void
}

/** The waiters of `ClusterStore.waitForVersion`. */
export class VersionWaiters {
  private waiters: VersionWaiter[] = []

  /** Resolves once `reached` is called with `version` or later; rejects with `ABORTED` on abort. */
  wait(version: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = {
        version,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        reject: (e: unknown) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== w)
        w.reject(new StoreError('ABORTED', 'wait aborted', { cause: signal?.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(w)
    })
  }

  /** The store is now at `version`: settles every waiter for it or earlier. */
  reached(version: number): void {
    if (this.waiters.length === 0) return
    const ready = this.waiters.filter((w) => w.version <= version)
    if (ready.length === 0) return
    this.waiters = this.waiters.filter((w) => w.version > version)
    for (const w of ready) w.resolve()
  }

  /** Rejects every waiter, each with its own error from `error()`. */
  rejectAll(error: () => unknown): void {
    const waiting = this.waiters
    this.waiters = []
    for (const w of waiting) w.reject(error())
  }
}
