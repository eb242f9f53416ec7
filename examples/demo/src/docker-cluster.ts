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
  /** Distinct tasks that answered through the published port, asking each node's address in turn. */
  readonly meshTasks: number
  /** Node addresses whose published port answered. */
  readonly meshNodes: number
}

export interface DockerClusterOptions {
  /** The reference cluster's CLI (default: the built `@swarmkit/cluster/dist/cli.js`). */
  readonly cli?: string
  readonly replicas?: number
  /**
   * Called with the manager's browser view (`http://…/ui/`) once the service runs; the cluster stays up
   * until it resolves (`npm run demo -- --keep` waits for Ctrl-C here).
   */
  readonly onView?: (url: string) => Promise<void> | void
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
    options.cli ?? new URL(import.meta.resolve('@swarmkit/cluster')).pathname.replace(/index\.js$/, 'cli.js')
  const replicas = options.replicas ?? 4
  const root = mkdtempSync(join(tmpdir(), 'swarmkit-demo-cluster-'))
  const procs: ChildProcess[] = []
  let managerApi = ''
  const startNode = async (name: string, extra: string[]) => {
    const api = `127.0.0.1:${await freePort()}`
    managerApi ||= api
    const proc = spawn(
      process.execPath,
      // Simulated tasks: the demo runs the same on a machine with or without a Docker Engine.
      [cli, '--state-dir', join(root, name), '--api', api, '--hostname', name, '--simulated', ...extra],
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
    // Each node on its own loopback address, so that both can answer on the published port.
    const worker = await startNode('worker1', ['--listen-addr', '127.0.0.2:0'])
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

    const published = await freePort()
    await manager(
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--replicas',
      '2',
      '-p',
      `${published}:80`,
      'nginx:alpine',
    )
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
      `docker service create --name web --replicas 2 -p ${published}:80 nginx:alpine; docker service scale web=${replicas}; docker service ls`,
    )
    for (const l of services.trimEnd().split('\n')) log(`  ${l}`)
    const nodesWithTasks = new Set(tasks.map((t) => t.split(' ')[0])).size
    log(`${tasks.length} tasks running, spread over ${nodesWithTasks} nodes`)
    // The routing mesh: every node answers on the published port and balances over the tasks of all nodes.
    const answers = new Map<string, Set<string>>()
    for (const host of ['127.0.0.1', '127.0.0.2']) {
      const seen = await poll(
        `the published port on ${host}`,
        async () => {
          const got = new Set<string>()
          for (let i = 0; i < 2 * replicas; i++) {
            const res = await fetch(`http://${host}:${published}/`, { signal: AbortSignal.timeout(5000) })
            got.add((await res.text()).trim().split(' ')[0]!)
          }
          return got.size === replicas ? got : undefined
        },
        30_000,
      )
      answers.set(host, seen)
      log(
        `curl http://${host}:${published}/ (${2 * replicas} times): answered by ${[...seen].sort().join(', ')}`,
      )
    }
    const meshTasks = new Set([...answers.values()].flatMap((x) => [...x])).size
    await options.onView?.(`http://${managerApi}/ui/`)
    return { nodes, services, runningTasks: tasks.length, nodesWithTasks, meshTasks, meshNodes: answers.size }
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
