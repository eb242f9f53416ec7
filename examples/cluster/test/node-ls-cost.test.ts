// `docker node ls` at thousands of nodes: the answer was serialized whole at every request, 5 MB of JSON at
// 5,000 nodes, and in a 5,000 / 150,000 profile that one `JSON.stringify` held a manager's event loop for
// 250-570 ms at a time (more than the 300-600 ms election timeout on the leader). Each node's JSON text is
// kept with the node object now (objects are immutable: a changed node is a new object), so a request
// serializes only the nodes that changed since the last one. Counted, not timed: the characters
// `JSON.stringify` produced while a second `node ls` of unchanged nodes was answered. The whole answer is kept
// too, as bytes and gzipped (api/node-list.ts, json-body.ts): a request for unchanged nodes builds and
// compresses nothing, counted by the answers copied together and the gzip calls made.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import zlib from 'node:zlib'
import { ClusterStore } from '@swarmkit/store'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { engineApi } from '../src/api.js'
import type { Daemon } from '../src/daemon.js'

const servers: { close(): void }[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
  vi.restoreAllMocks()
})

function node(i: number) {
  return {
    id: `node${String(i).padStart(5, '0')}`,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    description: { hostname: `worker-${i}`, engine: { labels: { zone: 'a' } } },
    status: { state: 'ready', addr: '127.0.0.2' },
  } as never
}

/** GET `url` with `headers`: the status, headers and the raw body bytes (nothing decoded). */
function rawGet(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
    (resolve, reject) => {
      const req = request(url, { headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        )
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    },
  )
}

async function swarmApi(nodes: number) {
  const store = new ClusterStore()
  await store.update((tx) => {
    for (let i = 0; i < nodes; i++) tx.create('nodes', node(i))
  })
  const manager = { store, raft: { leaderId: '1' } }
  const daemon = { state: 'active', manager, requireManager: () => manager, options: {} } as unknown as Daemon
  const server = engineApi(daemon)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { store, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.47/nodes` }
}

describe('node ls at scale', () => {
  it('keeps the whole answer while the nodes are unchanged: built once, gzipped once', async () => {
    const { store, url } = await swarmApi(2000)
    // Answers built: each is one copy of every node's kept bytes into one buffer.
    const concat = Buffer.concat.bind(Buffer)
    let encoded = 0
    vi.spyOn(Buffer, 'concat').mockImplementation(((list: readonly Uint8Array[], ...rest: unknown[]) => {
      if (list.length >= 2000) encoded++
      return (concat as (...a: unknown[]) => Buffer)(list, ...rest)
    }) as typeof Buffer.concat)
    const gzip = vi.spyOn(zlib, 'gzip')
    const plain = await rawGet(url)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(JSON.parse(plain.body.toString())).toHaveLength(2000)
    const zipped = await rawGet(url, { 'Accept-Encoding': 'gzip' })
    expect(zipped.headers['content-encoding']).toBe('gzip')
    expect(zipped.body.length).toBeLessThan(plain.body.length / 4)
    expect(zlib.gunzipSync(zipped.body).equals(plain.body)).toBe(true)
    expect(encoded).toBe(1)
    expect(gzip).toHaveBeenCalledTimes(1)
    // Unchanged nodes: the kept bytes and their kept gzip, nothing encoded or compressed again.
    expect((await rawGet(url)).body.equals(plain.body)).toBe(true)
    expect((await rawGet(url, { 'Accept-Encoding': 'gzip' })).body.equals(zipped.body)).toBe(true)
    expect(encoded).toBe(1)
    expect(gzip).toHaveBeenCalledTimes(1)
    // Another filter is another answer; a changed node builds the answer anew, with the change.
    const filtered = await rawGet(`${url}?filters=${encodeURIComponent('{"id":{"node00007":true}}')}`)
    expect(JSON.parse(filtered.body.toString()).map((n: any) => n.ID)).toEqual(['node00007'])
    await store.update((tx) => {
      const n = tx.get('nodes', 'node00007')!
      tx.update('nodes', { ...n, spec: { ...n.spec, availability: 'drain' } })
    })
    const changed = JSON.parse(
      zlib.gunzipSync((await rawGet(url, { 'Accept-Encoding': 'gzip' })).body).toString(),
    )
    expect(changed.find((n: any) => n.ID === 'node00007').Spec.Availability).toBe('drain')
    expect(encoded).toBe(2)
    expect(gzip).toHaveBeenCalledTimes(2)
  })

  it('gzips only for clients that ask, and only large answers', async () => {
    const { url } = await swarmApi(3)
    const small = await rawGet(url, { 'Accept-Encoding': 'gzip' })
    expect(small.headers['content-encoding']).toBeUndefined()
    expect(JSON.parse(small.body.toString())).toHaveLength(3)
    const big = (await swarmApi(2000)).url
    for (const refused of ['identity', 'gzip;q=0', 'br'])
      expect((await rawGet(big, { 'Accept-Encoding': refused })).headers['content-encoding']).toBeUndefined()
    for (const accepted of ['gzip', 'deflate, gzip;q=0.5', '*'])
      expect((await rawGet(big, { 'Accept-Encoding': accepted })).headers['content-encoding']).toBe('gzip')
  })

  it('the docker CLI reads the gzipped answer (Go decompresses it transparently)', async () => {
    const { url } = await swarmApi(2000)
    const gzip = vi.spyOn(zlib, 'gzip')
    const host = `tcp://${new URL(url).host}`
    const config = mkdtempSync(join(tmpdir(), 'node-ls-gzip-'))
    try {
      const ids = await new Promise<string>((resolve, reject) =>
        execFile(
          'docker',
          ['node', 'ls', '-q'],
          { env: { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: config }, timeout: 60_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
        ),
      )
      expect(ids.trim().split('\n').sort()).toEqual(
        Array.from({ length: 2000 }, (_, i) => `node${String(i).padStart(5, '0')}`).sort(),
      )
      expect(gzip).toHaveBeenCalledTimes(1)
    } finally {
      rmSync(config, { recursive: true, force: true })
    }
  })

  it('serializes only the nodes that changed since the last answer, and answers the same JSON', async () => {
    const store = new ClusterStore()
    await store.update((tx) => {
      tx.create('nodes', {
        id: 'm1',
        spec: { labels: {}, role: 'manager', availability: 'drain' },
        role: 'manager',
        description: { hostname: 'm1', engine: { labels: {} } },
        status: { state: 'ready', addr: '127.0.0.1' },
        managerStatus: { raftId: '1', addr: '127.0.0.1:2377', leader: false, reachability: 'reachable' },
      } as never)
      for (let i = 0; i < 2000; i++) tx.create('nodes', node(i))
    })
    const manager = { store, raft: { leaderId: '1' } }
    const daemon = {
      state: 'active',
      manager,
      requireManager: () => manager,
      options: {},
    } as unknown as Daemon
    const server = engineApi(daemon)
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.47/nodes`
    const first = await (await fetch(url)).text()
    const stringify = JSON.stringify
    let produced = 0
    vi.spyOn(JSON, 'stringify').mockImplementation((...args: Parameters<typeof JSON.stringify>) => {
      const out = stringify(...args)
      produced += out?.length ?? 0
      return out
    })
    const second = await (await fetch(url)).text()
    expect(second).toBe(first)
    expect(first.length).toBeGreaterThan(2000 * 200)
    expect(produced).toBeLessThan(2000)
    // One node changed: only it is serialized again, and the answer shows the change.
    await store.update((tx) => {
      const n = tx.get('nodes', 'node00007')!
      tx.update('nodes', { ...n, spec: { ...n.spec, availability: 'drain' } })
    })
    produced = 0
    const third = JSON.parse(await (await fetch(url)).text()) as any[]
    expect(produced).toBeLessThan(2000)
    expect(third.find((n) => n.ID === 'node00007').Spec.Availability).toBe('drain')
    // The leader as raft knows it (node-leader.test.ts), in the text too.
    expect(third.find((n) => n.ID === 'm1').ManagerStatus.Leader).toBe(true)
  })
})
