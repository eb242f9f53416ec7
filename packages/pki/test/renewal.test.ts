import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { type CertificateLifetime, renewalScheduler, renewalTime, systemClock } from '../src/index.js'
import { FakeClock, seededFloat, settle } from './helpers.js'

const DAY = 86_400_000
const start = Date.UTC(2026, 0, 1)
const lifetime = (from: number, days = 90): CertificateLifetime => ({
  notBefore: new Date(from),
  notAfter: new Date(from + days * DAY),
})

describe('renewalTime', () => {
  it('falls uniformly between 50% and 80% of the lifetime', () => {
    const cert = lifetime(start)
    expect(renewalTime(cert, () => 0)).toBe(start + 45 * DAY)
    expect(renewalTime(cert, () => 0.5)).toBe(start + 58.5 * DAY)
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 3650 }),
        (r, days) => {
          const c = lifetime(start, days)
          const t = renewalTime(c, () => r)
          expect(t).toBeGreaterThanOrEqual(start + 0.5 * days * DAY)
          expect(t).toBeLessThan(start + 0.8 * days * DAY + 1)
        },
      ),
      { seed: 3, numRuns: 500 },
    )
    // Spread: a seeded sample covers the whole window in each tenth.
    const rnd = seededFloat(4)
    const buckets = new Array(10).fill(0)
    for (let i = 0; i < 2000; i++) {
      const f = (renewalTime(cert, rnd) - start) / (90 * DAY)
      buckets[Math.min(9, Math.floor(((f - 0.5) / 0.3) * 10))]++
    }
    for (const b of buckets) expect(b).toBeGreaterThan(120)
    expect(() => renewalTime(cert, () => 1)).toThrow(RangeError)
  })
})

describe('renewalScheduler', () => {
  it('renews once the renewal point is reached and schedules the next one from the new certificate', async () => {
    const clock = new FakeClock(start)
    let calls = 0
    const s = renewalScheduler({
      certificate: lifetime(start),
      clock,
      random: () => 0.5,
      renew: async () => {
        calls++
        return lifetime(clock.now())
      },
    })
    const renewed: CertificateLifetime[] = []
    s.on('renewal:succeeded', (c) => renewed.push(c))
    s.start()
    expect(s.nextAttemptAt).toBe(start + 58.5 * DAY)
    await clock.advanceTo(start + 58.5 * DAY - 1)
    expect(calls).toBe(0)
    await clock.advanceTo(start + 58.5 * DAY)
    expect(calls).toBe(1)
    expect(renewed[0]!.notBefore.getTime()).toBe(start + 58.5 * DAY)
    expect(s.nextAttemptAt).toBe(start + 117 * DAY)
    s.stop()
    expect(clock.pending).toBe(0)
  })

  it('retries failures with growing, capped, jittered backoff, also after expiry', async () => {
    const clock = new FakeClock(start)
    let failuresLeft = 12
    const s = renewalScheduler({
      certificate: lifetime(start, 1),
      clock,
      random: seededFloat(9),
      initialBackoffMs: 1000,
      maxBackoffMs: 60_000,
      renew: async () => {
        if (failuresLeft-- > 0) throw new Error('CA unreachable')
        return lifetime(clock.now())
      },
    })
    const delays: number[] = []
    s.on('renewal:failed', (_err, at) => delays.push(at - clock.now()))
    let ok = 0
    s.on('renewal:succeeded', () => ok++)
    s.start()
    await clock.advanceTo(start + 2 * DAY) // well past expiry: it keeps retrying
    expect(delays).toHaveLength(12)
    expect(ok).toBe(1)
    for (let i = 0; i < delays.length; i++) {
      const base = Math.min(60_000, 1000 * 2 ** i)
      expect(delays[i]).toBeGreaterThanOrEqual(base / 2)
      expect(delays[i]).toBeLessThanOrEqual(base)
    }
    expect(delays.at(-1)!).toBeGreaterThanOrEqual(30_000)
    s.stop()
  })

  it('renews at once on renewNow (a role change) and shares one attempt between callers', async () => {
    const clock = new FakeClock(start)
    let calls = 0
    let release!: () => void
    const s = renewalScheduler({
      certificate: lifetime(start),
      clock,
      random: () => 0,
      renew: () =>
        new Promise((resolve) => {
          calls++
          release = () => resolve(lifetime(clock.now()))
        }),
    })
    s.start()
    const a = s.renewNow()
    const b = s.renewNow()
    expect(a).toBe(b)
    await settle()
    expect(calls).toBe(1)
    release()
    expect((await a).notBefore.getTime()).toBe(start)
    expect(s.nextAttemptAt).toBe(start + 45 * DAY)
    s.stop()
  })

  it('aborts the attempt in flight on stop and schedules nothing more', async () => {
    const clock = new FakeClock(start)
    let signal: AbortSignal | undefined
    const s = renewalScheduler({
      certificate: lifetime(start),
      clock,
      renew: (o) => {
        signal = o.signal
        return new Promise((_resolve, reject) =>
          o.signal.addEventListener('abort', () => reject(o.signal.reason)),
        )
      },
    })
    s.start()
    const p = s.renewNow()
    s.stop()
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' })
    expect(signal!.aborted).toBe(true)
    expect(clock.pending).toBe(0)
  })

  it('lets a caller stop waiting for renewNow without aborting the shared attempt', async () => {
    const clock = new FakeClock(start)
    let release!: () => void
    const s = renewalScheduler({
      certificate: lifetime(start),
      clock,
      random: () => 0,
      renew: () => new Promise((resolve) => (release = () => resolve(lifetime(clock.now())))),
    })
    const ac = new AbortController()
    const waiting = s.renewNow({ signal: ac.signal })
    const other = s.renewNow()
    ac.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' })
    release()
    expect((await other).notBefore.getTime()).toBe(start)
    await expect(s.renewNow({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('validates its options', () => {
    expect(() => renewalScheduler({ certificate: lifetime(start) } as never)).toThrow(TypeError)
    expect(() =>
      renewalScheduler({
        certificate: lifetime(start),
        renew: async () => lifetime(start),
        initialBackoffMs: 0,
      }),
    ).toThrow(RangeError)
  })
})

describe('systemClock', () => {
  it('waits out delays longer than a Node timer can hold (renewals weeks away), in steps', () => {
    vi.useFakeTimers()
    const spy = vi.spyOn(globalThis, 'setTimeout')
    try {
      let fired = 0
      const day = 24 * 3600_000
      systemClock.setTimeout(() => fired++, 45 * day)
      for (const call of spy.mock.calls) expect(call[1]).toBeLessThanOrEqual(2 ** 31 - 1)
      vi.advanceTimersByTime(45 * day - 1)
      expect(fired).toBe(0)
      vi.advanceTimersByTime(1)
      expect(fired).toBe(1)
      for (const call of spy.mock.calls) expect(call[1]).toBeLessThanOrEqual(2 ** 31 - 1)
      expect(spy.mock.calls.length).toBe(2) // 45 days: one full step (24.8 days), then the rest

      const cancelled = systemClock.setTimeout(() => fired++, 60 * day)
      vi.advanceTimersByTime(30 * day) // past the first step
      systemClock.clearTimeout(cancelled)
      vi.advanceTimersByTime(31 * day)
      expect(fired).toBe(1)
    } finally {
      spy.mockRestore()
      vi.useRealTimers()
    }
  })
})
