// A stand-in for a manager's /ui/ for the browser view's scale test and bench: the built page, and a feed
// the caller writes synthetic snapshots and patches to (no cluster needed for 1,000 nodes and 10,000 tasks).
import { readFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { UiNode, UiPatch, UiService, UiSnapshot, UiTask } from '../src/ui/types.js'

export interface FakeFeed {
  readonly url: string
  /** Resolves with the next page's feed once it connects. */
  connected(): Promise<ServerResponse>
  send(res: ServerResponse, event: 'snapshot' | 'patch', data: UiSnapshot | UiPatch): void
  close(): Promise<void>
}

/** `dist`: the built page's directory (default: this package's dist/ui/). */
export async function fakeFeed(dist = new URL('../dist/ui/', import.meta.url)): Promise<FakeFeed> {
  const waiting: ((res: ServerResponse) => void)[] = []
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/ui/') {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      res.end('<!doctype html><link rel="stylesheet" href="app.css"><script defer src="app.js"></script>')
    } else if (path === '/ui/app.js' || path === '/ui/app.css') {
      const name = path.slice(4)
      res.writeHead(200, { 'Content-Type': name.endsWith('.js') ? 'text/javascript' : 'text/css' })
      res.end(readFileSync(new URL(name, dist)))
    } else if (path === '/ui/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
      res.write('retry: 60000\n\n')
      waiting.shift()?.(res)
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/ui/`,
    connected: () => new Promise((r) => waiting.push(r)),
    send(res, event, data) {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    },
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

const id = (kind: string, i: number) => `${kind}${String(i).padStart(23, '0')}`

/** `nodes` workers and `tasks` running tasks of 20 services, spread round-robin. */
export function syntheticSwarm(nodes: number, tasks: number): UiSnapshot {
  const ns: UiNode[] = Array.from({ length: nodes }, (_, i) => ({
    id: id('n', i),
    name: `node-${String(i).padStart(4, '0')}`,
    role: 'worker',
    availability: 'active',
    state: 'ready',
    addr: '127.0.0.1',
    leader: false,
    reachability: '',
    ui: '',
    version: 1,
  }))
  const ss: UiService[] = Array.from({ length: 20 }, (_, i) => ({
    id: id('s', i),
    name: `svc-${i}`,
    mode: 'replicated',
    replicas: Math.ceil(tasks / 20),
    image: `app${i}:1.${i}`,
    ports: [],
    update: '',
    updateMessage: '',
    hasPrevious: false,
    version: 1,
  }))
  const ts: UiTask[] = Array.from({ length: tasks }, (_, i) => ({
    id: id('t', i),
    serviceId: ss[i % 20]!.id,
    service: ss[i % 20]!.name,
    slot: Math.floor(i / 20) + 1,
    nodeId: ns[i % nodes]!.id,
    image: ss[i % 20]!.image,
    state: 'running',
    desired: 'running',
    err: '',
  }))
  return { self: ns[0]!.id, clusterId: 'c', nodes: ns, services: ss, tasks: ts, networks: [] }
}
