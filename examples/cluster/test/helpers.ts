import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ClusterNode,
  type DockerExecutorOptions,
  dockerExecutor,
  localTaskNetworking,
  startNode,
} from '../src/index.js'
import { privateLoopbackPrefix } from './loopback.js'

export interface DockerResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the real docker CLI against `node` (a private DOCKER_CONFIG, no user settings). */
export function docker(node: ClusterNode, args: string[], input?: string): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'docker',
      args,
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          DOCKER_HOST: node.dockerHost,
          DOCKER_CONFIG: configDir,
        },
        timeout: 20_000,
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
    if (input !== undefined) child.stdin?.end(input)
  })
}

/** What a child process has printed so far, on standard output and standard error. */
export function captureOutput(child: ChildProcess): { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => {
    out += String(d)
  })
  child.stderr?.on('data', (d) => {
    err += String(d)
  })
  return { out: () => out, err: () => err }
}

/** Starts a long-running docker command (e.g. `service logs -f`); `output()` is what it printed so far. */
export function dockerSpawn(node: ClusterNode, args: string[]): { output: () => string; stop: () => void } {
  let out = ''
  const child = spawn('docker', args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DOCKER_HOST: node.dockerHost,
      DOCKER_CONFIG: configDir,
    },
  })
  child.stdout.on('data', (d) => {
    out += String(d)
  })
  child.stderr.on('data', (d) => {
    out += String(d)
  })
  return { output: () => out, stop: () => child.kill('SIGTERM') }
}

/** Runs docker and expects success; returns stdout. */
export async function ok(node: ClusterNode, args: string[], input?: string): Promise<string> {
  const r = await docker(node, args, input)
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** Polls `probe` until it returns a truthy value (never a fixed sleep). */
export async function waitFor<T>(
  probe: () => Promise<T> | T,
  what: string,
  ms = 20_000,
  explain?: () => string,
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v as Exclude<T, false | null | undefined | 0 | ''>
    } catch (err) {
      last = err
    }
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}${last ? `: ${String(last)}` : ''}${explain ? `\n${explain()}` : ''}`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
}

const root = mkdtempSync(join(tmpdir(), 'swarmkit-cluster-'))
const configDir = join(root, 'docker-config')

/** The state directory `node(name)` uses (the temporary root for an empty name). */
export function stateDir(name: string): string {
  return join(root, name)
}

/** Where nodes' swarm listeners bind unless a test says: this file's own loopback address. */
export const swarmHost = `${privateLoopbackPrefix()}.1`

/**
 * Starts a node with ephemeral ports and a temporary state directory. Its swarm listeners bind `host`
 * (default `swarmHost`). The routing mesh is off unless asked for: it would bind the services' published
 * ports (fixed ones like 8080) on a machine other programs share.
 */
export function node(
  name: string,
  options: {
    host?: string
    routingMesh?: boolean
    engineAddr?: string
    heartbeatPeriodMs?: number
    genericResources?: DockerExecutorOptions['genericResources']
  } = {},
  log = !!process.env.CLUSTER_LOG,
): Promise<ClusterNode> {
  const executor = options.engineAddr
    ? dockerExecutor({
        engineAddr: options.engineAddr,
        hostname: name,
        secretsDir: join('/dev/shm', `${root.replaceAll('/', '_')}-${name}`),
        ...(options.genericResources ? { genericResources: options.genericResources } : {}),
        networking: localTaskNetworking(log ? { log: (l: string) => console.error(`[${name}] ${l}`) } : {}),
        ...(log ? { log: (l: string) => console.error(`[${name}] ${l}`) } : {}),
      })
    : undefined
  return startNode({
    ...(executor ? { executor } : {}),
    stateDir: join(root, name),
    apiAddress: '127.0.0.1:0',
    hostname: name,
    listenAddr: `${options.host ?? swarmHost}:0`,
    heartbeatPeriodMs: options.heartbeatPeriodMs ?? 1000,
    taskStepMs: 20,
    routingMesh: options.routingMesh ?? false,
    ...(log ? { log: (l: string) => console.error(`[${name}] ${l}`) } : {}),
  })
}

export function cleanup(): void {
  rmSync(root, { recursive: true, force: true })
  // The tmpfs directories the nodes' docker executors kept secrets in.
  const shm = `${root.replaceAll('/', '_')}-`
  if (existsSync('/dev/shm'))
    for (const d of readdirSync('/dev/shm'))
      if (d.startsWith(shm)) rmSync(join('/dev/shm', d), { recursive: true, force: true })
}

/** Starts node `name` and makes it the first manager of a new swarm (`docker swarm init`). */
export async function initSwarm(name: string, options?: Parameters<typeof node>[1]): Promise<ClusterNode> {
  const n = await node(name, options)
  await ok(n, ['swarm', 'init'])
  return n
}

/** Joins `n` to the swarm `mgr` manages, with the token `docker swarm join-token` gives for `role`. */
export async function joinSwarm(
  n: ClusterNode,
  mgr: ClusterNode,
  role: 'worker' | 'manager' = 'worker',
): Promise<string> {
  const token = (await ok(mgr, ['swarm', 'join-token', '-q', role])).trim()
  return ok(n, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
}

/** Closes the nodes a suite started (those it got to) and removes their state directories. */
export async function closeNodes(...nodes: (ClusterNode | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.close()))
  cleanup()
}

/** Running tasks of a service per node hostname, from `docker service ps`. */
export async function runningTasksPerNode(n: ClusterNode, service: string): Promise<Record<string, number>> {
  const out = await ok(n, [
    'service',
    'ps',
    '-f',
    'desired-state=running',
    '--format',
    '{{.Node}} {{.CurrentState}}',
    service,
  ])
  const count: Record<string, number> = {}
  for (const line of out.trim().split('\n')) {
    const [host, state] = line.split(' ')
    if (host && state === 'Running') count[host] = (count[host] ?? 0) + 1
  }
  return count
}

/** Rows of a docker table output, split on runs of 2+ spaces. */
export function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s{2,}/))
}

/** The service and task states, to explain a failure. */
export function dumpTasks(n: ClusterNode): string {
  return n.daemon.manager!.store.view((tx) =>
    [
      ...tx
        .find('services')
        .map((s) => `service ${s.spec.name} v${s.specVersion.index} ${JSON.stringify(s.updateStatus)}`),
      ...tx
        .find('tasks')
        .map(
          (t) =>
            `task ${t.serviceAnnotations.name}.${t.slot} ${t.id} v${t.specVersion?.index} ${t.spec.containerSpec.image} node=${t.nodeId} desired=${t.desiredState} state=${t.status.state} ${t.status.message} ${t.status.err ?? ''}`,
        ),
    ].join('\n'),
  )
}
