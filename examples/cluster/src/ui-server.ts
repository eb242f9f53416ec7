// The browser view under `/ui/` on a node's Engine API address: the page (built by tsup from src/ui/ into
// dist/ui/, no network access at run time), its live feed, and each manager's raft state. The page acts
// through the Engine API routes beside it, as the docker CLI does; with --tlsverify it is served over the
// same mutual TLS.

import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Daemon } from './daemon.js'
import { MESSAGES } from './errors.js'
import { UI_ADDR_LABEL } from './ui/types.js'
import { streamUiFeed, uiRaft } from './ui-feed.js'

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>swarm</title>
<link rel="stylesheet" href="app.css">
<script defer src="app.js"></script>
</head>
<body>
<noscript>This view needs JavaScript.</noscript>
</body>
</html>
`

const TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
}

/** The built page's files: next to this module once bundled (dist/), or in dist/ when run from src/. */
function asset(name: string): Buffer | undefined {
  for (const dir of ['./ui/', '../dist/ui/']) {
    try {
      return readFileSync(new URL(dir + name, import.meta.url))
    } catch {}
  }
  return undefined
}
const cache = new Map<string, Buffer | undefined>()

function reply(res: ServerResponse, status: number, type: string, body: string | Buffer, extra = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  })
  res.end(body)
}

const json = (res: ServerResponse, status: number, value: unknown, extra = {}) =>
  reply(res, status, 'application/json', JSON.stringify(value), extra)

/**
 * Answers a request for `/ui` or `/ui/…` (`path` without any `/vX.Y` prefix); returns false for any other
 * path, which the Engine API then routes.
 */
export function serveUi(d: Daemon, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (path !== '/ui' && !path.startsWith('/ui/')) return false
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    json(res, 405, { message: `method not allowed: ${req.method} ${path}` }, { Allow: 'GET, HEAD' })
    return true
  }
  const name = path.slice('/ui/'.length)
  if (path === '/ui') {
    res.writeHead(308, { Location: '/ui/' })
    res.end()
  } else if (name === '') {
    reply(res, 200, 'text/html; charset=utf-8', PAGE, {
      'Cache-Control': 'no-cache',
      // The page's own script and style only; connect-src lets it follow the other managers' feeds.
      'Content-Security-Policy':
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    })
  } else if (name === 'events') {
    const m = d.manager
    if (!m) json(res, 503, { message: d.state === 'locked' ? MESSAGES.locked : MESSAGES.worker })
    else streamUiFeed(m, res)
  } else if (name === 'raft') {
    // Read by the page served from another manager: any origin may read it (indices and IDs only).
    const m = d.manager
    const cors = { 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' }
    if (!m) json(res, 503, { message: MESSAGES.worker }, cors)
    else json(res, 200, uiRaft(m), cors)
  } else if (TYPES[name]) {
    if (!cache.has(name)) cache.set(name, asset(name))
    const body = cache.get(name)
    if (!body)
      json(res, 404, { message: `the page is not built: run npm run build (dist/ui/${name} is missing)` })
    else reply(res, 200, TYPES[name], body, { 'Cache-Control': 'no-cache' })
  } else json(res, 404, { message: `page not found: GET ${path}` })
  return true
}

/**
 * Records, in an engine label of this node's object, where it serves the page, whenever it is a manager
 * and the label differs (after a start, a promotion, a restart on another port); the page moves to
 * another manager through these labels when its own goes away. Stops with `signal`.
 */
export function publishUiAddress(d: Daemon, url: string, signal: AbortSignal, periodMs = 1000): void {
  const tick = async () => {
    const m = d.manager
    if (!m || m.store.closed) return
    const n = m.store.view((tx) => tx.get('nodes', m.nodeId))
    if (!n?.description || n.description.engine.labels[UI_ADDR_LABEL] === url) return
    await m.store.update((tx) => {
      const cur = tx.get('nodes', m.nodeId)
      if (!cur?.description || cur.description.engine.labels[UI_ADDR_LABEL] === url) return
      tx.update('nodes', {
        ...cur,
        description: {
          ...cur.description,
          engine: {
            ...cur.description.engine,
            labels: { ...cur.description.engine.labels, [UI_ADDR_LABEL]: url },
          },
        },
      })
    })
  }
  let timer: NodeJS.Timeout | undefined
  const loop = () => {
    // A failed write (no leader yet, a conflicting update) is simply tried again next period.
    tick()
      .catch(() => {})
      .finally(() => {
        if (!signal.aborted) timer = setTimeout(loop, periodMs).unref()
      })
  }
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true })
  loop()
}
