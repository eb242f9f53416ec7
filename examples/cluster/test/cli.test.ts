import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, ok, rows, stateDir, waitFor } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** Runs the built swarmkit-cluster to its end: exit code and output. */
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/** The docker CLI's view of a node started as a process (only its dockerHost is used). */
const asNode = (dockerHost: string) => ({ dockerHost }) as ClusterNode

/** A stack trace line, as Node prints one. */
const STACK = /^\s+at .+\(?.*:\d+:\d+\)?$/m

// Issue 13, item 4: a second process on a live state directory must not break the first, and user mistakes
// on the command line get a usage text, never a stack trace.
describe('swarmkit-cluster as a process: the state directory lock and the command line', () => {
  let owner: ChildProcess | undefined
  let dockerHost = ''
  const dir = stateDir('cli-owner')
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`)
    owner = spawn(
      process.execPath,
      [
        CLI,
        '--state-dir',
        dir,
        '--api',
        '127.0.0.1:0',
        '--hostname',
        'owner',
        '--listen-addr',
        '127.0.0.1:0',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    owner.stdout!.on('data', (d) => {
      out += String(d)
    })
    owner.stderr!.resume()
    dockerHost = await waitFor(
      () => /export DOCKER_HOST=(tcp:\/\/\S+)/.exec(out)?.[1],
      'the owner to print its DOCKER_HOST',
      30_000,
    )
    await ok(asNode(dockerHost), ['swarm', 'init'])
  }, 60_000)
  afterAll(async () => {
    if (owner && owner.exitCode === null) {
      const exited = new Promise((r) => owner!.once('exit', r))
      owner.kill('SIGTERM')
      await exited
    }
    cleanup()
  })

  it('refuses a second process on a live state directory with one line and exit code 1', async () => {
    const locks = () =>
      Object.fromEntries(
        [join(dir, 'LOCK'), join(dir, 'raft', 'LOCK')]
          .filter((p) => existsSync(p))
          .map((p) => [p, readFileSync(p, 'utf8')]),
      )
    const before = locks()
    expect(Object.values(before)).toContain(String(owner!.pid))
    for (let attempt = 0; attempt < 2; attempt++) {
      const second = await run(['--state-dir', dir, '--api', '127.0.0.1:0'])
      expect(second.code).toBe(1)
      expect(second.stderr.trim().split('\n')).toHaveLength(1)
      expect(second.stderr).toMatch(/in use by process \d+/)
      expect(second.stderr).not.toMatch(STACK)
      // The owner's locks are where they were, and it still answers.
      expect(locks()).toEqual(before)
    }
    const table = rows(await ok(asNode(dockerHost), ['node', 'ls']))
    expect(table.map((r) => r[1])).toEqual(['owner'])
    expect(owner!.exitCode).toBeNull()
  })

  it('prints the usage for --help and for an unknown flag, without a stack trace', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^usage: swarmkit-cluster --state-dir DIR/)
    expect(help.stderr).toBe('')
    const unknown = await run(['--state-dir', stateDir('cli-unknown'), '--bogus'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/--bogus/)
    expect(unknown.stderr).toMatch(/usage: swarmkit-cluster --state-dir DIR/)
    expect(unknown.stderr).not.toMatch(STACK)
    const missing = await run([])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/usage: swarmkit-cluster/)
  })
})
