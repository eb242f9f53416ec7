import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../src/engine-client.js'
import { proxyRequest } from '../src/engine-proxy.js'

const dir = mkdtempSync(join(tmpdir(), 'swarmkit-proxy-'))
const servers: Server[] = []
afterAll(() => {
  for (const s of servers) s.close()
  rmSync(dir, { recursive: true, force: true })
})

const listen = (s: Server, path: string) =>
  new Promise<void>((resolve) => {
    servers.push(s)
    s.listen(path, () => resolve())
  })

describe('proxyRequest', () => {
  it("passes a long poll's headers on at once, before its body (docker run waits for them)", async () => {
    let held: ServerResponse | undefined
    const engine = createServer((_req, res) => {
      // As dockerd answers `POST /containers/{id}/wait`: the status now, the body when the container exits.
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.flushHeaders()
      held = res
    })
    await listen(engine, join(dir, 'engine.sock'))
    const client = new EngineClient(`unix://${join(dir, 'engine.sock')}`)
    const proxy = createServer((req, res) => proxyRequest(client, req, res))
    await listen(proxy, join(dir, 'proxy.sock'))
    const answer = await new Promise<{ status: number; body: Promise<string> }>((resolve, reject) => {
      const r = request({ socketPath: join(dir, 'proxy.sock'), method: 'POST', path: '/containers/x/wait' })
      r.on('response', (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        resolve({ status: res.statusCode ?? 0, body: new Promise((done) => res.on('end', () => done(text))) })
      })
      r.on('error', reject)
      r.end()
    })
    expect(answer.status).toBe(200)
    held!.end('{"StatusCode":0}')
    expect(await answer.body).toBe('{"StatusCode":0}')
  })
})
