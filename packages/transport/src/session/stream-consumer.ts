// The calling side of a server stream: buffers items within the granted window, hands out credit as the
// consumer reads, and cancels at the producer when the consumer stops. Apart from the session because it is
// a self-contained iterator that talks back only through sendControl/forgetStream.
import { abortedError } from '../internal/abort.js'
import { CREDIT } from './protocol.js'

/** Items of a server stream. Breaking out of `for await` (or `return()`) cancels it at the producer. */
export interface RpcStream<T = unknown> extends AsyncIterableIterator<T> {
  /** Stop the stream; pending and later `next()` calls end it. */
  cancel(): void
}

/** What a stream consumer needs of its session: sending control messages and forgetting the stream. */
export interface StreamOwner {
  sendControl(message: unknown[]): void
  forgetStream(id: number, cancel: boolean): void
}

/** A server stream as the caller reads it. */
export class StreamConsumer<T = unknown> implements RpcStream<T> {
  private buffer: unknown[] = []
  private head = 0
  private consumed = 0
  private done = false
  private error: unknown
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined
  private readonly onAbort: (() => void) | undefined

  constructor(
    private readonly session: StreamOwner,
    private readonly id: number,
    private readonly method: string,
    private readonly window: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal) {
      this.onAbort = () => {
        this.session.forgetStream(this.id, true)
        this.fail(abortedError(signal, `stream ${this.method}`))
      }
      signal.addEventListener('abort', this.onAbort, { once: true })
    }
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  /** False when the producer overran the window. */
  push(item: unknown): boolean {
    if (this.done) return true
    if (this.buffer.length - this.head >= this.window) return false
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      this.took()
      w.resolve({ value: item as T, done: false })
      return true
    }
    this.buffer.push(item)
    return true
  }

  end(): void {
    if (this.done) return
    this.done = true
    this.detach()
    if (this.waiter && this.head >= this.buffer.length) {
      const w = this.waiter
      this.waiter = undefined
      w.resolve({ value: undefined, done: true })
    }
  }

  fail(error: unknown): void {
    if (this.done) return
    this.done = true
    this.error = error
    this.buffer = []
    this.head = 0
    this.detach()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.reject(error)
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head] as T
      this.buffer[this.head++] = undefined
      if (this.head === this.buffer.length) {
        this.buffer.length = 0
        this.head = 0
      }
      this.took()
      return Promise.resolve({ value, done: false })
    }
    if (this.done) {
      if (this.error !== undefined) {
        const e = this.error
        this.error = undefined
        return Promise.reject(e)
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    if (this.waiter) return Promise.reject(new TypeError('next() called while another next() is pending'))
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel()
    return Promise.resolve({ value: undefined, done: true })
  }

  cancel(): void {
    if (this.done) return
    this.session.forgetStream(this.id, true)
    this.done = true
    this.buffer = []
    this.head = 0
    this.detach()
    if (this.waiter) {
      const w = this.waiter
      this.waiter = undefined
      w.resolve({ value: undefined, done: true })
    }
  }

  private took(): void {
    if (this.done) return
    this.consumed++
    if (this.consumed * 2 >= this.window) {
      const n = this.consumed
      this.consumed = 0
      this.session.sendControl([CREDIT, this.id, n])
    }
  }

  private detach(): void {
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort)
  }
}
