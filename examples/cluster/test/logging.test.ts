import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { createLogger, lineLog } from '../src/logging.js'
import { captureOutput, waitFor } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'swarmkit-logging-'))
const children: ChildProcess[] = []

/** Starts `swarmkit-cluster` with `args`; its standard output and error as they come. */
function start(name: string, args: string[]) {
  const child = spawn(process.execPath, [
    CLI,
    '--state-dir',
    join(dir, name),
    '--api',
    '127.0.0.1:0',
    '--listen-addr',
    '127.0.0.1:0',
    '--hostname',
    name,
    ...args,
  ])
  children.push(child)
  const { out, err } = captureOutput(child)
  return {
    child,
    out,
    err,
    host: () =>
      waitFor(
        () => /DOCKER_HOST=(tcp:\/\/\S+)/.exec(out())?.[1],
        'the API address',
        20_000,
        () => out() + err(),
      ),
  }
}

function docker(host: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'docker',
      args,
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          DOCKER_HOST: host,
          DOCKER_CONFIG: join(dir, 'config'),
        },
        timeout: 20_000,
      },
      (e, _out, stderr) => resolve({ code: e ? 1 : 0, stderr: String(stderr) }),
    )
  })
}

afterAll(async () => {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null)
      .map((c) => {
        const done = new Promise((r) => c.once('exit', r))
        c.kill('SIGTERM')
        return done
      }),
  )
  rmSync(dir, { recursive: true, force: true })
})

describe('the node log (--log-level, --log-format, --debug)', () => {
  it('writes one JSON object per line with time, level, msg, module and fields; --debug adds raft and dispatcher detail', async () => {
    const n = start('jsonlog', ['--log-format', 'json', '--debug'])
    const host = await n.host()
    expect((await docker(host, ['swarm', 'init'])).code).toBe(0)
    // A user mistake answered with a 4xx: no stack trace in the log.
    const bad = await docker(host, [
      'service',
      'create',
      '--name',
      'x',
      '--constraint',
      'node.colour==red',
      'nginx',
    ])
    expect(bad.code).not.toBe(0)
    await waitFor(
      () => n.err().includes('"module":"dispatcher"') && n.err().includes('"module":"raft"'),
      'raft and dispatcher debug lines',
      20_000,
      n.err,
    )
    const records = n
      .err()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    for (const r of records) {
      expect(Object.keys(r)).toEqual(['time', 'level', 'msg', 'module', 'fields'])
      expect(Number.isNaN(Date.parse(r.time as string))).toBe(false)
      expect(['debug', 'info', 'warning', 'error', 'fatal']).toContain(r.level)
    }
    expect(records).toContainEqual(
      expect.objectContaining({
        module: 'daemon',
        level: 'info',
        msg: expect.stringMatching(/^swarm initialized/),
      }),
    )
    expect(records).toContainEqual(
      expect.objectContaining({ module: 'dispatcher', level: 'debug', msg: 'heartbeat' }),
    )
    expect(records).toContainEqual(
      expect.objectContaining({ module: 'raft', level: 'debug', msg: 'raft started' }),
    )
    expect(n.err()).not.toMatch(/\n\s+at /)
  })

  it('writes logrus-style text and drops records below --log-level', async () => {
    const n = start('textlog', ['--log-level', 'warn'])
    const host = await n.host()
    expect((await docker(host, ['swarm', 'init'])).code).toBe(0)
    const info = start('textinfo', [])
    const infoHost = await info.host()
    expect((await docker(infoHost, ['swarm', 'init'])).code).toBe(0)
    await waitFor(() => info.err().includes('swarm initialized'), 'the info line', 20_000, info.err)
    expect(info.err()).toMatch(
      /^time="\d{4}-\d\d-\d\dT[\d:.]+Z" level=info msg="swarm initialized: node [a-z0-9]+, cluster [a-z0-9]+, join at [\d.:]+" module=daemon$/m,
    )
    // The warn-level node said nothing at info.
    expect(n.err()).not.toContain('level=info')
    expect(n.err()).not.toContain('level=debug')
  })

  it('reports a failed start and a bad flag in one line, without a stack trace', async () => {
    const first = start('busy', [])
    const host = await first.host()
    const port = host.slice(host.lastIndexOf(':') + 1)
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      execFile(
        process.execPath,
        [CLI, '--state-dir', join(dir, 'busy2'), '--api', `127.0.0.1:${port}`, '--log-format', 'json'],
        { timeout: 20_000 },
        (e, _o, stderr) =>
          resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, err: String(stderr) }),
      )
    })
    expect(r.code).toBe(1)
    const lines = r.err.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'error',
      msg: expect.stringContaining('EADDRINUSE'),
    })
    const flag = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        [CLI, '--state-dir', join(dir, 'x'), '--log-level', 'loud'],
        (_e, _o, stderr) => resolve(String(stderr)),
      )
    })
    expect(flag).toMatch(/^swarmkit-cluster: unknown --log-level "loud"/)
    expect(flag).not.toMatch(/\n\s+at /)
  })

  it('keeps the stack of an unexpected error for --debug only', () => {
    const lines: string[] = []
    const err = new Error('boom')
    const quiet = lineLog(createLogger({ format: 'json', write: (l) => lines.push(l) }))
    quiet(`GET /x: ${err.stack}`)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', msg: 'GET /x: Error: boom', fields: {} })
    const debug = lineLog(createLogger({ format: 'json', level: 'debug', write: (l) => lines.push(l) }))
    debug(`GET /x: ${err.stack}`)
    expect(JSON.parse(lines[1]!).fields.stack).toMatch(/^\s+at /)
  })
})
