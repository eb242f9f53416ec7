import { afterEach, describe, expect, it } from 'vitest'
import { type LoopStallWatch, watchLoopStalls } from '../src/loop-stalls.js'
import { waitFor } from './helpers.js'

let watch: LoopStallWatch | undefined
afterEach(() => watch?.close())

/** Holds the event loop for `ms` (what a long synchronous task does to a manager). */
function hold(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end);
}

describe('event-loop stalls', () => {
  it('logs a stall longer than the threshold, with its garbage-collection share', async () => {
    const lines: string[] = []
    watch = watchLoopStalls({ log: (l) => lines.push(l), thresholdMs: 150, tickMs: 20 })
    hold(400)
    await waitFor(() => lines.length > 0, 'a stall reported')
    expect(lines[0]).toMatch(/^event loop stalled for \d+ ms, \d+ ms of it in garbage collection$/)
    const ms = Number(/stalled for (\d+)/.exec(lines[0]!)?.[1])
    expect(ms).toBeGreaterThanOrEqual(350)
    expect(watch.stalls).toBeGreaterThanOrEqual(1)
  })

  it('reports at most one line per quiet period, counting the stalls in between', async () => {
    const lines: string[] = []
    watch = watchLoopStalls({ log: (l) => lines.push(l), thresholdMs: 100, tickMs: 10, quietMs: 60_000 })
    hold(200)
    await waitFor(() => watch!.stalls >= 1, 'the first stall')
    const first = watch.stalls
    hold(200)
    await waitFor(() => watch!.stalls > first, 'the second stall')
    expect(lines).toHaveLength(1)
  })

  it('refuses a threshold not above the sampling period', () => {
    expect(() => watchLoopStalls({ log: () => {}, thresholdMs: 50, tickMs: 50 })).toThrow(RangeError)
  })
})
