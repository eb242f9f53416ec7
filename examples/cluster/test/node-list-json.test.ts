// `node ls` answers the JSON text of each node's Docker form, kept per node object: the same JSON as
// stringifying the list, a changed node listed as it is now, and the text written as it is.
import type { ServerResponse } from 'node:http'
import type { Node } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { nodeRoutes } from '../src/api/nodes.js'
import type { RouteContext } from '../src/api/route.js'
import { nodeToDocker } from '../src/docker-json.js'
import { JsonText, writeJson } from '../src/http-json.js'

const node = (id: string, hostname: string, role: 'manager' | 'worker'): Node =>
  ({
    id,
    meta: { version: 1, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 },
    spec: { labels: {}, role, availability: 'active' },
    role,
    description: { hostname, engine: { engineVersion: 'simulated', labels: {}, plugins: [] } },
    status: { state: 'ready', addr: '127.0.0.1' },
  }) as unknown as Node

/** The `GET /nodes` route over a fixed list of node objects. */
function listing(nodes: () => Node[]) {
  const tx = { find: () => nodes() }
  const ctx = { view: (fn: (t: typeof tx) => unknown) => fn(tx) } as unknown as RouteContext
  const route = nodeRoutes(ctx).find(([method, re]) => method === 'GET' && re.test('/nodes'))!
  return async (filters?: object) => {
    const query = new URLSearchParams(filters ? { filters: JSON.stringify(filters) } : {})
    const reply = (await route[2]({ body: undefined, query, params: [] })) as { json: unknown }
    expect(reply.json).toBeInstanceOf(JsonText)
    return JSON.parse((reply.json as JsonText).text) as unknown
  }
}

describe('node ls', () => {
  it("answers every node's Docker form, as stringifying the list would", async () => {
    const nodes = [
      node('n1', 'alpha', 'manager'),
      node('n2', 'beta', 'worker'),
      node('n3', 'gamma', 'worker'),
    ]
    const ls = listing(() => nodes)
    expect(await ls()).toEqual(JSON.parse(JSON.stringify(nodes.map(nodeToDocker))))
    expect(await ls({ role: { worker: true } })).toEqual(
      JSON.parse(JSON.stringify(nodes.slice(1).map(nodeToDocker))),
    )
    expect(await listing(() => [])()).toEqual([])
  })

  it('lists a changed node as it is now', async () => {
    let nodes = [node('n1', 'alpha', 'worker'), node('n2', 'beta', 'worker')]
    const ls = listing(() => nodes)
    await ls()
    nodes = [
      nodes[0]!,
      { ...nodes[1]!, description: { ...nodes[1]!.description!, hostname: 'beta-renamed' } } as Node,
    ]
    const listed = (await ls()) as { Description: { Hostname: string } }[]
    expect(listed.map((n) => n.Description.Hostname)).toEqual(['alpha', 'beta-renamed'])
  })

  it('writes JSON text as it is, with its length', () => {
    const written: { status?: number; headers?: Record<string, unknown>; body?: string } = {}
    const res = {
      headersSent: false,
      writeHead: (status: number, headers: Record<string, unknown>) =>
        Object.assign(written, { status, headers }),
      end: (body: string) => Object.assign(written, { body }),
    } as unknown as ServerResponse
    writeJson(res, 200, new JsonText('[{"Name":"ü"}]'))
    expect(written).toEqual({
      status: 200,
      headers: { 'Content-Type': 'application/json', 'Content-Length': 15 },
      body: '[{"Name":"ü"}]',
    })
  })
})
