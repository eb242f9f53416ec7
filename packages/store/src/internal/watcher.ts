import { StoreError } from '../errors.js'
import type { Table } from '../types.js'
import type { StoreAction, StoreEvent, Watch, WatchOptions } from '../watch.js'

type Resolver = { resolve: (r: IteratorResult<StoreEvent>) => void; reject: (e: unknown) => void }

export class Watcher implements Watch {
  private queue: StoreEvent[] = []
  private head = 0
  private reader: Resolver | null = null
  private error: StoreError | null = null
  private done = false
  private readonly tables: ReadonlySet<Table> | null
  private readonly actions: ReadonlySet<StoreAction> | null
  private readonly filter: ((e: StoreEvent) => boolean) | undefined
  private readonly limit: number
  private minVersion: number
  private readonly detach: (w: Watcher) => void
  private readonly onAbort: (() => void) | undefined
  private readonly signal: AbortSignal | undefined
  lastVersion: number

  constructor(options: WatchOptions, startVersion: number, detach: (w: Watcher) => void) {
    const t = options.table
    this.tables = t === undefined ? null : new Set(typeof t === 'string' ? [t] : t)
    const a = options.action
    this.actions = a === undefined ? null : new Set(typeof a === 'string' ? [a] : a)
    this.filter = options.filter
    this.limit = options.queueSize ?? 10_000
    this.minVersion = startVersion
    this.lastVersion = startVersion
    this.detach = detach
    this.signal = options.signal
    if (this.signal) {
      this.onAbort = () => this.close()
      this.signal.addEventListener('abort', this.onAbort, { once: true })
    }
  }

  get closed(): boolean {
    return this.done
  }

  get pending(): number {
    return this.queue.length - this.head
  }

  /** After a restore the store's versions restart from the snapshot's; accept everything from now on. */
  rebase(): void {
    this.minVersion = -1
  }

  matches(e: StoreEvent): boolean {
    if (e.version <= this.minVersion) return false
    if (this.tables && !this.tables.has(e.table)) return false
    if (this.actions && !this.actions.has(e.action)) return false
    return this.filter ? this.filter(e) : true
  }

  /** Called at commit with the commit's events; never blocks, never throws. */
  push(events: readonly StoreEvent[]): void {
    if (this.done) return
    for (const e of events) {
      let ok: boolean
      try {
        ok = this.matches(e)
      } catch (err) {
        this.fail(new StoreError('WATCH_DROPPED', 'watch dropped: its filter threw', { cause: err }))
        return
      }
      if (!ok) continue
      if (this.reader) {
        const r = this.reader
        this.reader = null
        this.lastVersion = e.version
        r.resolve({ value: e, done: false })
        continue
      }
      if (this.queue.length - this.head >= this.limit) {
        this.fail(
          new StoreError(
            'WATCH_DROPPED',
            `watch dropped: more than ${this.limit} events queued unread; resume from version ${this.lastVersion}`,
          ),
        )
        return
      }
      this.queue.push(e)
    }
  }

  fail(err: StoreError): void {
    if (this.done) return
    this.error = err
    this.finish()
    if (this.reader) {
      const r = this.reader
      this.reader = null
      this.error = null
      r.reject(err)
    }
  }

  private finish(): void {
    this.done = true
    this.queue = []
    this.head = 0
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort)
    this.detach(this)
  }

  poll(): StoreEvent | undefined {
    if (this.head >= this.queue.length) return undefined
    const e = this.queue[this.head]!
    this.queue[this.head++] = undefined as never
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    this.lastVersion = e.version
    return e
  }

  next(): Promise<IteratorResult<StoreEvent>> {
    const e = this.poll()
    if (e !== undefined) return Promise.resolve({ value: e, done: false })
    if (this.error) {
      const err = this.error
      this.error = null
      return Promise.reject(err)
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true })
    if (this.reader) return Promise.reject(new Error('watch: next() called while a read is pending'))
    return new Promise((resolve, reject) => {
      this.reader = { resolve, reject }
    })
  }

  close(): void {
    if (this.done) return
    this.finish()
    if (this.reader) {
      const r = this.reader
      this.reader = null
      r.resolve({ value: undefined, done: true })
    }
  }

  return(): Promise<IteratorResult<StoreEvent>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}

/** The last `capacity` events, to let a watch resume from a recent version. */
export class EventHistory {
  private buf: StoreEvent[] = []
  private start = 0
  /** Every event with a version above `floor` is held. */
  floor: number

  constructor(
    private readonly capacity: number,
    floor: number,
  ) {
    this.floor = floor
  }

  push(events: readonly StoreEvent[]): void {
    if (this.capacity === 0) {
      if (events.length) this.floor = events[events.length - 1]!.version
      return
    }
    for (const e of events) {
      if (this.buf.length - this.start >= this.capacity) {
        this.floor = this.buf[this.start]!.version
        this.buf[this.start++] = undefined as never
      }
      this.buf.push(e)
    }
    if (this.start > 4096 && this.start * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.start)
      this.start = 0
    }
  }

  /** Events with a version above `version`, oldest first. */
  since(version: number): StoreEvent[] {
    const out: StoreEvent[] = []
    // Binary search for the first event above `version`.
    let lo = this.start
    let hi = this.buf.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.buf[mid]!.version <= version) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < this.buf.length; i++) out.push(this.buf[i]!)
    return out
  }

  reset(floor: number): void {
    this.buf = []
    this.start = 0
    this.floor = floor
  }
}
