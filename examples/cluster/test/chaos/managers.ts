// Manager processes of the reference cluster (examples/cluster/dist/cli.js) for the chaos suite: started,
// killed (SIGKILL), paused (SIGSTOP/SIGCONT) and restarted on their state directories. Each one's Engine API
// is a unix socket in the run directory; its swarm listeners bind loopback or its own network namespace.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateLoopbackPrefix } from '../loopback.js'
import { type Answer, engineRequest } from './engine-client.js'
import type { Netns } from './netns.js'
import { checkMayStart, deathBound, track } from './process-guard.js'

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

/**
 * Polls `probe` until it returns a truthy value, every `intervalMs` after the last probe ended; the error says
 * what was awaited and what was seen last.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  explain?: () => string,
  intervalMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v as T
    } catch (err) {
      last = err
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${String(last)})` : ''}${explain ? `\n${explain()}` : ''}`,
      )
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

async function freePort(host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export class ManagerProcess {
  readonly name: string
  readonly dir: string
  readonly stateDir: string
  readonly socket: string
  readonly logFile: string
  readonly namespace: string | undefined
  listenAddr = ''
  proc: ChildProcess | undefined
  paused = false
  exit: Promise<Exit> | undefined
  /** Set when its cluster is destroyed: it may not be started again (see process-guard.ts). */
  retired: string | undefined

  readonly args: readonly string[]

  readonly cli: string

  constructor(
    name: string,
    root: string,
    namespace: string | undefined,
    args: readonly string[] = [],
    cli = CLI,
  ) {
    this.cli = cli
    this.args = args
    this.name = name
    this.dir = join(root, name)
    this.stateDir = join(this.dir, 'state')
    this.socket = join(this.dir, 'engine.sock')
    this.logFile = join(this.dir, 'log')
    this.namespace = namespace
    mkdirSync(this.stateDir, { recursive: true })
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Running and not paused: expected to answer. */
  get up(): boolean {
    return this.running && !this.paused
  }

  /** Starts the process and waits for its Engine API. */
  async start(extra: string[] = []): Promise<void> {
    checkMayStart(this.name)
    if (this.retired) throw new Error(`${this.name} not started: ${this.retired}`)
    if (this.running) throw new Error(`${this.name} not started: it runs already (pid ${this.proc!.pid})`)
    rmSync(this.socket, { force: true })
    const args = [
      this.cli,
      '--state-dir',
      this.stateDir,
      '--api',
      this.socket,
      '--hostname',
      this.name,
      '--listen-addr',
      this.listenAddr,
      ...this.args,
      ...extra,
    ]
    const out = openSync(this.logFile, 'a')
    // `ip netns exec` and setpriv both exec: the pid is the manager's, and it dies with this process.
    const [command, argv] = deathBound(
      this.namespace ? 'ip' : process.execPath,
      this.namespace ? ['netns', 'exec', this.namespace, process.execPath, ...args] : args,
    )
    const proc = spawn(command, argv, { stdio: ['ignore', out, out] })
    closeSync(out)
    this.proc = proc
    this.paused = false
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
    track(this.name, proc)
    await until(
      `${this.name}'s Engine API`,
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`${this.name} exited (${proc.exitCode ?? proc.signalCode})\n${this.tail()}`)
        return (await engineRequest(this.socket, 'GET', '/_ping', undefined, 2000)).status === 200
      },
      60_000,
    ).catch((err) => {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`${this.name} exited\n${this.tail()}`)
      throw err
    })
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(sig)
  }

  /** SIGKILL, and waits until the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return
    if (this.paused) this.proc!.kill('SIGCONT')
    this.proc!.kill('SIGKILL')
    await this.exit
    this.paused = false
  }

  /** SIGTERM (a clean shutdown), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (!this.running) return
    if (this.paused) this.resume()
    this.proc!.kill('SIGTERM')
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), 20_000)
    await this.exit
    clearTimeout(t)
  }

  pause(): void {
    this.signal('SIGSTOP')
    this.paused = true
  }

  resume(): void {
    this.signal('SIGCONT')
    this.paused = false
  }

  request(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<Answer> {
    return engineRequest(this.socket, method, path, body, timeoutMs)
  }

  /** The raft snapshots in its state directory (index and size), newest last. */
  snapshots(): { index: number; bytes: number }[] {
    const dir = join(this.stateDir, 'raft')
    let files: string[] = []
    try {
      files = readdirSync(dir)
    } catch {
      return []
    }
    return files
      .map((f) => /^snap-([0-9a-f]{16})-[0-9a-f]{16}\.snap$/.exec(f))
      .filter((m) => m !== null)
      .map((m) => {
        try {
          return { index: Number.parseInt(m[1]!, 16), bytes: statSync(join(dir, m[0])).size }
        } catch {
          return undefined
        }
      })
      .filter((x) => x !== undefined)
      .sort((a, b) => a.index - b.index)
  }

  /** The last lines of its log, to explain a failure. */
  tail(lines = 30): string {
    try {
      return `--- ${this.name} log (last ${lines} lines)\n${readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`
    } catch {
      return `--- ${this.name}: no log`
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }
}

export interface ClusterOptions {
  /** Put each manager in its own network namespace of `netns` (else all listen on loopback). */
  readonly netns?: Netns
  /** Extra flags for every manager process (e.g. `--snapshot-interval`). */
  readonly args?: readonly string[]
  /** The swarmkit-cluster CLI to run. Default: examples/cluster/dist/cli.js. */
  readonly cli?: string
}

/** The run directory, the manager processes and the operations on all of them. */
export class ChaosCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'swarmkit-chaos-'))
  readonly managers: ManagerProcess[] = []
  readonly netns: Netns | undefined
  /** Cleanups to run before the run directory goes (unmounts). */
  readonly cleanups: (() => void)[] = []

  readonly args: readonly string[]
  /** On loopback, managers listen on 127.a.b.N addresses of their own, so a restart finds its port free. */
  readonly loopback = privateLoopbackPrefix()

  constructor(options: ClusterOptions = {}) {
    this.netns = options.netns
    this.args = options.args ?? []
    this.cli = options.cli ?? CLI
  }

  readonly cli: string

  /** Set by {@link destroy}: no manager of this cluster starts after it. */
  destroyed = false

  async add(): Promise<ManagerProcess> {
    if (this.destroyed) throw new Error('the chaos cluster was destroyed: no manager added')
    const i = this.managers.length
    const m = new ManagerProcess(`m${i + 1}`, this.root, this.netns?.namespace(i), this.args, this.cli)
    const host = `${this.loopback}.${i + 1}`
    m.listenAddr = this.netns ? `${this.netns.address(i)}:2377` : `${host}:${await freePort(host)}`
    if (this.destroyed) throw new Error('the chaos cluster was destroyed: no manager added')
    this.managers.push(m)
    return m
  }

  byName(name: string): ManagerProcess | undefined {
    return this.managers.find((m) => m.name === name)
  }

  /** `docker swarm init` on a new first manager, then `docker swarm join` of `count - 1` more managers. */
  async form(count: number): Promise<void> {
    const first = await this.add()
    await first.start()
    const init = await first.request('POST', '/swarm/init', { ListenAddr: first.listenAddr }, 60_000)
    if (init.status !== 200) throw new Error(`swarm init: ${init.status} ${init.text}`)
    for (let i = 1; i < count; i++) await this.join()
    await this.waitConverged('all managers listed', 60_000)
  }

  /** Starts a new manager process and joins it with the manager token through a manager that is up. */
  async join(timeoutMs = 60_000): Promise<ManagerProcess> {
    const via = this.managers.find((m) => m.up)!
    const swarm = await via.request('GET', '/swarm')
    const token = swarm.json?.JoinTokens?.Manager
    if (typeof token !== 'string') throw new Error(`no manager token: ${swarm.status} ${swarm.text}`)
    const m = await this.add()
    await m.start()
    const remotes = this.managers.filter((o) => o !== m && o.up).map((o) => o.listenAddr)
    const r = await m.request('POST', '/swarm/join', { RemoteAddrs: remotes, JoinToken: token }, timeoutMs)
    if (r.status !== 200) throw new Error(`${m.name} swarm join: ${r.status} ${r.text}\n${m.tail()}`)
    return m
  }

  /** The leader as the managers that answer see it: the name a majority of them names, if it is up. */
  async leader(): Promise<ManagerProcess | undefined> {
    const views = await Promise.all(
      this.managers
        .filter((m) => m.up)
        .map(async (m) => {
          try {
            // Only the managers: at 5,000 nodes the whole list is 3.5 MB per manager per poll, and the time
            // to see a new leader (cluster-scale's failover figure) would be mostly the poll's own.
            const r = await m.request(
              'GET',
              `/nodes?filters=${encodeURIComponent('{"role":["manager"]}')}`,
              undefined,
              3000,
            )
            if (r.status !== 200 || !Array.isArray(r.json)) return undefined
            const l = r.json.find((n: any) => n.ManagerStatus?.Leader === true)
            return l?.Description?.Hostname as string | undefined
          } catch {
            return undefined
          }
        }),
    )
    const counts = new Map<string, number>()
    for (const v of views) if (v) counts.set(v, (counts.get(v) ?? 0) + 1)
    const members = this.managers.filter((m) => m.running).length
    for (const [name, n] of counts) {
      const m = this.byName(name)
      if (m?.up && n > members / 2 - 0.5 && n >= Math.min(2, views.length)) return m
    }
    return undefined
  }

  async waitLeader(timeoutMs = 60_000): Promise<ManagerProcess> {
    return until(
      'a leader',
      () => this.leader(),
      timeoutMs,
      () => this.explain(),
    )
  }

  /** Waits until every running manager lists all managers as Ready and Reachable, with one leader. */
  async waitConverged(what: string, timeoutMs: number): Promise<void> {
    await until(
      what,
      async () => {
        const want = this.managers.filter((m) => m.running).length
        for (const m of this.managers.filter((x) => x.up)) {
          const r = await m.request('GET', '/nodes', undefined, 5000)
          if (r.status !== 200) return false
          const managers = r.json.filter((n: any) => n.ManagerStatus && n.Status?.State === 'ready')
          const reachable = managers.filter((n: any) => n.ManagerStatus.Reachability === 'reachable')
          if (reachable.length < want) return false
        }
        return true
      },
      timeoutMs,
      () => this.explain(),
    )
  }

  explain(): string {
    return this.managers
      .map((m) => `${m.name}: ${m.running ? (m.paused ? 'paused' : 'up') : 'down'}\n${m.tail(15)}`)
      .join('\n')
  }

  /** Kills every process, runs the cleanups (unmounts, namespaces) and removes the run directory. */
  async destroy(): Promise<void> {
    // First, so that a test body still running (it timed out) cannot start a manager behind the teardown.
    this.destroyed = true
    for (const m of this.managers) m.retired = 'its chaos cluster was destroyed'
    await Promise.all(this.managers.map((m) => m.kill()))
    for (const c of this.cleanups.reverse()) {
      try {
        c()
      } catch {
        // keep cleaning
      }
    }
    this.netns?.destroy()
    rmSync(this.root, { recursive: true, force: true })
  }
}

/** Runs `cmd` synchronously (mount, umount), throwing its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}
