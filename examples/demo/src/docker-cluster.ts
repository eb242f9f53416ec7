import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

import { freePort, until } from './wait.js'

/** Each poll runs the docker CLI: every 100 ms is often enough. */
const poll = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) =>
  until(what, check, timeoutMs, 100)

type Log = (line: string) => void

export interface DockerClusterReport {
  readonly nodes: string
  readonly services: string
  readonly runningTasks: number
  readonly nodesWithTasks: number
}

export interface DockerClusterOptions {
  /** The reference cluster's CLI (default: the built `@swarmkit/example-cluster/dist/cli.js`). */
  readonly cli?: string
  readonly replicas?: number
}

/**
 * A manager and a worker of the reference cluster as two processes on loopback, driven by the real `docker`
 * CLI through the Engine API: init, join with the worker token, create a replicated service, scale it, and
 * list nodes, services and tasks.
 */
export async function dockerClusterDemo(
  log: Log,
  options: DockerClusterOptions = {},
): Promise<DockerClusterReport> {
  const cli =
    options.cli ??
    new URL(import.meta.resolve('@swarmkit/example-cluster')).pathname.replace(/index\.js$/, 'cli.js')
  const replicas = options.replicas ?? 4
  const root = mkdtempSync(join(tmpdir(), 'swarmkit-demo-cluster-'))
  const procs: ChildProcess[] = []
  const startNode = async (name: string, extra: string[]) => {
    const api = `127.0.0.1:${await freePort()}`
    const proc = spawn(
      process.execPath,
      [cli, '--state-dir', join(root, name), '--api', api, '--hostname', name, ...extra],
      { stdio: 'ignore' },
    )
    procs.push(proc)
    const docker = async (...args: string[]) =>
      (await run('docker', args, { env: { ...process.env, DOCKER_HOST: `tcp://${api}` }, timeout: 60_000 }))
        .stdout
    await poll(`${name}'s Engine API`, () => docker('version', '--format', '{{.Server.Version}}'), 30_000)
    return docker
  }
  try {
    const manager = await startNode('manager1', ['--listen-addr', `127.0.0.1:${await freePort()}`])
    const worker = await startNode('worker1', ['--listen-addr', '127.0.0.1:0'])
    const init = await manager('swarm', 'init')
    log(`docker swarm init: ${init.split('\n')[0]}`)
    const token = (await manager('swarm', 'join-token', '-q', 'worker')).trim()
    const joinAddr = /join --token \S+ (\S+)/.exec(await manager('swarm', 'join-token', 'worker'))![1]!
    log(
      `docker swarm join --token ${token.slice(0, 24)}… ${joinAddr}: ${(await worker('swarm', 'join', '--token', token, joinAddr)).trim()}`,
    )
    await poll(
      'both nodes ready',
      async () => {
        const out = await manager('node', 'ls', '--format', '{{.Status}}')
        return out
          .trim()
          .split('\n')
          .filter((s) => s === 'Ready').length === 2
          ? true
          : undefined
      },
      30_000,
    )

    await manager('service', 'create', '-d', '--name', 'web', '--replicas', '2', 'nginx:alpine')
    await manager('service', 'scale', '-d', `web=${replicas}`)
    const tasks = await poll(
      `${replicas} running tasks`,
      async () => {
        const out = await manager(
          'service',
          'ps',
          'web',
          '--format',
          '{{.Node}} {{.CurrentState}}',
          '--filter',
          'desired-state=running',
        )
        const lines = out
          .trim()
          .split('\n')
          .filter((l) => / Running /.test(l))
        return lines.length === replicas ? lines : undefined
      },
      60_000,
    )
    const nodes = await manager('node', 'ls')
    const services = await manager('service', 'ls')
    log('docker node ls')
    for (const l of nodes.trimEnd().split('\n')) log(`  ${l}`)
    log(
      `docker service create --name web --replicas 2 nginx:alpine; docker service scale web=${replicas}; docker service ls`,
    )
    for (const l of services.trimEnd().split('\n')) log(`  ${l}`)
    const nodesWithTasks = new Set(tasks.map((t) => t.split(' ')[0])).size
    log(`${tasks.length} tasks running, spread over ${nodesWithTasks} nodes`)
    return { nodes, services, runningTasks: tasks.length, nodesWithTasks }
  } finally {
    for (const p of procs) p.kill('SIGKILL')
    await Promise.all(
      procs.map((p) =>
        p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined,
      ),
    )
    rmSync(root, { recursive: true, force: true })
  }
}
