import { afterEach, describe, expect, it } from 'vitest'
import { type LoopStallWatch, loopThreadTimes, watchLoopStalls } from '../src/loop-stalls.js'
import { waitFor } from './helpers.js'

let watch: LoopStallWatch | undefined
afterEach(() => watch?.close())

/** Holds the event loop for `ms` (what a long synchronous task does to a manager). */
function hold(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end);
}

/** Holds the event loop until its thread has run `ms` on a CPU (a stall that is the manager's own work). */
function holdCpu(ms: number): void {
  const start = loopThreadTimes()!.runMs
  while (loopThreadTimes()!.runMs - start < ms);
}

/** Blocks the thread for `ms` without running (what an oversubscribed host does to a manager). */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

const figure = (line: string, re: RegExp) => Number(re.exec(line)?.[1])

describe('event-loop stalls', () => {
  it('logs a stall longer than the threshold, with its garbage-collection share', async () => {
    const lines: string[] = []
    watch = watchLoopStalls({ log: (l) => lines.push(l), thresholdMs: 150, tickMs: 20 })
    hold(400)
    await waitFor(() => lines.length > 0, 'a stall reported')
    expect(lines[0]).toMatch(/^event loop stalled for \d+ ms, \d+ ms of it in garbage collection[;,] /)
    const ms = Number(/stalled for (\d+)/.exec(lines[0]!)?.[1])
    expect(ms).toBeGreaterThanOrEqual(350)
    expect(watch.stalls).toBeGreaterThanOrEqual(1)
  })

  it.runIf(loopThreadTimes() !== undefined)(
    "tells a stall of the manager's own work from one where its thread was blocked",
    async () => {
      const lines: string[] = []
      watch = watchLoopStalls({ log: (l) => lines.push(l), thresholdMs: 150, tickMs: 20, quietMs: 0 })
      holdCpu(300)
      await waitFor(() => lines.length >= 1, 'the busy stall')
      block(400)
      await waitFor(() => lines.length >= 2, 'the blocked stall')
      const ran = /the loop's thread ran (\d+) ms, waited (\d+) ms for a CPU and was blocked (\d+) ms$/
      expect(lines[0]).toMatch(ran)
      expect(figure(lines[0]!, ran)).toBeGreaterThanOrEqual(300)
      expect(lines[1]).toMatch(ran)
      expect(figure(lines[1]!, ran)).toBeLessThan(150)
      expect(figure(lines[1]!, /was blocked (\d+) ms/)).toBeGreaterThanOrEqual(300)
    },
  )

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
