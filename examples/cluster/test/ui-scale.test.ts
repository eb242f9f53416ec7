// The browser view at 1,000 nodes and 10,000 tasks, fed a synthetic feed: every card shown in its node's
// column, and patches change cards in place (the same elements, moved or edited), never a redraw.
// Timings are printed, not asserted (bench/ui writes them to docs/benchmarks.md).
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { UiTask } from '../src/ui/types.js'
import { launchBrowser, missingBrowser } from './browser.js'
import { waitFor } from './helpers.js'
import { type FakeFeed, fakeFeed, syntheticSwarm } from './ui-fake-feed.js'

const skip = missingBrowser()

const messages = (page: Page) => page.evaluate(() => (window as any).swarmView.stats.messages as number)

describe.skipIf(!!skip)('the browser view at scale', () => {
  let browser: Browser
  let feed: FakeFeed
  beforeAll(async () => {
    browser = await launchBrowser()
    feed = await fakeFeed()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await feed?.close()
  })

  it('shows 10,000 tasks on 1,000 nodes and applies patches to the same elements', async () => {
    const swarm = syntheticSwarm(1000, 10_000)
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    const connected = feed.connected()
    await page.goto(feed.url)
    const res = await connected
    feed.send(res, 'snapshot', swarm)
    await waitFor(async () => (await messages(page)) === 1, 'the snapshot applied', 60_000)
    expect(await page.locator('.column').count()).toBe(1000)
    expect(await page.locator('.card').count()).toBe(10_000)
    expect(await page.locator(`.column[data-node="${swarm.nodes[7]!.id}"] .card`).count()).toBe(10)

    // Tag every card element, then change 1,000 states, move 100 tasks, remove 100 and add 100.
    await page.evaluate(() => {
      for (const c of document.querySelectorAll('.card')) (c as any).tagged = true
    })
    const changed: UiTask[] = swarm.tasks
      .slice(0, 1000)
      .map((t) => ({ ...t, state: 'failed', err: 'task: non-zero exit (1)' }))
    const moved: UiTask[] = swarm.tasks.slice(1000, 1100).map((t) => ({ ...t, nodeId: swarm.nodes[999]!.id }))
    const removed = swarm.tasks.slice(1100, 1200).map((t) => t.id)
    const added: UiTask[] = swarm.tasks.slice(0, 100).map((t, i) => ({ ...t, id: `new${i}`, slot: 9000 + i }))
    feed.send(res, 'patch', { tasks: [...changed, ...moved, ...added], removed: { tasks: removed } })
    await waitFor(async () => (await messages(page)) === 2, 'the patch applied', 60_000)

    const seen = await page.evaluate(
      ({ changedId, movedId, target }) => {
        const cards = [...document.querySelectorAll<HTMLElement>('.card')]
        const card = (id: string) => document.querySelector<HTMLElement>(`.card[data-task="${id}"]`)!
        return {
          cards: cards.length,
          untagged: cards.filter((c) => !(c as any).tagged).map((c) => c.dataset.task),
          changedState: card(changedId).dataset.state,
          changedErr: card(changedId).querySelector('.err')!.textContent,
          movedTo: card(movedId).closest<HTMLElement>('.column')!.dataset.node,
          onTarget: document.querySelectorAll(`.column[data-node="${target}"] .card`).length,
        }
      },
      { changedId: changed[5]!.id, movedId: moved[3]!.id, target: swarm.nodes[999]!.id },
    )
    expect(seen.cards).toBe(10_000)
    // Only the 100 added cards are new elements; the changed and moved ones are the same elements.
    expect(seen.untagged.sort()).toEqual(added.map((t) => t.id).sort())
    expect(seen.changedState).toBe('failed')
    expect(seen.changedErr).toBe('task: non-zero exit (1)')
    expect(seen.movedTo).toBe(swarm.nodes[999]!.id)
    // Node 999 had 10 tasks (999, 1999, …, none of them removed) and got the 100 moved ones.
    expect(seen.onTarget).toBe(10 + 100)
    const running = await page.locator('tr[data-service] td:nth-child(3)').first().textContent()
    expect(running).toMatch(/^\d+ \/ 500$/)

    const stats = await page.evaluate(() => (window as any).swarmView.stats)
    console.log(
      `browser view, 1,000 nodes and 10,000 tasks: snapshot ${stats.applyMs[0].toFixed(0)} ms to apply, ${stats.frameMs[0]?.toFixed(0)} ms to the frame; patch of 1,300 tasks ${stats.applyMs[1].toFixed(1)} ms to apply`,
    )
    await page.close()
  }, 120_000)
})
