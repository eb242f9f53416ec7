// The browser view in real headless Chromium against a cluster of five processes: three managers, two
// workers (simulated executor), driven by the docker CLI and by the page's own controls.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ARTIFACTS, launchBrowser, missingBrowser } from './browser.js'
import { waitFor } from './helpers.js'
import { ProcessCluster, type ProcessNode } from './process-cluster.js'

const skip = missingBrowser()
if (skip) console.warn(`skipping the browser view tests: ${skip}`)

/** IDs of the tasks meant to run, per node ID. */
async function runningTasks(m: ProcessNode, service: string): Promise<{ id: string; node: string }[]> {
  const out = await m.ok(['service', 'ps', service, '-q', '--no-trunc', '--filter', 'desired-state=running'])
  const ids = out.split('\n').filter(Boolean)
  return Promise.all(
    ids.map(async (id) => ({
      id,
      node: (await m.ok(['inspect', '--type', 'task', '--format', '{{.NodeID}}', id])).trim(),
    })),
  )
}

const cards = (page: Page, state = 'running') =>
  page.evaluate(
    (s) =>
      [...document.querySelectorAll(`.card[data-state="${s}"]`)].map((c) => (c as HTMLElement).dataset.task!),
    state,
  )

const cardsOn = (page: Page, nodeId: string) =>
  page.evaluate(
    (id) =>
      [...document.querySelectorAll(`.column[data-node="${id}"] .card`)].map(
        (c) => (c as HTMLElement).dataset.task!,
      ),
    nodeId,
  )

describe.skipIf(!!skip)('the browser view', () => {
  const cluster = new ProcessCluster()
  let browser: Browser
  let m1: ProcessNode
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    m1 = await cluster.start('manager1')
    const [m2, m3, w1, w2] = await Promise.all(
      ['manager2', 'manager3', 'worker1', 'worker2'].map((n) => cluster.start(n)),
    )
    await m1.ok(['swarm', 'init', '--advertise-addr', '127.0.0.1'])
    // A killed worker is Down after three missed heartbeats.
    await m1.ok(['swarm', 'update', '--dispatcher-heartbeat', '1s'])
    const join = (await m1.ok(['swarm', 'join-token', 'manager'])).match(
      /docker swarm join --token (\S+) (\S+)/,
    )!
    const workerToken = (await m1.ok(['swarm', 'join-token', '-q', 'worker'])).trim()
    for (const m of [m2!, m3!]) await m.ok(['swarm', 'join', '--token', join[1]!, join[2]!])
    for (const w of [w1!, w2!]) await w.ok(['swarm', 'join', '--token', workerToken, join[2]!])
    await waitFor(
      async () =>
        (await m1.ok(['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((s) => s === 'Ready')
          .length === 5,
      'five ready nodes',
      60_000,
    )
    for (const line of (await m1.ok(['node', 'ls', '--format', '{{.ID}} {{.Hostname}}']))
      .trim()
      .split('\n')) {
      const [id, name] = line.split(' ')
      ids[name!] = id!
    }
    await m1.ok(['service', 'create', '-d', '--name', 'web', '--replicas', '4', 'nginx:1.27-alpine'])
    await m1.ok(['service', 'create', '-d', '--name', 'api', '--replicas', '2', 'busybox:1.36'])
    mkdirSync(ARTIFACTS, { recursive: true })
    browser = await launchBrowser()
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await cluster.close()
  }, 60_000)

  it('shows every node and task, scales and rolls back from the page, follows a lost worker and a lost leader', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(String(e)))
    await page.goto(`http://${m1.api}/ui/`)

    // Every node has its column, with its name, and every task meant to run has its card.
    await waitFor(
      async () => {
        for (const id of Object.values(ids))
          if ((await page.locator(`.column[data-node="${id}"]`).count()) !== 1) return false
        const expected = [...(await runningTasks(m1, 'web')), ...(await runningTasks(m1, 'api'))]
        const shown = await cards(page)
        return expected.length === 6 && expected.every((t) => shown.includes(t.id))
      },
      'every node and running task on the page',
      60_000,
    )
    for (const [name, id] of Object.entries(ids))
      expect(await page.locator(`.column[data-node="${id}"] .node-name`).textContent()).toBe(name)
    await expect(page.locator(`.column[data-node="${ids.manager1}"] .badge.leader`).count()).resolves.toBe(1)
    // Each card sits in the column of its node.
    for (const t of await runningTasks(m1, 'web')) expect(await cardsOn(page, t.node)).toContain(t.id)
    await waitFor(
      async () => (await page.locator('tr[data-answered="true"]').count()) === 3,
      'raft of three managers',
      30_000,
    )
    await expect(page.locator('table.services tr[data-service]').count()).resolves.toBe(2)
    await page.screenshot({ path: join(ARTIFACTS, 'ui-light.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: join(ARTIFACTS, 'ui-dark.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })

    // Scale from the page, with the keyboard: the field, the new number, Enter.
    const replicas = page.getByLabel('replicas of web')
    await replicas.focus()
    await replicas.fill('7')
    await page.keyboard.press('Enter')
    await waitFor(
      async () => (await runningTasks(m1, 'web')).length === 7,
      'web scaled to 7 by the page',
      30_000,
    )
    await waitFor(
      async () => {
        const shown = await cards(page)
        const web = await runningTasks(m1, 'web')
        return web.every((t) => shown.includes(t.id)) && shown.length === 9
      },
      'the new cards',
      30_000,
    )
    expect(await page.locator('tr[data-service] td:nth-child(3)').allTextContents()).toContain('7 / 7')

    // Roll back from the page: the previous spec had 4 replicas.
    await page.getByRole('button', { name: 'roll back web' }).click()
    await waitFor(
      async () => (await cards(page)).length === 6,
      'web back at 4 cards after the rollback',
      30_000,
    )
    expect(
      (await m1.ok(['service', 'inspect', 'web', '--format', '{{.Spec.Mode.Replicated.Replicas}}'])).trim(),
    ).toBe('4')

    // Rotate the worker join token from the page.
    const before = (await m1.ok(['swarm', 'join-token', '-q', 'worker'])).trim()
    await page.getByRole('button', { name: 'Rotate worker token' }).click()
    await waitFor(
      async () => (await m1.ok(['swarm', 'join-token', '-q', 'worker'])).trim() !== before,
      'a new worker token',
      30_000,
    )

    // Drain worker2 from the page: its cards move; activate it again.
    await page.getByRole('button', { name: 'drain node worker2' }).click()
    await waitFor(
      async () => (await cardsOn(page, ids.worker2!)).length === 0 && (await cards(page)).length === 6,
      'worker2 drained on the page',
      30_000,
    )
    expect((await m1.ok(['node', 'inspect', 'worker2', '--format', '{{.Spec.Availability}}'])).trim()).toBe(
      'drain',
    )
    await page.getByRole('button', { name: 'activate node worker2' }).click()
    await waitFor(
      async () =>
        (await m1.ok(['node', 'inspect', 'worker2', '--format', '{{.Spec.Availability}}'])).trim() ===
        'active',
      'worker2 active again',
    )

    // Kill worker1's process: it goes down on the page and its tasks move to other nodes.
    const onWorker1 = await cardsOn(page, ids.worker1!)
    expect(onWorker1.length).toBeGreaterThan(0)
    await cluster.nodes.find((n) => n.name === 'worker1')!.kill()
    await waitFor(
      async () =>
        (await page.locator(`.column[data-node="${ids.worker1}"]`).getAttribute('data-state')) === 'down' &&
        (await cardsOn(page, ids.worker1!)).length === 0 &&
        (await cards(page)).length === 6,
      'worker1 down and its tasks running elsewhere',
      60_000,
    )
    await page.screenshot({ path: join(ARTIFACTS, 'ui-worker-down.png'), fullPage: true })

    // Kill the leader, which serves the page: the page moves to another manager and marks the new leader.
    await m1.kill()
    const moved = await waitFor(
      async () => {
        const url = new URL(page.url())
        return url.host !== m1.api ? url.host : undefined
      },
      'the page on another manager',
      60_000,
    )
    expect(cluster.nodes.filter((n) => n.name.startsWith('manager')).map((n) => n.api)).toContain(moved)
    const leader = await waitFor(
      async () => {
        const col = page.locator('.column[data-leader="true"]')
        if ((await col.count()) !== 1) return undefined
        const id = await col.getAttribute('data-node')
        return id !== ids.manager1 ? id : undefined
      },
      'a new leader marked',
      60_000,
    )
    const leaderName = Object.entries(ids).find(([, id]) => id === leader)![0]
    await waitFor(
      async () =>
        (await page.locator('tr[data-manager] td:nth-child(3)').allTextContents()).filter(
          (t) => t === leaderName,
        ).length === 2,
      'both live managers naming the new leader in the raft table',
      30_000,
    )
    await page.screenshot({ path: join(ARTIFACTS, 'ui-new-leader.png'), fullPage: true })
    expect(errors).toEqual([])
    await context.close()
  }, 300_000)
})
