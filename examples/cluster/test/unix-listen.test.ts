import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { listenUnix } from '../src/unix-listen.js'

const dir = mkdtempSync(join(tmpdir(), 'swarmkit-unix-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('listenUnix', () => {
  it('replaces the socket file a killed process left behind', async () => {
    const path = join(dir, 'stale.sock')
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
    ])
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await exited
    const plain = createServer()
    await expect(
      new Promise((resolve, reject) => plain.once('error', reject).listen(path, () => resolve(undefined))),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' })
    const server = createServer((s) => s.end('hi'))
    await listenUnix(server, path)
    server.close()
  })

  it('leaves a socket a live process answers on alone', async () => {
    const path = join(dir, 'live.sock')
    const live = createServer()
    await listenUnix(live, path)
    await expect(listenUnix(createServer(), path)).rejects.toMatchObject({ code: 'EADDRINUSE' })
    live.close()
  })
})
