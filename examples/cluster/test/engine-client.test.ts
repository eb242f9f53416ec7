import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EngineClient, isExecutorError } from '../src/index.js'
import { waitFor } from './helpers.js'

describe('EngineClient', () => {
  let server: Server | undefined
  let dir: string | undefined
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
    if (dir) rmSync(dir, { recursive: true, force: true })
    server = undefined
    dir = undefined
  })

  it('sends nothing for a call already aborted, so an engine that goes away then throws nowhere', async () => {
    dir = mkdtempSync(join(tmpdir(), 'swarmkit-engine-client-'))
    const path = join(dir, 'docker.sock')
    // An engine that takes connections and then goes away without answering.
    const sockets: Socket[] = []
    let seen = ''
    server = createServer((s) => {
      sockets.push(s)
      s.on('data', (d) => (seen += String(d))).on('error', () => {})
    })
    await new Promise<void>((r) => server!.listen(path, () => r()))
    const uncaught: Error[] = []
    const onUncaught = (err: Error) => uncaught.push(err)
    process.on('uncaughtException', onUncaught)
    try {
      const client = new EngineClient(`unix://${path}`)
      const done = new AbortController()
      done.abort(new Error('desired state changed'))
      await expect(
        client.json({ method: 'GET', path: '/containers/x/json', signal: done.signal }),
      ).rejects.toThrow('desired state changed')
      // A request still in flight for comparison: it fails with the CLI's words, as a value.
      const pending = client.json({ method: 'GET', path: '/containers/y/json' }).catch((err: unknown) => err)
      // (An aborted call that connected anyway would have connected first, being made first.)
      await waitFor(() => seen.includes('/containers/y/json'), 'the pending request arrived')
      for (const s of sockets) s.destroy()
      const err = await pending
      expect(isExecutorError(err) && err.code).toBe('ENGINE_UNAVAILABLE')
      await new Promise((r) => setImmediate(r))
      expect(uncaught).toEqual([])
      expect(sockets).toHaveLength(1)
    } finally {
      process.off('uncaughtException', onUncaught)
    }
  })
})
