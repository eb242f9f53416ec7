// Issue #13 item 3: one absurd spec must not take a manager down. These run the real `swarmkit-cluster`
// process (dist/cli.js) with a small heap, as an operator's manager would run, and drive it with the docker CLI.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, docker, ok, stateDir, waitFor } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

interface Proc {
  child: ChildProcess
  node: ClusterNode
  output: () => string
  exited: () => boolean
}

async function startProcess(name: string, extra: string[] = []): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [
      '--max-old-space-size=192',
      CLI,
      '--api',
      '127.0.0.1:0',
      '--state-dir',
      stateDir(name),
      '--hostname',
      name,
      '--listen-addr',
      '127.0.0.1:0',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let exited = false
  child.stdout?.on('data', (d) => {
    out += String(d)
  })
  child.stderr?.on('data', (d) => {
    out += String(d)
  })
  child.on('exit', () => {
    exited = true
  })
  const host = await waitFor(
    () => {
      if (exited) throw new Error(`swarmkit-cluster exited:\n${out}`)
      return /Engine API at (\S+):/.exec(out)?.[1]
    },
    'the Engine API address',
    30_000,
  )
  return {
    child,
    node: { dockerHost: host } as ClusterNode,
    output: () => out,
    exited: () => exited,
  }
}

function stop(p: Proc): Promise<void> {
  if (p.exited()) return Promise.resolve()
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve())
    p.child.kill('SIGKILL')
  })
}

describe('service specs that would exhaust a manager', () => {
  const procs: Proc[] = []
  afterEach(async () => {
    await Promise.all(procs.splice(0).map(stop))
  })
  afterAll(() => cleanup())

  it('refuses --replicas 999999999 with a 400 naming the limit, and the manager stays up', async () => {
    const p = await startProcess('absurd')
    procs.push(p)
    await ok(p.node, ['swarm', 'init'])
    const r = await docker(p.node, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'absurd',
      '--replicas',
      '999999999',
      'nginx:alpine',
    ])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/999999999 exceeds the limit of 10000 tasks per service \(maxReplicas\)/)
    // The same through an update (scale) of a service that exists.
    await ok(p.node, ['service', 'create', '-d', '--no-resolve-image', '--name', 'web', 'nginx:alpine'])
    const scale = await docker(p.node, ['service', 'scale', '-d', 'web=999999999'])
    expect(scale.code).not.toBe(0)
    expect(scale.stderr).toMatch(/exceeds the limit of 10000 tasks per service \(maxReplicas\)/)
    // The manager still reconciles: the legal service runs.
    await waitFor(
      async () => (await ok(p.node, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '1/1',
      'web 1/1',
      60_000,
      p.output,
    )
    expect(p.exited()).toBe(false)
  }, 120_000)

  const N = 3000
  it('paces a large legal scale-up: the manager answers while it creates the tasks, and all run', async () => {
    const p = await startProcess('large', ['--max-replicas', String(N)])
    procs.push(p)
    await ok(p.node, ['swarm', 'init'])
    const over = await docker(p.node, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'over',
      '--replicas',
      String(N + 1),
      'nginx:alpine',
    ])
    expect(over.stderr).toContain(`${N + 1} exceeds the limit of ${N} tasks per service (maxReplicas)`)
    await ok(p.node, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'big',
      '--replicas',
      String(N),
      'nginx:alpine',
    ])
    await waitFor(
      async () => {
        // Every probe is an API call that must be answered while the scale-up goes on.
        const replicas = (await ok(p.node, ['service', 'ls', '--format', '{{.Replicas}}'])).trim()
        return replicas === `${N}/${N}`
      },
      `big ${N}/${N}`,
      240_000,
      p.output,
    )
    expect(p.exited()).toBe(false)
  }, 300_000)
})
