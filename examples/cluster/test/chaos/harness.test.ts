// The chaos harness leaves no manager process behind on any path: a test body that goes on after its cluster
// was destroyed (it timed out) cannot start one, and a manager dies with the worker that started it however
// that worker ends (vitest ends its workers with SIGTERM, which runs no `exit` handler). The chaos project's
// setup file (no-leftovers.ts) then checks, after every file, that nothing it started still runs.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { ChaosCluster, CLI, until } from './managers.js'
import { deathBound, survivors } from './process-guard.js'

/** Whether `pid` is a live process (a zombie counts as gone: it runs no code and holds no port). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

let cluster: ChaosCluster | undefined
afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

describe('the chaos harness', () => {
  it('starts no manager of a destroyed cluster, and its destroy leaves none running', async () => {
    const c = new ChaosCluster()
    cluster = c
    const m = await c.add()
    await m.start()
    const pid = m.proc!.pid!
    expect(survivors().map((s) => s.pid)).toContain(pid)
    // Starting one that runs would replace its handle and lose the first process.
    await expect(m.start()).rejects.toThrow(/runs already/)
    await c.destroy()
    expect(alive(pid)).toBe(false)
    // A test body that timed out goes on after the hooks destroyed its cluster: its restarts are refused.
    await expect(m.start()).rejects.toThrow(/destroyed/)
    await expect(c.add()).rejects.toThrow(/destroyed/)
    expect(survivors()).toEqual([])
  }, 120_000)

  it('binds a manager to the process that started it: it dies when that process gets SIGTERM', async () => {
    const c = new ChaosCluster()
    cluster = c
    const m = await c.add()
    // A stand-in for a vitest worker: it starts the manager as the harness does, then is ended as vitest ends
    // its workers (SIGTERM, which runs no `exit` handler).
    const [command, args] = deathBound(process.execPath, [
      CLI,
      '--state-dir',
      m.stateDir,
      '--api',
      m.socket,
      '--hostname',
      m.name,
      '--listen-addr',
      m.listenAddr,
    ])
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(process.argv[1], JSON.parse(process.argv[2]), { stdio: ['ignore', 'ignore', 'inherit'] })
         console.log(c.pid)
         setInterval(() => {}, 1e9)`,
        command,
        JSON.stringify(args),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const parentExit = new Promise((resolve) => parent.once('exit', resolve))
    let pid = 0
    try {
      let out = ''
      parent.stdout!.on('data', (d) => {
        out += d
      })
      pid = await until('the manager pid', () => Number.parseInt(out, 10) || undefined, 30_000)
      await until(
        `${m.name}'s Engine API`,
        async () => (await m.request('GET', '/_ping', undefined, 2000)).status === 200,
        60_000,
      )
      expect(alive(pid)).toBe(true)
      parent.kill('SIGTERM')
      await parentExit
      await until(`the manager (pid ${pid}) gone with its parent`, () => !alive(pid), 30_000)
    } finally {
      parent.kill('SIGKILL')
      // Not tracked by this worker's guard (another process started it): never leave it, even when this fails.
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL')
    }
  }, 120_000)
})
