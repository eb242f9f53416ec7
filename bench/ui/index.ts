// The browser view at 1,000 nodes and 10,000 tasks in headless Chromium (Debian's, via playwright-core): the
// time to apply a snapshot and patches of several sizes to the DOM, and until the frame showing them was
// drawn, as the page itself measures them (window.swarmView.stats). Needs `npm run build` first.

import type { UiTask } from '../../examples/cluster/src/ui/types.js'
import { launchBrowser } from '../../examples/cluster/test/browser.js'
import { fakeFeed, syntheticSwarm } from '../../examples/cluster/test/ui-fake-feed.js'

const NODES = 1000
const TASKS = 10_000
// Run bundled from bench/.out/: the page's build is found from the repository root.
const built = new URL('../../examples/cluster/dist/ui/', import.meta.url)

const browser = await launchBrowser()
const feed = await fakeFeed(built)
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
const connected = feed.connected()
await page.goto(feed.url)
const res = await connected
const stats = () =>
  page.evaluate(
    () => (window as any).swarmView.stats as { messages: number; applyMs: number[]; frameMs: number[] },
  )
async function settle(messages: number): Promise<void> {
  for (;;) {
    const s = await stats()
    if (s.messages >= messages && s.frameMs.length >= messages) return
    await new Promise((r) => setTimeout(r, 5))
  }
}

const swarm = syntheticSwarm(NODES, TASKS)
let sent = 0
feed.send(res, 'snapshot', swarm)
await settle(++sent)
const rows: [string, number, number[], number[]][] = []
const s0 = await stats()
rows.push([`snapshot: ${NODES} nodes, ${TASKS} tasks`, 1, s0.applyMs.slice(0, 1), s0.frameMs.slice(0, 1)])

let flip = 0
async function run(label: string, times: number, patch: (i: number) => Parameters<typeof feed.send>[2]) {
  const from = sent
  for (let i = 0; i < times; i++) {
    feed.send(res, 'patch', patch(i))
    await settle(++sent)
  }
  const s = await stats()
  rows.push([label, times, s.applyMs.slice(from), s.frameMs.slice(from)])
}
const state = () => (++flip % 2 ? 'starting' : 'running')
await run('1 task changes state', 200, (i) => ({
  tasks: [{ ...swarm.tasks[(i * 37) % TASKS]!, state: state() }],
}))
await run('100 tasks change state', 50, (i) => ({
  tasks: swarm.tasks.slice(i * 100, i * 100 + 100).map((t) => ({ ...t, state: state() })),
}))
await run('1,000 tasks change state', 20, (i) => ({
  tasks: swarm.tasks.slice((i % 10) * 1000, (i % 10) * 1000 + 1000).map((t) => ({ ...t, state: state() })),
}))
await run('100 tasks move to another node', 50, (i) => ({
  tasks: swarm.tasks
    .slice(i * 100, i * 100 + 100)
    .map((t): UiTask => ({ ...t, nodeId: swarm.nodes[(i * 7) % NODES]!.id })),
}))
await run('100 tasks removed, 100 added', 50, (i) => ({
  tasks: swarm.tasks.slice(i * 100, i * 100 + 100).map((t): UiTask => ({ ...t, id: `x${i}-${t.id}` })),
  removed: { tasks: swarm.tasks.slice(i * 100, i * 100 + 100).map((t) => t.id) },
}))

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p95 = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))
console.log(`Chromium ${browser.version()}, ${NODES} nodes, ${TASKS} tasks; times in ms (median / p95)`)
console.log('| message | count | apply to the DOM | until the frame is drawn |')
console.log('| --- | --- | --- | --- |')
for (const [label, n, apply, frame] of rows)
  console.log(
    `| ${label} | ${n} | ${ms(median(apply))} / ${ms(p95(apply))} | ${ms(median(frame))} / ${ms(p95(frame))} |`,
  )
const key = (label: string) =>
  label
    .replace(/[^a-z0-9]+/gi, '_')
    .replace(/^_|_$/g, '')
    .toLowerCase()
console.log(
  JSON.stringify(
    Object.fromEntries(
      rows.flatMap(([label, , apply, frame]) => [
        [`${key(label)}_apply_ms_median`, Number(ms(median(apply)))],
        [`${key(label)}_frame_ms_median`, Number(ms(median(frame)))],
      ]),
    ),
  ),
)
await browser.close()
await feed.close()
