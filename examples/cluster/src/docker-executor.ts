// The Docker Engine executor (swarmkit's production executor, `swarmd --engine-addr`): each task is a
// container on one engine, named and labelled as swarm names and labels them, created from the whole task
// (see container-config.ts). Secrets and configs are written to a tmpfs on the node, mounted read-only into
// the container and deleted with it; they never touch a disk. A node only ever lists, adopts or removes
// containers labelled with its own node ID, so several nodes can share one engine.

import { chmod, chown, mkdir, rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EventEmitter } from 'eventemitter3'
import { containerConfig, fileTarget, type MountedFile, SWARM_LABELS, taskName } from './container-config.js'
import type { Assignment } from './dispatcher.js'
import { EngineClient, readAll } from './engine-client.js'
import { parseLogs } from './engine-logs.js'
import {
  type Controller,
  type ControllerCallOptions,
  type ControllerEvents,
  type Executor,
  ExecutorError,
  isExecutorError,
  type LogLine,
  type NodeDescription,
  type ObservedTask,
  type TaskExit,
  UNHEALTHY_TEXT,
} from './executor.js'
import type { KernelIngress } from './kernel-ingress.js'
import type { NetworkViewUpdate } from './network-view.js'

/** Where a running task's container answers, given its container (the node's task networking). */
export interface TaskNetworking {
  /** Gives the started container its network sandbox; resolves with where the mesh reaches it. */
  attach(
    task: Assignment,
    pid: number,
    options?: ControllerCallOptions,
  ): Promise<{ address: string; port: number } | undefined>
  /**
   * Checks, before the container is made, that the task's networks can be given here; rejecting rejects
   * the task (e.g. an encrypted network on a kernel without IPsec support).
   */
  prepare?(task: Assignment, options?: ControllerCallOptions): Promise<void>
  /** Removes the task's sandbox (no-op if none). */
  detach(taskId: string, options?: ControllerCallOptions): Promise<void>
  /** Changes to the node's network view from the managers (see network-view.ts). */
  networkView?(update: NetworkViewUpdate): void
  /** The node the tasks run for (its ID and the address endpoints listen on). */
  configure?(node: { readonly id: string; readonly addr: string }): Promise<void>
  /** Frees what the networking holds (sandboxes, bridges, forwarders). */
  close?(): Promise<void>
  /** The node's kernel ingress routing mesh, where the networking has one. */
  readonly ingress?: KernelIngress
}

export interface DockerExecutorOptions {
  /** The engine: `unix:///var/run/docker.sock` or `tcp://host:port`. */
  readonly engineAddr: string
  /** The node's host name (reported, and `{{.Node.Hostname}}` in templates). */
  readonly hostname: string
  /**
   * A directory on a tmpfs where the secrets and configs of running tasks are kept (one subdirectory per
   * task, removed with it). Default `/dev/shm/swarmkit-tasks`. Refused if not on a tmpfs.
   */
  readonly secretsDir?: string
  /** Generic resources the node offers (`--node-generic-resource`). */
  readonly genericResources?: NodeDescription['resources']['genericResources']
  /** Gives started containers their network; without it containers run with no network. */
  readonly networking?: TaskNetworking
  /** How often health is polled while a task starts or runs. Default 250 ms. */
  readonly healthPollMs?: number
  readonly log?: (line: string) => void
}

const TMPFS_MAGIC = 0x01021994
const MAX_LOG_TAIL = 1000

interface ContainerJson {
  Id: string
  State: {
    Status: string
    Running: boolean
    Pid: number
    ExitCode: number
    Error?: string
    OOMKilled?: boolean
    Health?: { Status: string }
  }
  Config: { Tty?: boolean; Healthcheck?: { Test?: string[] }; Labels?: Record<string, string> }
}

/** Answers whether an engine answers `/_ping` at `addr` within `timeoutMs`. */
export async function engineAnswers(addr: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const client = new EngineClient(addr)
    const r = await client.json<string>({ method: 'GET', path: '/_ping', timeoutMs })
    return r.status === 200
  } catch {
    return false
  }
}

export interface DockerExecutor extends Executor {
  readonly kind: 'docker'
  readonly engine: EngineClient
  /** What gives the containers their network (the node's routing mesh uses its kernel ingress). */
  readonly networking?: TaskNetworking
}

/** Creates the Docker Engine executor (see the module comment). */
export function dockerExecutor(options: DockerExecutorOptions): DockerExecutor {
  if (typeof options?.engineAddr !== 'string') throw new TypeError('options.engineAddr must be a string')
  if (typeof options.hostname !== 'string') throw new TypeError('options.hostname must be a string')
  const engine = new EngineClient(options.engineAddr)
  const secretsRoot = options.secretsDir ?? '/dev/shm/swarmkit-tasks'
  const pollMs = options.healthPollMs ?? 250
  const log = options.log ?? (() => {})

  const taskDir = (taskId: string) => join(secretsRoot, taskId.replace(/[^A-Za-z0-9_.-]/g, '_'))

  const inspectContainer = async (name: string, signal?: AbortSignal): Promise<ContainerJson | undefined> => {
    const r = await engine.json<ContainerJson>(
      { method: 'GET', path: `/containers/${encodeURIComponent(name)}/json`, ...(signal ? { signal } : {}) },
      [404],
    )
    return r.status === 404 ? undefined : r.body
  }

  const removeContainer = async (name: string) => {
    await engine.json(
      { method: 'DELETE', path: `/containers/${encodeURIComponent(name)}`, query: { force: 1, v: 1 } },
      [404, 409],
    )
  }

  /** Writes a task's secrets and configs into its own directory on the tmpfs. */
  const writeFiles = async (task: Assignment): Promise<MountedFile[]> => {
    const c = task.spec.containerSpec
    if (!c.secrets?.length && !c.configs?.length) return []
    await mkdir(secretsRoot, { recursive: true, mode: 0o700 })
    const fs = await statfs(secretsRoot)
    if (fs.type !== TMPFS_MAGIC)
      throw new ExecutorError(
        'REJECTED',
        `secrets directory ${secretsRoot} is not on a tmpfs: refusing to write secrets there`,
      )
    const dir = taskDir(task.taskId)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const files: MountedFile[] = []
    const put = async (
      kind: 'secret' | 'config',
      id: string,
      target: { name: string; uid: string; gid: string; mode: number },
      data: Uint8Array | undefined,
    ) => {
      if (!data) throw new ExecutorError('REJECTED', `${kind} ${id} not found`)
      const source = join(dir, `${kind}-${id}-${files.length}`)
      await writeFile(source, data, { mode: 0o600 })
      await chown(source, Number(target.uid) || 0, Number(target.gid) || 0).catch(() => {})
      await chmod(source, target.mode || 0o444)
      files.push({ source, target: fileTarget(kind, target.name) })
    }
    for (const ref of c.secrets ?? [])
      await put('secret', ref.secretId, ref.file, task.secrets.find((s) => s.id === ref.secretId)?.data)
    for (const ref of c.configs ?? [])
      if (ref.file)
        await put('config', ref.configId, ref.file, task.configs.find((s) => s.id === ref.configId)?.data)
    return files
  }

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', abort)
        resolve()
      }, ms)
      const abort = () => {
        clearTimeout(timer)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', abort, { once: true })
    })

  const hasHealthcheck = (c: ContainerJson) => {
    const test = c.Config.Healthcheck?.Test
    return !!test && test.length > 0 && test[0] !== 'NONE'
  }

  class DockerController extends EventEmitter<ControllerEvents> implements Controller {
    #task: Assignment
    readonly name: string
    #endpoint: { address: string; port: number } | undefined
    #health: string | undefined

    constructor(task: Assignment) {
      super()
      this.#task = task
      this.name = taskName(task)
    }

    get task(): Assignment {
      return this.#task
    }

    update(task: Assignment): void {
      this.#task = task
    }

    async inspect(options?: ControllerCallOptions): Promise<ObservedTask> {
      const c = await inspectContainer(this.name, options?.signal)
      if (!c) return { state: 'absent' }
      const s = c.State
      const state =
        s.Status === 'created' ? 'created' : s.Running || s.Status === 'restarting' ? 'running' : 'exited'
      if (state === 'running' && !this.#endpoint && options?.signal === undefined)
        await this.#attach(c).catch((err) =>
          log(`task ${this.#task.taskId}: network: ${(err as Error).message}`),
        )
      const health = s.Health?.Status
      return {
        state,
        ...(state === 'exited' ? { exitCode: s.ExitCode } : {}),
        ...(health === 'starting' || health === 'healthy' || health === 'unhealthy' ? { health } : {}),
        ...(this.#endpoint && state === 'running' ? { endpoint: this.#endpoint } : {}),
        ...(s.Error ? { error: s.Error } : s.OOMKilled ? { error: 'OOM killed' } : {}),
      }
    }

    async #attach(c: ContainerJson): Promise<void> {
      if (!options.networking || !c.State.Running || !c.State.Pid) return
      this.#endpoint = await options.networking.attach(this.#task, c.State.Pid)
    }

    async prepare(callOptions?: ControllerCallOptions): Promise<void> {
      const signal = callOptions?.signal
      if (await inspectContainer(this.name, signal)) return
      await options.networking?.prepare?.(this.#task, callOptions).catch((err: Error) => {
        throw new ExecutorError('REJECTED', err.message, { cause: err })
      })
      const image = this.#task.spec.containerSpec.image
      await this.#pullIfMissing(image, signal)
      let files: MountedFile[] = []
      try {
        files = await writeFiles(this.#task)
        // Not abortable: an abandoned create still makes the container, and the next prepare must find it.
        const r = await engine.json<{ Id: string }>(
          {
            method: 'POST',
            path: '/containers/create',
            query: { name: this.name },
            body: containerConfig(this.#task, { nodeHostname: options.hostname, files }),
          },
          [409],
        )
        // The name is taken: by this task's own container from an earlier, abandoned attempt, which the
        // engine may still be making (inspect finds it a moment later).
        for (let i = 0; r.status === 409 && !(await inspectContainer(this.name)); i++) {
          if (i === 50)
            throw new ExecutorError('CREATE_FAILED', String((r.body as { message?: string })?.message))
          await sleep(100)
        }
      } catch (err) {
        await rm(taskDir(this.#task.taskId), { recursive: true, force: true }).catch(() => {})
        if (isExecutorError(err) && err.code === 'NOT_FOUND')
          throw new ExecutorError('IMAGE_NOT_FOUND', err.message)
        throw err
      }
    }

    /** Pulls an image the engine lacks, logging progress; a failed pull leaves the error to `create`. */
    async #pullIfMissing(image: string, signal?: AbortSignal): Promise<void> {
      const have = await engine.json(
        { method: 'GET', path: `/images/${encodeURIComponent(image)}/json`, ...(signal ? { signal } : {}) },
        [404],
      )
      if (have.status !== 404) return
      const res = await engine.raw({
        method: 'POST',
        path: '/images/create',
        query: { fromImage: image },
        timeoutMs: 0,
        ...(signal ? { signal } : {}),
      })
      const body = (await readAll(res, signal)).toString('utf8')
      for (const line of body.split('\n')) {
        if (!line.trim()) continue
        try {
          const m = JSON.parse(line) as {
            status?: string
            progress?: string
            id?: string
            error?: string
            message?: string
          }
          if (m.error || m.message)
            log(`task ${this.#task.taskId}: pulling ${image} failed: ${m.error ?? m.message}`)
          else if (m.status)
            log(
              `task ${this.#task.taskId}: pulling ${image}: ${m.id ? `${m.id}: ` : ''}${m.status}${m.progress ? ` ${m.progress}` : ''}`,
            )
        } catch {
          log(`task ${this.#task.taskId}: pulling ${image}: ${line.slice(0, 200)}`)
        }
      }
    }

    async start(callOptions?: ControllerCallOptions): Promise<void> {
      const signal = callOptions?.signal
      let c = await inspectContainer(this.name, signal)
      if (!c) throw new ExecutorError('NOT_FOUND', `No such container: ${this.name}`)
      if (c.State.Status === 'created') {
        try {
          await engine.json(
            {
              method: 'POST',
              path: `/containers/${encodeURIComponent(this.name)}/start`,
              ...(signal ? { signal } : {}),
            },
            [304],
          )
        } catch (err) {
          if (isExecutorError(err) && err.code !== 'ENGINE_UNAVAILABLE')
            throw new ExecutorError('START_FAILED', `starting container failed: ${err.message}`, {
              cause: err,
            })
          throw err
        }
        c = (await inspectContainer(this.name, signal)) ?? c
      }
      if (c.State.Running)
        await this.#attach(c).catch(async (err) => {
          // A container that already exited has no namespace to join: wait() reports how it ended.
          if ((await inspectContainer(this.name, signal))?.State.Running === false) return
          throw new ExecutorError(
            'START_FAILED',
            `starting container failed: network: ${(err as Error).message}`,
            {
              cause: err,
            },
          )
        })
      if (!hasHealthcheck(c)) return
      // A task with a healthcheck runs once healthy (swarm's container controller waits the same way).
      for (;;) {
        const now = await inspectContainer(this.name, signal)
        if (!now?.State.Running) return
        const health = now.State.Health?.Status
        this.#noteHealth(health)
        if (health === 'healthy') return
        if (health === 'unhealthy') throw new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT)
        await sleep(pollMs, signal)
      }
    }

    #noteHealth(health: string | undefined): void {
      if (!health || health === this.#health) return
      this.#health = health
      if (health === 'starting' || health === 'healthy' || health === 'unhealthy')
        this.emit('task:health', health)
    }

    async wait(callOptions?: ControllerCallOptions): Promise<TaskExit> {
      const outer = callOptions?.signal
      const c = await inspectContainer(this.name, outer)
      if (!c) throw new ExecutorError('NOT_FOUND', `No such container: ${this.name}`)
      const local = new AbortController()
      const abort = () => local.abort(outer?.reason)
      outer?.addEventListener('abort', abort, { once: true })
      try {
        const exited = engine
          .json<{ StatusCode: number; Error?: { Message?: string } | null }>({
            method: 'POST',
            path: `/containers/${encodeURIComponent(this.name)}/wait`,
            query: { condition: 'not-running' },
            timeoutMs: 0,
            signal: local.signal,
          })
          .then((r) => {
            const error = r.body?.Error?.Message
            return { exitCode: r.body?.StatusCode ?? 0, ...(error ? { error } : {}) } as TaskExit
          })
        const unhealthy = hasHealthcheck(c) ? this.#watchHealth(local.signal) : new Promise<never>(() => {})
        const exit = await Promise.race([exited, unhealthy])
        this.emit('task:exit', exit)
        return exit
      } catch (err) {
        if (outer?.aborted) throw outer.reason
        throw err
      } finally {
        outer?.removeEventListener('abort', abort)
        local.abort(new Error('done'))
      }
    }

    /** Rejects with `UNHEALTHY` once the running container's health check fails. */
    async #watchHealth(signal: AbortSignal): Promise<never> {
      for (;;) {
        await sleep(pollMs, signal)
        const c = await inspectContainer(this.name, signal).catch(() => undefined)
        this.#noteHealth(c?.State.Health?.Status)
        if (c?.State.Running && c.State.Health?.Status === 'unhealthy')
          throw new ExecutorError('UNHEALTHY', UNHEALTHY_TEXT)
      }
    }

    async shutdown(): Promise<void> {
      const grace = this.#task.spec.containerSpec.stopGracePeriod
      const seconds = grace === undefined ? undefined : Math.ceil(grace / 1e9)
      await engine.json(
        {
          method: 'POST',
          path: `/containers/${encodeURIComponent(this.name)}/stop`,
          query: { t: seconds },
          timeoutMs: ((seconds ?? 10) + 30) * 1000,
        },
        [304, 404],
      )
      await options.networking?.detach(this.#task.taskId)
      this.#endpoint = undefined
    }

    async terminate(): Promise<void> {
      await engine.json(
        { method: 'POST', path: `/containers/${encodeURIComponent(this.name)}/kill` },
        [404, 409],
      )
    }

    async remove(): Promise<void> {
      await removeContainer(this.name)
      await options.networking?.detach(this.#task.taskId)
      this.#endpoint = undefined
      await rm(taskDir(this.#task.taskId), { recursive: true, force: true })
    }

    async logs(callOptions?: ControllerCallOptions & { tail?: number }): Promise<LogLine[]> {
      const c = await inspectContainer(this.name, callOptions?.signal)
      if (!c) return []
      const res = await engine.raw({
        method: 'GET',
        path: `/containers/${encodeURIComponent(this.name)}/logs`,
        query: {
          stdout: 1,
          stderr: 1,
          timestamps: 1,
          tail: Math.min(callOptions?.tail ?? MAX_LOG_TAIL, MAX_LOG_TAIL),
        },
        ...(callOptions?.signal ? { signal: callOptions.signal } : {}),
      })
      const data = await readAll(res, callOptions?.signal, 16 * 1024 * 1024)
      if ((res.statusCode ?? 500) >= 400) return []
      return parseLogs(data, !!c.Config.Tty)
    }

    close(): void {
      this.removeAllListeners()
    }
  }

  const listOwn = async (nodeId: string) => {
    const r = await engine.json<{ Id: string; Labels?: Record<string, string> }[]>({
      method: 'GET',
      path: '/containers/json',
      query: { all: 1, filters: JSON.stringify({ label: [`${SWARM_LABELS.nodeId}=${nodeId}`] }) },
    })
    return r.body.filter((c) => c.Labels?.[SWARM_LABELS.nodeId] === nodeId)
  }

  return {
    kind: 'docker',
    engine,
    ...(options.networking ? { networking: options.networking } : {}),
    async describe(callOptions): Promise<NodeDescription> {
      const { body: info } = await engine.json<{
        NCPU: number
        MemTotal: number
        ServerVersion: string
        OSType?: string
        Architecture?: string
        Plugins?: Record<string, string[] | null>
      }>({ method: 'GET', path: '/info', ...(callOptions?.signal ? { signal: callOptions.signal } : {}) })
      const plugins: { type: string; name: string }[] = []
      for (const [type, names] of Object.entries(info.Plugins ?? {}))
        if (['Volume', 'Network', 'Log'].includes(type))
          for (const name of names ?? []) plugins.push({ type, name })
      if (!plugins.some((p) => p.type === 'Network' && p.name === 'overlay'))
        plugins.push({ type: 'Network', name: 'overlay' })
      return {
        hostname: options.hostname,
        platform: { os: info.OSType ?? 'linux', architecture: info.Architecture ?? 'x86_64' },
        resources: {
          nanoCPUs: (info.NCPU || 1) * 1e9,
          memoryBytes: info.MemTotal || 0,
          ...(options.genericResources ? { genericResources: options.genericResources } : {}),
        },
        engineVersion: info.ServerVersion,
        plugins,
      }
    },
    controller: (task) => new DockerController(task),
    networkView(update) {
      options.networking?.networkView?.(update)
    },
    async configure(node) {
      await options.networking?.configure?.(node)
    },
    async adoptable(nodeId) {
      return (await listOwn(nodeId))
        .map((c) => c.Labels?.[SWARM_LABELS.taskId])
        .filter((id): id is string => !!id)
    },
    async removeOrphan(taskId) {
      const r = await engine.json<{ Id: string; Labels?: Record<string, string> }[]>({
        method: 'GET',
        path: '/containers/json',
        query: { all: 1, filters: JSON.stringify({ label: [`${SWARM_LABELS.taskId}=${taskId}`] }) },
      })
      for (const c of r.body) await removeContainer(c.Id)
      await options.networking?.detach(taskId)
      await rm(taskDir(taskId), { recursive: true, force: true })
    },
    async close() {
      await options.networking?.close?.()
    },
  }
}
