import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, startNode } from '../src/index.js'
import { closeNodes, docker, ok, stateDir } from './helpers.js'

/** One HTTP request to the node's Engine API; the status and the parsed JSON body. */
async function request(
  n: ClusterNode,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: { message?: string } & Record<string, unknown> }> {
  const base = n.dockerHost.replace(/^tcp:/, 'http:')
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : {} }
}

// Issue 13, item 8: what moby refuses, this daemon refuses too, with moby's words and no stack trace.
describe('bad input is refused as moby refuses it', () => {
  let n: ClusterNode
  const logged: string[] = []
  beforeAll(async () => {
    n = await startNode({
      stateDir: stateDir('bad-input'),
      apiAddress: '127.0.0.1:0',
      hostname: 'bad-input',
      listenAddr: '127.0.0.1:0',
      heartbeatPeriodMs: 1000,
      taskStepMs: 20,
      routingMesh: false,
      log: (l) => logged.push(l),
    })
    await ok(n, ['swarm', 'init', '--autolock'])
  })
  afterAll(() => closeNodes(n))

  it('refuses secret and config data that is not base64, with the JSON decoder error', async () => {
    for (const kind of ['secrets', 'configs']) {
      const r = await request(n, 'POST', `/v1.50/${kind}/create`, { Name: `x-${kind}`, Data: 'not base64!' })
      expect(r.status).toBe(400)
      expect(r.json.message).toBe('invalid JSON: illegal base64 data at input byte 3')
      // Missing padding: Go's StdEncoding wants it.
      const unpadded = await request(n, 'POST', `/v1.50/${kind}/create`, { Name: `y-${kind}`, Data: 'abc' })
      expect(unpadded.status).toBe(400)
      expect(unpadded.json.message).toBe('invalid JSON: illegal base64 data at input byte 0')
    }
    expect((await ok(n, ['secret', 'ls', '-q'])).trim()).toBe('')
    expect((await ok(n, ['config', 'ls', '-q'])).trim()).toBe('')
    // Proper base64 (with line breaks, which Go skips) is still taken.
    const good = await request(n, 'POST', '/v1.50/secrets/create', { Name: 'good', Data: 'aGVs\nbG8=' })
    expect(good.status).toBe(201)
  })

  it('refuses API versions under 1.24 as too old', async () => {
    const r = await request(n, 'GET', '/v1.0/info')
    expect(r.status).toBe(400)
    expect(r.json.message).toBe(
      'client version 1.0 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version',
    )
    expect((await request(n, 'GET', '/v1.23/version')).status).toBe(400)
    expect((await request(n, 'GET', '/v1.24/version')).status).toBe(200)
  })

  it('answers a malformed unlock key with a clear error and logs no stack trace', async () => {
    const key = (await ok(n, ['swarm', 'unlock-key', '-q'])).trim()
    await n.close()
    n = await startNode({
      stateDir: stateDir('bad-input'),
      apiAddress: '127.0.0.1:0',
      hostname: 'bad-input',
      heartbeatPeriodMs: 1000,
      routingMesh: false,
      log: (l) => logged.push(l),
    })
    expect(await ok(n, ['info'])).toMatch(/Swarm: locked/)
    logged.length = 0
    for (const bad of ['nonsense', 'SWMKEY-1-!!!!', 'SWMKEY-1-abc']) {
      const r = await docker(n, ['swarm', 'unlock'], `${bad}\n`)
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(
        /Error response from daemon: (invalid key string|swarm could not be unlocked: invalid key provided)/,
      )
    }
    const raw = await request(n, 'POST', '/v1.50/swarm/unlock', { UnlockKey: 'nonsense' })
    expect(raw.status).toBe(400)
    expect(raw.json.message).toBe('invalid key string')
    const wrongType = await request(n, 'POST', '/v1.50/swarm/unlock', { UnlockKey: 42 })
    expect(wrongType.status).toBe(400)
    expect(logged.join('\n')).not.toMatch(/TypeError|\n\s+at /)
    expect(await ok(n, ['info'])).toMatch(/Swarm: locked/)
    await ok(n, ['swarm', 'unlock'], `${key}\n`)
    expect(await ok(n, ['info'])).toMatch(/Swarm: active/)
  })
})
