import { EventEmitter } from 'eventemitter3'
import { PkiError } from './errors.js'
import { type Clock, systemClock } from './types.js'

/** The part of a certificate renewal cares about. */
export interface CertificateLifetime {
  readonly notBefore: Date
  readonly notAfter: Date
}

/**
 * When to renew a certificate: a uniformly random point between 50% and 80% of its lifetime.
 * `random` returns a number in [0, 1).
 */
export function renewalTime(cert: CertificateLifetime, random: () => number = Math.random): number {
  const start = cert.notBefore.getTime()
  const life = cert.notAfter.getTime() - start
  if (!Number.isFinite(life) || life <= 0) throw new RangeError('certificate lifetime must be positive')
  const r = random()
  if (!(r >= 0 && r < 1)) throw new RangeError('random() must return a number in [0, 1)')
  return start + life * (0.5 + 0.3 * r)
}

/** What a renewal scheduler needs: the certificate held, how to renew it, and optional clock, randomness and backoff. */
export interface RenewalSchedulerOptions {
  /** The certificate currently held. */
  certificate: CertificateLifetime
  /** Obtains a new certificate; rejecting means "retry later". */
  renew: (options: { signal: AbortSignal }) => Promise<CertificateLifetime>
  clock?: Clock
  /** Uniform random in [0, 1), for the renewal point and backoff jitter. */
  random?: () => number
  /** First retry delay after a failure (default 1 s). */
  initialBackoffMs?: number
  /** Longest retry delay (default 5 min). */
  maxBackoffMs?: number
}

/** The events a `RenewalScheduler` emits (eventemitter3, typed). */
export interface RenewalEvents {
  /** A renewal is planned at `at` (epoch ms). */
  'renewal:scheduled': (at: number) => void
  /** A new certificate was obtained. */
  'renewal:succeeded': (certificate: CertificateLifetime) => void
  /** An attempt failed; the next is at `retryAt`. */
  'renewal:failed': (error: unknown, retryAt: number) => void
}

/** Renews a node's certificate in time, retrying with backoff. */
export interface RenewalScheduler extends EventEmitter<RenewalEvents> {
  start(): void
  /** Stops timers and aborts an attempt in flight. */
  stop(): void
  /**
   * Renews at once, e.g. on a role change; resolves with the new certificate. Concurrent calls share one
   * attempt; `signal` stops this caller's wait (rejecting with `ABORTED`), not the attempt.
   */
  renewNow(options?: { signal?: AbortSignal }): Promise<CertificateLifetime>
  readonly certificate: CertificateLifetime
  /** When the next attempt is due (epoch ms), or undefined when stopped or renewing. */
  readonly nextAttemptAt: number | undefined
}

class Scheduler extends EventEmitter<RenewalEvents> implements RenewalScheduler {
  #cert: CertificateLifetime
  readonly #renew: RenewalSchedulerOptions['renew']
  readonly #clock: Clock
  readonly #random: () => number
  readonly #initial: number
  readonly #max: number
  #timer: unknown
  #next: number | undefined
  #running = false
  #failures = 0
  #inflight: Promise<CertificateLifetime> | undefined
  #abort: AbortController | undefined

  constructor(o: RenewalSchedulerOptions) {
    super()
    this.#cert = o.certificate
    this.#renew = o.renew
    this.#clock = o.clock ?? systemClock
    this.#random = o.random ?? Math.random
    this.#initial = o.initialBackoffMs ?? 1000
    this.#max = o.maxBackoffMs ?? 300_000
    if (!(this.#initial > 0) || !(this.#max >= this.#initial)) {
      throw new RangeError('backoff: need 0 < initialBackoffMs <= maxBackoffMs')
    }
  }

  get certificate() {
    return this.#cert
  }
  get nextAttemptAt() {
    return this.#next
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#schedule(renewalTime(this.#cert, this.#random))
  }

  stop(): void {
    this.#running = false
    this.#cancelTimer()
    this.#abort?.abort(new PkiError('ABORTED', 'renewal scheduler stopped'))
  }

  renewNow(options: { signal?: AbortSignal } = {}): Promise<CertificateLifetime> {
    const signal = options.signal
    if (signal?.aborted)
      return Promise.reject(new PkiError('ABORTED', 'renewal wait aborted', { cause: signal.reason }))
    this.#cancelTimer()
    const attempt = this.#attempt()
    if (!signal) return attempt
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new PkiError('ABORTED', 'renewal wait aborted', { cause: signal.reason }))
      signal.addEventListener('abort', onAbort, { once: true })
      attempt.then(
        (c) => {
          signal.removeEventListener('abort', onAbort)
          resolve(c)
        },
        (err) => {
          signal.removeEventListener('abort', onAbort)
          reject(err)
        },
      )
    })
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#next = undefined
  }

  #schedule(at: number): void {
    this.#cancelTimer()
    if (!this.#running) return
    this.#next = at
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined
        this.#next = undefined
        this.#attempt().catch(() => {}) // failures are reported by event and rescheduled
      },
      Math.max(0, at - this.#clock.now()),
    )
    this.emit('renewal:scheduled', at)
  }

  #attempt(): Promise<CertificateLifetime> {
    if (this.#inflight) return this.#inflight
    const abort = new AbortController()
    this.#abort = abort
    const p = (async () => {
      try {
        const cert = await this.#renew({ signal: abort.signal })
        if (abort.signal.aborted) throw abort.signal.reason
        this.#cert = cert
        this.#failures = 0
        this.emit('renewal:succeeded', cert)
        if (this.#running) this.#schedule(renewalTime(cert, this.#random))
        return cert
      } catch (err) {
        if (this.#running) {
          const base = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#failures, 30))
          this.#failures++
          const delay = base / 2 + (base / 2) * this.#random() // "equal jitter"
          const at = this.#clock.now() + delay
          this.emit('renewal:failed', err, at)
          this.#schedule(at)
        }
        throw err
      } finally {
        this.#inflight = undefined
        if (this.#abort === abort) this.#abort = undefined
      }
    })()
    this.#inflight = p
    return p
  }
}

/**
 * A renewal scheduler: renews at a uniformly random point between 50% and 80% of the certificate's
 * lifetime, retries failures with exponential backoff (with jitter, capped), keeps retrying after
 * expiry, and renews at once on `renewNow()` (a role change). Clock and randomness are injectable.
 */
export function renewalScheduler(options: RenewalSchedulerOptions): RenewalScheduler {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  if (typeof options.renew !== 'function') throw new TypeError('options.renew must be a function')
  const c = options.certificate
  if (!c || !(c.notBefore instanceof Date) || !(c.notAfter instanceof Date)) {
    throw new TypeError('options.certificate must have notBefore and notAfter dates')
  }
  return new Scheduler(options)
}
