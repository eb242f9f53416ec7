// Nodes of the reference cluster as separate processes (dist/cli.js), for tests that kill one outright.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DockerResult } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

export interface ProcessNode {
  readonly name: string
  /** `host:port` of its Engine API (and of its page, under /ui/). */
  readonly api: string
  readonly proc: ChildProcess
  docker(args: string[]): Promise<DockerResult>
  /** Runs docker and expects success; returns stdout. */
  ok(args: string[]): Promise<string>
  kill(): Promise<void>
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export class ProcessCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'swarmkit-ui-'))
  readonly nodes: ProcessNode[] = []

  /** Starts `swarmkit-cluster` for `name` and waits until its Engine API answers. */
  async start(name: string): Promise<ProcessNode> {
    const api = `127.0.0.1:${await freePort()}`
    const proc = spawn(
      process.execPath,
      [
        CLI,
        '--state-dir',
        join(this.root, name),
        '--api',
        api,
        '--hostname',
        name,
        '--listen-addr',
        '127.0.0.1:0',
      ],
      { stdio: ['ignore', 'ignore', process.env.CLUSTER_LOG ? 'inherit' : 'ignore'] },
    )
    const docker = (args: string[]) =>
      new Promise<DockerResult>((resolve) => {
        execFile(
          'docker',
          args,
          {
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              DOCKER_HOST: `tcp://${api}`,
              DOCKER_CONFIG: join(this.root, 'docker-config'),
            },
            timeout: 30_000,
          },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        )
      })
    const node: ProcessNode = {
      name,
      api,
      proc,
      docker,
      async ok(args) {
        const r = await docker(args)
        if (r.code !== 0)
          throw new Error(`docker ${args.join(' ')} on ${name} failed (${r.code}): ${r.stderr}${r.stdout}`)
        return r.stdout
      },
      async kill() {
        if (proc.exitCode !== null || proc.signalCode !== null) return
        const exited = new Promise((r) => proc.once('exit', r))
        proc.kill('SIGKILL')
        await exited
      },
    }
    this.nodes.push(node)
    const end = Date.now() + 30_000
    while ((await docker(['version', '--format', '{{.Server.Version}}'])).code !== 0) {
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`${name} did not start`)
      await new Promise((r) => setTimeout(r, 100))
    }
    return node
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()))
    rmSync(this.root, { recursive: true, force: true })
  }
}
