import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import type { UiPatch, UiRaft, UiSnapshot } from '../src/ui/types.js'
import { closeNodes, node, ok, waitFor } from './helpers.js'

/** Reads server-sent events from `url` until `done` says so (or the timeout). */
async function readFeed(
  url: string,
  done: (events: { event: string; data: any }[]) => boolean,
  ms = 20_000,
): Promise<{ event: string; data: any }[]> {
  const stop = new AbortController()
  const timer = setTimeout(() => stop.abort(), ms)
  const res = await fetch(url, { signal: stop.signal })
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const events: { event: string; data: any }[] = []
  let buf = ''
  const decoder = new TextDecoder()
  try {
    for await (const chunk of res.body!) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true })
      let cut: number
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut)
        buf = buf.slice(cut + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event && data) events.push({ event, data: JSON.parse(data) })
      }
      if (done(events)) return events
    }
  } finally {
    clearTimeout(timer)
    stop.abort()
  }
  throw new Error(`the feed ended after ${events.length} events`)
}

describe('/ui/ on the Engine API address', () => {
  let n: ClusterNode
  let base: string
  beforeAll(async () => {
    n = await node('ui-server')
    base = n.dockerHost.replace('tcp://', 'http://')
  })
  afterAll(() => closeNodes(n))

  it('serves the page, its script and style, with a strict content security policy', async () => {
    expect(n.uiUrl).toBe(`${base}/ui/`)
    const page = await fetch(`${base}/ui/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/)
    expect(await page.text()).toMatch(/<script defer src="app.js"><\/script>/)
    const js = await fetch(`${base}/ui/app.js`)
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/)
    expect((await js.text()).length).toBeGreaterThan(1000)
    expect((await fetch(`${base}/ui/app.css`)).headers.get('content-type')).toMatch(/^text\/css/)
    const bare = await fetch(`${base}/ui`, { redirect: 'manual' })
    expect(bare.status).toBe(308)
    expect(bare.headers.get('location')).toBe('/ui/')
  })

  it('answers mistakes with a status and a message', async () => {
    const missing = await fetch(`${base}/ui/nothing`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ message: 'page not found: GET /ui/nothing' })
    const post = await fetch(`${base}/ui/events`, { method: 'POST' })
    expect(post.status).toBe(405)
    // Not in a swarm yet: no feed, in the daemon's words.
    const feed = await fetch(`${base}/ui/events`)
    expect(feed.status).toBe(503)
    expect((await feed.json()).message).toMatch(/not a swarm manager/)
  })

  it('streams a snapshot and then patches from the store, and its raft state', async () => {
    await ok(n, ['swarm', 'init'])
    // The manager records where it serves the page in its node's engine labels.
    const first = await readFeed(`${base}/ui/events`, (es) =>
      es.some(
        (e) =>
          (e.event === 'snapshot' && (e.data as UiSnapshot).nodes.some((x) => x.ui === base)) ||
          (e.event === 'patch' && ((e.data as UiPatch).nodes ?? []).some((x) => x.ui === base)),
      ),
    )
    const snap = first[0]!.data as UiSnapshot
    expect(first[0]!.event).toBe('snapshot')
    expect(snap.self).toBe(snap.nodes[0]!.id)
    expect(snap.nodes[0]).toMatchObject({ name: 'ui-server', role: 'manager', leader: true, state: 'ready' })
    expect(snap.networks.map((x) => [x.name, x.ingress, x.subnets])).toEqual([
      ['ingress', true, ['10.0.0.0/24']],
    ])

    const events = readFeed(`${base}/ui/events`, (es) => {
      const tasks = es.flatMap((e) => (e.event === 'patch' ? ((e.data as UiPatch).tasks ?? []) : []))
      return new Set(tasks.filter((t) => t.state === 'running').map((t) => t.id)).size === 3
    })
    await ok(n, [
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--replicas',
      '3',
      '-p',
      '18080:80',
      'nginx:1.27',
    ])
    const seen = await events
    const services = seen.flatMap((e) => (e.event === 'patch' ? ((e.data as UiPatch).services ?? []) : []))
    expect(services.at(-1)).toMatchObject({
      name: 'web',
      mode: 'replicated',
      replicas: 3,
      ports: ['18080:80/tcp'],
    })
    const task = seen.flatMap((e) => (e.event === 'patch' ? ((e.data as UiPatch).tasks ?? []) : [])).at(-1)!
    expect(task).toMatchObject({ service: 'web', image: 'nginx:1.27', nodeId: snap.self, desired: 'running' })

    // Updated: the replaced tasks stay in the service's history but leave the page (not meant to run).
    const old = new Set(
      seen.flatMap((e) => (e.event === 'patch' ? ((e.data as UiPatch).tasks ?? []) : [])).map((t) => t.id),
    )
    const removed = readFeed(`${base}/ui/events`, (es) => {
      const gone = new Set(
        es.flatMap((e) => (e.event === 'patch' ? ((e.data as UiPatch).removed?.tasks ?? []) : [])),
      )
      return [...old].every((id) => gone.has(id))
    })
    await ok(n, ['service', 'update', '-d', '--image', 'nginx:1.28', 'web'])
    await removed
    const history = await ok(n, ['service', 'ps', 'web', '-q', '--no-trunc'])
    for (const id of old) expect(history).toContain(id)

    const raft = await fetch(`${base}/ui/raft`)
    expect(raft.headers.get('access-control-allow-origin')).toBe('*')
    const r = (await raft.json()) as UiRaft
    expect(r).toMatchObject({ nodeId: snap.self, leader: snap.self, name: 'ui-server' })
    expect(r.term).toBeGreaterThan(0)
    await waitFor(
      async () => ((await (await fetch(`${base}/ui/raft`)).json()) as UiRaft).applied >= r.commit,
      'applied',
    )
  })
})
