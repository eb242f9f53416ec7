/// <reference lib="dom" />
// The browser view's entry point (bundled by tsup into dist/ui/app.js). It follows its manager's feed
// (`/ui/events`, server-sent events), applies each patch to keyed elements, polls every manager's raft
// state, and when its manager goes away moves to another one the feed has named.

import './style.css'
import { rollbackService, rotateJoinToken, scaleService, setNodeAvailability } from './actions.js'
import { Board } from './board.js'
import { el, setText } from './dom.js'
import { NetworksPanel, RaftPanel, ServicesPanel } from './panels.js'
import type { UiNode, UiPatch, UiRaft, UiSnapshot, UiTask } from './types.js'

/** How long the feed may stay down before the page looks for another manager. */
const FAILOVER_AFTER_MS = 1500
const RAFT_POLL_MS = 1000

const status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' })
const connection = el('span', { class: 'connection', 'data-state': 'connecting' }, 'connecting…')
const notice = (text: string, bad = false) => {
  setText(status, text)
  status.dataset.bad = String(bad)
}

async function act(what: string, run: () => Promise<void>): Promise<void> {
  notice(`${what}…`)
  try {
    await run()
    notice(`${what}: done`)
  } catch (err) {
    notice(`${what}: ${(err as Error).message}`, true)
  }
}

const board = new Board({
  setAvailability: (n, a) =>
    void act(`${a === 'drain' ? 'drain' : 'activate'} ${n.name}`, () => setNodeAvailability(n.id, a)),
})
const services = new ServicesPanel({
  scale: (s, n) => void act(`scale ${s.name} to ${n}`, () => scaleService(s.id, n)),
  rollback: (s) => void act(`roll back ${s.name}`, () => rollbackService(s.id)),
})
services.root.id = 'services'
services.root.tabIndex = -1
const networks = new NetworksPanel()
const raft = new RaftPanel()

const nodes = new Map<string, UiNode>()
const tasks = new Map<string, UiTask>()
let self = ''

const rotate = (role: 'worker' | 'manager') =>
  el('button', { type: 'button', 'data-rotate': role }, `Rotate ${role} token`)
const rotateWorker = rotate('worker')
const rotateManager = rotate('manager')
rotateWorker.addEventListener(
  'click',
  () => void act('rotate the worker join token', () => rotateJoinToken('worker')),
)
rotateManager.addEventListener(
  'click',
  () => void act('rotate the manager join token', () => rotateJoinToken('manager')),
)

document.body.append(
  el(
    'header',
    { class: 'top' },
    el('a', { class: 'skip', href: '#services' }, 'Skip to services'),
    el('h1', {}, 'swarm'),
    connection,
    el('span', { class: 'spacer' }),
    rotateWorker,
    rotateManager,
  ),
  status,
  el('main', {}, board.root, el('div', { class: 'panels' }, services.root, networks.root, raft.root)),
)

const isRunning = (t: UiTask | undefined) => t?.state === 'running'

function putTask(t: UiTask): void {
  const old = tasks.get(t.id)
  tasks.set(t.id, t)
  if (isRunning(old) !== isRunning(t)) services.running(t.serviceId, isRunning(t) ? 1 : -1)
  else if (old && isRunning(t) && old.serviceId !== t.serviceId) {
    services.running(old.serviceId, -1)
    services.running(t.serviceId, 1)
  }
  board.upsertTask(t)
}

function dropTask(id: string): void {
  const old = tasks.get(id)
  if (!old) return
  tasks.delete(id)
  if (isRunning(old)) services.running(old.serviceId, -1)
  board.removeTask(id)
}

function putNode(n: UiNode): void {
  nodes.set(n.id, n)
  board.upsertNode(n)
  if (n.id === self) setText(connection, `live from ${n.name}`)
}

/** Applies a snapshot: everything not in it goes, the rest is updated in place; running counts are redone. */
function applySnapshot(s: UiSnapshot): void {
  self = s.self
  // Built off the document: one style and layout pass for the whole board instead of one per change.
  const main = board.root.parentElement
  const next = board.root.nextSibling
  board.root.remove()
  const keep = new Set(s.tasks.map((t) => t.id))
  for (const id of [...tasks.keys()]) if (!keep.has(id)) dropTask(id)
  const keepNodes = new Set(s.nodes.map((n) => n.id))
  for (const id of [...nodes.keys()])
    if (!keepNodes.has(id)) {
      nodes.delete(id)
      board.removeNode(id)
    }
  services.clear()
  networks.clear()
  for (const sv of s.services) services.upsert(sv)
  for (const n of s.nodes) putNode(n)
  for (const t of s.tasks) {
    tasks.set(t.id, t)
    board.upsertTask(t)
  }
  for (const t of tasks.values()) if (isRunning(t)) services.running(t.serviceId, 1)
  for (const n of s.networks) networks.upsert(n)
  main?.insertBefore(board.root, next)
}

function applyPatch(p: UiPatch): void {
  for (const s of p.services ?? []) services.upsert(s)
  for (const n of p.nodes ?? []) putNode(n)
  for (const t of p.tasks ?? []) putTask(t)
  for (const n of p.networks ?? []) networks.upsert(n)
  for (const id of p.removed?.tasks ?? []) dropTask(id)
  for (const id of p.removed?.services ?? []) services.remove(id)
  for (const id of p.removed?.networks ?? []) networks.remove(id)
  for (const id of p.removed?.nodes ?? []) {
    nodes.delete(id)
    board.removeNode(id)
  }
}

// Figures for tests and the bench: per message, the time to apply it to the DOM and the time until the
// frame showing it was drawn (style, layout and paint included).
const stats = { messages: 0, applyMs: [] as number[], frameMs: [] as number[] }
;(window as unknown as { swarmView: unknown }).swarmView = { stats, nodes, tasks }
const afterPaint = new MessageChannel()
const painted: (() => void)[] = []
afterPaint.port1.onmessage = () => painted.shift()?.()

function timed(apply: () => void): void {
  const t0 = performance.now()
  apply()
  board.flush()
  services.flush()
  stats.applyMs.push(performance.now() - t0)
  stats.messages++
  requestAnimationFrame(() => {
    painted.push(() => stats.frameMs.push(performance.now() - t0))
    afterPaint.port2.postMessage(0)
  })
}

/** Managers the page can move to: the others that recorded where they serve it, the leader first. */
function otherManagers(): string[] {
  return [...nodes.values()]
    .filter((n) => n.role === 'manager' && n.ui && n.id !== self && n.ui !== location.origin)
    .sort((a, b) => Number(b.leader) - Number(a.leader))
    .map((n) => n.ui.replace('//0.0.0.0:', `//${location.hostname}:`))
}

let failoverTimer: number | undefined
async function failover(): Promise<void> {
  for (const base of otherManagers()) {
    try {
      const r = await fetch(`${base}/ui/raft`, { signal: AbortSignal.timeout(1000) })
      if (!r.ok) continue
      notice(`moving to ${base}`)
      location.replace(`${base}/ui/`)
      return
    } catch {}
  }
  failoverTimer = window.setTimeout(() => void failover(), FAILOVER_AFTER_MS)
}

function connect(): void {
  const feed = new EventSource('events')
  feed.addEventListener('open', () => {
    window.clearTimeout(failoverTimer)
    failoverTimer = undefined
    connection.dataset.state = 'live'
  })
  feed.addEventListener('snapshot', (e) => timed(() => applySnapshot(JSON.parse((e as MessageEvent).data))))
  feed.addEventListener('patch', (e) => timed(() => applyPatch(JSON.parse((e as MessageEvent).data))))
  feed.addEventListener('error', () => {
    connection.dataset.state = 'lost'
    setText(connection, 'connection lost: looking for another manager…')
    // EventSource retries by itself; if this manager stays away, move to another.
    if (failoverTimer === undefined)
      failoverTimer = window.setTimeout(() => void failover(), FAILOVER_AFTER_MS)
  })
}

const raftAnswers = new Map<string, UiRaft | undefined>()
async function pollRaft(): Promise<void> {
  const managers = [...nodes.values()].filter((n) => n.role === 'manager')
  await Promise.all(
    managers.map(async (m) => {
      try {
        const base = m.id === self ? '' : m.ui.replace('//0.0.0.0:', `//${location.hostname}:`)
        if (m.id !== self && !base) throw new Error('address unknown')
        const r = await fetch(`${base}/ui/raft`, { signal: AbortSignal.timeout(RAFT_POLL_MS) })
        raftAnswers.set(m.id, r.ok ? ((await r.json()) as UiRaft) : undefined)
      } catch {
        raftAnswers.set(m.id, undefined)
      }
    }),
  )
  const names = new Map([...nodes.values()].map((n) => [n.id, n.name]))
  raft.show(
    managers.sort((a, b) => a.name.localeCompare(b.name)).map((m) => ({ id: m.id, name: m.name })),
    raftAnswers,
    names,
  )
  window.setTimeout(() => void pollRaft(), RAFT_POLL_MS)
}

connect()
void pollRaft()
