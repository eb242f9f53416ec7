import { isStoreError, type ReadTx, type StoreEvent, type Table, type Watch } from '@swarmkit/store'
import type { Logger, SchedulerStore } from '../store.js'
import { TimeSlice } from './time-slice.js'

export interface LoopHandlers {
  /**
   * Rebuilds all state from a consistent view (at start, and after the watch was dropped). It may return the
   * rest of the work as an iterator, run in time slices with the event loop free between them: it must then
   * have read everything it needs from `tx` before returning (the view is gone after).
   */
  reset(tx: ReadTx): Iterator<unknown> | undefined
  /** Applies one committed change. */
  event(e: StoreEvent): void
  /** Called when no event is queued: act on the state (may write to the store). */
  idle(): Promise<void>
}

/**
 * Drives a component from the store: a consistent view, then a watch resumed from that view's version; after
 * each run of events, `idle()`. A dropped watch (the component fell behind) is recovered by a fresh view.
 * In standby the loop follows the store the same way but calls `idle()` only once activated: a manager that
 * is not the leader keeps its scheduler's and orchestrator's state warm, so that taking over costs no reset.
 */
export class WatchLoop {
  #watch: Watch | undefined
  #running: Promise<void> | undefined
  #stopped = false
  #kick: (() => void) | undefined
  #kicked = false
  #standby = false
  /** The `idle()` call in progress, if any. */
  #idling: Promise<void> | undefined
  #deactivating = false

  constructor(
    private readonly store: SchedulerStore,
    private readonly tables: readonly Table[],
    private readonly handlers: LoopHandlers,
    private readonly queueSize: number,
    private readonly log: Logger,
    private readonly onError: (err: unknown) => void,
  ) {}

  get running(): boolean {
    return this.#running !== undefined && !this.#stopped
  }

  get standby(): boolean {
    return this.#standby
  }

  /** Starts following the store; with `standby`, without acting until {@link activate}. */
  start(standby = false): void {
    if (this.#running) return
    this.#standby = standby
    this.#stopped = false
    this.#running = this.#run().then(
      () => {
        // The watch ended (the store was closed): the component no longer follows the store.
        this.#stopped = true
      },
      (err: unknown) => {
        if (!this.#stopped) this.onError(err)
        this.#stopped = true
      },
    )
  }

  /** Ends standby: `idle()` runs as soon as the events queued now are applied. */
  activate(): void {
    this.#standby = false
    this.kick()
  }

  /**
   * Back to standby: no `idle()` starts from now on; once the one in progress (if any) has ended, `forget`
   * clears what the passes decided, and this resolves. The state the events keep stays warm.
   */
  async deactivate(forget: () => void): Promise<void> {
    this.#standby = true
    this.#deactivating = true
    try {
      await this.#idling
      forget()
    } finally {
      this.#deactivating = false
    }
  }

  /** {@link deactivate} waits for the `idle()` in progress: activating now could let it act for the new term. */
  get deactivating(): boolean {
    return this.#deactivating
  }

  /** Asks for an `idle()` pass even without new events (e.g. a timer fired). */
  kick(): void {
    this.#kicked = true
    const k = this.#kick
    if (k) {
      this.#kick = undefined
      k()
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#watch?.close()
    this.kick()
    const r = this.#running
    this.#running = undefined
    await r
  }

  async #subscribe(): Promise<Watch> {
    let rest: Iterator<unknown> | undefined
    const version = this.store.view((tx) => {
      rest = this.handlers.reset(tx)
      return tx.version
    })
    // Watched from the view's version at once: what commits while the reset goes on queues on the watch.
    const w = this.store.watch({ table: this.tables, fromVersion: version, queueSize: this.queueSize })
    this.#watch = w
    if (rest) {
      const slice = new TimeSlice()
      while (!this.#stopped && !rest.next().done) if (slice.due()) await slice.yield()
    }
    return w
  }

  #kickPromise(): Promise<'kick'> {
    if (this.#kicked) return Promise.resolve('kick')
    return new Promise((resolve) => {
      this.#kick = () => resolve('kick')
    })
  }

  async #run(): Promise<void> {
    let watch = await this.#subscribe()
    if (this.#stopped) return
    await this.#idle()
    let next: Promise<IteratorResult<StoreEvent>> | undefined
    while (!this.#stopped) {
      let result: IteratorResult<StoreEvent> | 'kick'
      try {
        next ??= watch.next()
        result = watch.pending > 0 ? await next : await Promise.race([next, this.#kickPromise()])
        this.#kick = undefined
        if (result !== 'kick') next = undefined
      } catch (err) {
        next = undefined
        if (this.#stopped) break
        if (isStoreError(err, 'WATCH_DROPPED') || isStoreError(err, 'VERSION_COMPACTED')) {
          this.log('warn', 'watch dropped; resynchronizing from a fresh view', { error: String(err) })
          watch.close()
          watch = await this.#subscribe()
          if (this.#stopped) break
          await this.#idle()
          continue
        }
        this.onError(err)
        break
      }
      if (this.#stopped) break
      if (result !== 'kick') {
        if (result.done) break
        // Then every event already queued (a commit's burst), without a promise each, in time slices.
        const slice = new TimeSlice()
        for (
          let e: StoreEvent | undefined = result.value;
          e !== undefined && !this.#stopped;
          e = watch.poll()
        ) {
          try {
            this.handlers.event(e)
          } catch (err) {
            this.onError(err)
          }
          if (slice.due()) await slice.yield()
        }
        if (this.#stopped) break
        if (watch.pending > 0) continue
      }
      await this.#idle()
    }
  }

  async #idle(): Promise<void> {
    this.#kicked = false
    if (this.#standby) return
    const idling = this.handlers.idle().catch((err: unknown) => this.onError(err))
    this.#idling = idling
    try {
      await idling
    } finally {
      this.#idling = undefined
    }
  }
}
