// swarmkit-cluster says which executor runs its tasks in its first log line.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { testEngine } from './engine-helpers.js'

const cli = join(import.meta.dirname, '../dist/cli.js')
const root = mkdtempSync(join(tmpdir(), 'swarmkit-cli-executor-'))
const engine = await testEngine()

/** Starts the CLI and resolves with its first log message (or its exit status and output when it stops). */
function firstLine(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, '--api', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    child.stderr.on('data', (d) => {
      err += String(d)
      if (err.includes('\n')) {
        child.kill('SIGTERM')
        // The message of the first log record (`time="…" level=info msg="…"`, the logger's text format).
        const line = err.split('\n')[0]!
        resolve(/\bmsg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line.replace(/^\S+Z /, ''))
      }
    })
    child.on('exit', (code) => resolve(`exit ${code}: ${err.trim()}`))
  })
}

describe.skipIf(!existsSync(cli))('swarmkit-cluster --engine-addr', () => {
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it.skipIf(!engine)('runs tasks on the engine it is given and says so first', async () => {
    expect(await firstLine(['--state-dir', join(root, 'a'), '--engine-addr', engine!])).toBe(
      `executor: docker, engine at ${engine}`,
    )
  })

  it('falls back to the simulated executor when no engine answers at the default socket', async () => {
    const line = await firstLine(['--state-dir', join(root, 'b')])
    if (line.startsWith('executor: docker')) return // this machine runs an engine at /var/run/docker.sock
    expect(line).toBe('executor: simulated (no engine answers at unix:///var/run/docker.sock)')
    expect(await firstLine(['--state-dir', join(root, 'c'), '--simulated'])).toBe(
      'executor: simulated (--simulated)',
    )
  })

  it('refuses an engine address it cannot use, without a stack trace', async () => {
    expect(await firstLine(['--state-dir', join(root, 'd'), '--engine-addr', 'foo'])).toBe(
      'swarmkit-cluster: engine address foo: expected unix:///path or tcp://host:port',
    )
  })
})
