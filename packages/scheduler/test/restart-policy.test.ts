import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { updateService } from '../src/index.js'
import { serviceSpec, taskSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.stop()
  h = undefined
})

const S = 1e9

describe('restart policy window', () => {
  it('counts the restarts in the window before the task ended, and a slot it stopped stays stopped', async () => {
    h = await harness({ behavior: () => 'fail' })
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('web', {
        taskTemplate: taskSpec({
          restartPolicy: { condition: 'any', delay: 1 * S, maxAttempts: 1, window: 10 * S },
        }),
      }),
    )
    await h.advance(5_000)
    // the first run failed and was restarted once; the restart failed within the window: not restarted
    expect(h.tasks(s.id)).toHaveLength(2)
    expect(h.tasks(s.id).every((t) => t.desiredState === 'shutdown')).toBe(true)
    // Long after the window, the decision stands (as swarm decides it relative to the task's end): a pass
    // of the orchestrator over the service (a change of its labels) starts nothing.
    await h.advance(60_000)
    const cur = h.getService(s.id)
    await updateService(h.store, s.id, { ...cur.spec, labels: { touched: 'yes' } })
    await h.advance(5_000)
    expect(h.tasks(s.id)).toHaveLength(2)
  })

  it('restarts again once earlier restarts fell out of the window before the task ended', async () => {
    let n = 0
    // fails at once twice, then runs (and the test makes it fail 20 s later)
    h = await harness({ behavior: () => (n++ < 2 ? 'fail' : 'run') })
    await h.addNodes(1)
    const s = await h.service(
      serviceSpec('web', {
        taskTemplate: taskSpec({
          restartPolicy: { condition: 'any', delay: 1 * S, maxAttempts: 2, window: 10 * S },
        }),
      }),
    )
    await h.advance(5_000)
    expect(h.running(s.id)).toHaveLength(1)
    await h.advance(20_000)
    await h.exec.exit(h.running(s.id)[0]!.id, 'failed')
    await h.advance(5_000)
    // the two restarts were more than 10 s before this failure: it is restarted
    expect(h.tasks(s.id)).toHaveLength(4)
    expect(h.tasks(s.id).filter((t) => t.desiredState === 'running')).toHaveLength(1)
  })
})

describe('restart policy properties', () => {
  it('never restarts a slot more than max attempts (within the window, when there is one)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxAttempts: fc.integer({ min: 1, max: 4 }),
          windowS: fc.constantFrom(0, 5, 30),
          delayS: fc.integer({ min: 0, max: 3 }),
          condition: fc.constantFrom<'any' | 'on-failure'>('any', 'on-failure'),
          outcomes: fc.array(fc.constantFrom<'fail' | 'complete' | 'reject'>('fail', 'complete', 'reject'), {
            minLength: 1,
            maxLength: 12,
          }),
          replicas: fc.integer({ min: 1, max: 3 }),
        }),
        async ({ maxAttempts, windowS, delayS, condition, outcomes, replicas }) => {
          let i = 0
          const hh = await harness({ taskHistory: 100, behavior: () => outcomes[i++ % outcomes.length]! })
          try {
            await hh.addNodes(2)
            const s = await hh.service(
              serviceSpec('web', {
                mode: { replicated: { replicas } },
                taskTemplate: taskSpec({
                  restartPolicy: { condition, delay: delayS * S, maxAttempts, window: windowS * S },
                }),
              }),
            )
            await hh.advance(120_000)
            const bySlot = new Map<number, number[]>()
            for (const t of hh.tasks(s.id)) {
              const list = bySlot.get(t.slot) ?? []
              list.push(t.meta.createdAt)
              bySlot.set(t.slot, list)
            }
            for (const created of bySlot.values()) {
              created.sort((a, b) => a - b)
              const restarts = created.slice(1)
              if (windowS === 0) expect(restarts.length).toBeLessThanOrEqual(maxAttempts)
              // no window of that length (ending at a restart) holds more than max attempts restarts
              else
                for (const end of restarts)
                  expect(
                    restarts.filter((x) => x > end - windowS * 1000 && x <= end).length,
                  ).toBeLessThanOrEqual(maxAttempts)
            }
          } finally {
            await hh.stop()
          }
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})
