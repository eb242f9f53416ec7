// Standalone containers on attachable overlay networks (`docker run --network NAME`), the node's side of what
// moby's daemon does with swarm's network attachments. The engine a node runs on knows nothing of swarm
// networks, so the Engine API proxy steps in on four calls:
//
// - create: a `NetworkMode` the engine does not know (and that is not one of its own modes) becomes `none`,
//   with the swarm network (and the endpoint's aliases) kept in a label and 127.0.0.11 as the resolver;
// - start: the node asks the managers for an attachment (attachments.ts: moby's words when the network is
//   not attachable, and nothing is started), starts the container, then joins its network namespace to the
//   overlay with the address the managers gave (worker-network.ts), as it does for a task's container;
// - the attachment ends when the container stops (a `wait` on the engine): the sandbox is removed and the
//   managers delete the attachment, which frees its address;
// - restart: a stop, then the start above (the engine's own restart would bring the container back unattached).

import type { IncomingMessage, ServerResponse } from 'node:http'
import { ATTACHMENT_RUNTIME, type AttachAnswer } from './attachments.js'
import type { Assignment } from './dispatcher.js'
import type { TaskNetworking } from './docker-executor.js'
import type { EngineClient } from './engine-client.js'
import { engineUrl } from './engine-proxy.js'
import { readJsonBody, writeJson } from './http-json.js'

/** Label of a container created for a swarm network: the network as given, and the endpoint's aliases. */
export const ATTACH_NETWORK_LABEL = 'com.swarmkit.attach.network'
export const ATTACH_ALIASES_LABEL = 'com.swarmkit.attach.aliases'

const ENGINE_MODES = /^(|default|bridge|host|none|container:.*)$/
const ACTION = /^\/containers\/([^/]+)\/(start|restart)$/
/** The engine's answer is relayed whatever its status. */
const ANY_STATUS = Array.from({ length: 300 }, (_, i) => 300 + i)

export interface ContainerAttachmentsOptions {
  readonly engine: EngineClient
  readonly networking: () => TaskNetworking | undefined
  /** Calls the managers (daemon.attachmentCall); rejects when the node is not in a swarm. */
  readonly call: (method: 'attach' | 'detach', p: unknown) => Promise<unknown>
  /** This node's ID while it is in a swarm. */
  readonly nodeId: () => string
  readonly log?: (line: string) => void
}

export interface ContainerAttachments {
  /** Whether this request is one it serves (the rest goes through the plain proxy). */
  handles(method: string | undefined, path: string): boolean
  serve(req: IncomingMessage, res: ServerResponse, path: string): void
  /** Attachments now: container ID -> attachment ID. */
  attached(): Map<string, string>
  close(): void
}

/** The create body for the engine: the swarm network moved into labels, `none` for the engine. */
export function rewriteCreate(body: Record<string, unknown>, network: string): Record<string, unknown> {
  const host = { ...((body.HostConfig as Record<string, unknown> | undefined) ?? {}) }
  const endpoints = {
    ...(((body.NetworkingConfig as Record<string, unknown> | undefined)?.EndpointsConfig as
      | Record<string, { Aliases?: unknown }>
      | undefined) ?? {}),
  }
  const aliases = Array.isArray(endpoints[network]?.Aliases)
    ? (endpoints[network]!.Aliases as unknown[]).filter((a): a is string => typeof a === 'string')
    : []
  delete endpoints[network]
  host.NetworkMode = 'none'
  if (!Array.isArray(host.Dns) || host.Dns.length === 0) host.Dns = ['127.0.0.11']
  return {
    ...body,
    HostConfig: host,
    NetworkingConfig: { EndpointsConfig: endpoints },
    Labels: {
      ...((body.Labels as Record<string, string> | undefined) ?? {}),
      [ATTACH_NETWORK_LABEL]: network,
      ...(aliases.length > 0 ? { [ATTACH_ALIASES_LABEL]: JSON.stringify(aliases) } : {}),
    },
  }
}

/** What the worker's networking needs to attach a container like a task. */
function attachmentAssignment(
  attachmentId: string,
  networkId: string,
  nodeId: string,
  name: string,
): Assignment {
  return {
    taskId: attachmentId,
    serviceId: '',
    serviceName: name,
    slot: 0,
    nodeId,
    image: '',
    desiredState: 'running',
    state: 'running',
    hostPorts: [],
    ports: [],
    spec: { containerSpec: { image: '' }, runtime: ATTACHMENT_RUNTIME, networks: [{ target: networkId }] },
    serviceLabels: {},
    networks: [{ networkId, addresses: [] }],
    genericResources: [],
    secrets: [],
    configs: [],
  }
}

interface ContainerJson {
  Id: string
  Name: string
  State: { Running: boolean; Pid: number }
  Config: { Labels?: Record<string, string> | null }
}

export function containerAttachments(options: ContainerAttachmentsOptions): ContainerAttachments {
  const { engine } = options
  const log = options.log ?? (() => {})
  const attached = new Map<string, string>()
  const stop = new AbortController()

  const inspect = async (idOrName: string) => {
    const r = await engine.json<ContainerJson>(
      { method: 'GET', path: `/containers/${encodeURIComponent(idOrName)}/json` },
      [404],
    )
    return r.status === 404 ? undefined : r.body
  }

  /** Ends an attachment: its sandbox here, its task at the managers. */
  const end = async (containerId: string, attachmentId: string) => {
    if (attached.get(containerId) === attachmentId) attached.delete(containerId)
    await options
      .networking()
      ?.detach(attachmentId)
      .catch((err) => log(`container ${containerId.slice(0, 12)}: network: ${(err as Error).message}`))
    await options
      .call('detach', attachmentId)
      .catch((err) => log(`attachment ${attachmentId} not removed: ${(err as Error).message}`))
  }

  /** Follows the container until it stops, then ends its attachment. */
  const follow = (containerId: string, attachmentId: string) => {
    void engine
      .json(
        {
          method: 'POST',
          path: `/containers/${containerId}/wait`,
          query: { condition: 'not-running' },
          timeoutMs: 0,
          signal: stop.signal,
        },
        [404],
      )
      .then(
        () => end(containerId, attachmentId),
        () => {
          if (!stop.signal.aborted) void end(containerId, attachmentId)
        },
      )
  }

  const create = async (req: IncomingMessage, res: ServerResponse) => {
    let body = (await readJsonBody(req)) as Record<string, unknown> | undefined
    const mode = (body?.HostConfig as { NetworkMode?: unknown } | undefined)?.NetworkMode
    if (body && typeof mode === 'string' && !ENGINE_MODES.test(mode) && options.nodeId() !== '') {
      // A network of the engine's own stays the engine's; any other may be the swarm's (checked at start).
      const known = await engine.json({ method: 'GET', path: `/networks/${encodeURIComponent(mode)}` }, [404])
      if (known.status === 404) body = rewriteCreate(body, mode)
    }
    const url = new URL(req.url ?? '/', 'http://engine')
    const r = await engine.json(
      { method: 'POST', path: '/containers/create', query: Object.fromEntries(url.searchParams), body },
      ANY_STATUS,
    )
    writeJson(res, r.status, r.body)
  }

  const start = async (
    res: ServerResponse,
    idOrName: string,
    query: Record<string, string>,
    known?: ContainerJson,
  ) => {
    const c = known ?? (await inspect(idOrName))
    const network = c?.Config.Labels?.[ATTACH_NETWORK_LABEL]
    const forward = () =>
      engine.json(
        { method: 'POST', path: `/containers/${encodeURIComponent(idOrName)}/start`, query },
        ANY_STATUS,
      )
    if (!c || !network || c.State.Running) {
      const r = await forward()
      return writeJson(res, r.status, r.body)
    }
    const name = c.Name.replace(/^\//, '')
    let aliases: string[] = []
    try {
      aliases = JSON.parse(c.Config.Labels?.[ATTACH_ALIASES_LABEL] ?? '[]')
    } catch {}
    const answer = (await options.call('attach', {
      target: network,
      containerId: c.Id,
      containerName: name,
      ...(aliases.length > 0 ? { aliases } : {}),
    })) as AttachAnswer
    if ('error' in answer)
      return writeJson(res, answer.error.code === 'NotFound' ? 404 : 403, {
        message: `Could not attach to network ${network}: rpc error: code = ${answer.error.code} desc = ${answer.error.message}`,
      })
    const r = await forward()
    if (r.status >= 300) {
      await end(c.Id, answer.attachmentId)
      return writeJson(res, r.status, r.body)
    }
    const networking = options.networking()
    const running = await inspect(c.Id)
    try {
      if (!networking)
        throw new Error('this node gives containers no overlay networks (it needs root and iproute2)')
      if (!running?.State.Running) throw new Error('the container stopped before it joined the network')
      await networking.attach(
        attachmentAssignment(answer.attachmentId, answer.networkId, options.nodeId(), name),
        running.State.Pid,
      )
    } catch (err) {
      await engine.json({ method: 'POST', path: `/containers/${c.Id}/kill` }, [404, 409]).catch(() => {})
      await end(c.Id, answer.attachmentId)
      return writeJson(res, 500, {
        message: `failed to set up container networking: ${(err as Error).message}`,
      })
    }
    attached.set(c.Id, answer.attachmentId)
    log(`container ${c.Id.slice(0, 12)} (${name}) attached to network ${network}`)
    follow(c.Id, answer.attachmentId)
    writeJson(res, 204)
  }

  // `docker restart` is one engine call: the engine would start the container again with no network (the
  // attachment ends with the stop). Here it is a stop, then the start above, which asks for a new attachment.
  const restart = async (req: IncomingMessage, res: ServerResponse, idOrName: string) => {
    const c = await inspect(idOrName)
    const query = Object.fromEntries(new URL(req.url ?? '/', 'http://engine').searchParams)
    const path = `/containers/${encodeURIComponent(idOrName)}`
    if (!c?.Config.Labels?.[ATTACH_NETWORK_LABEL]) {
      const r = await engine.json({ method: 'POST', path: `${path}/restart`, query }, ANY_STATUS)
      return writeJson(res, r.status, r.body)
    }
    const stopped = await engine.json(
      { method: 'POST', path: `${path}/stop`, query, timeoutMs: 0 },
      ANY_STATUS,
    )
    if (stopped.status >= 300 && stopped.status !== 304) return writeJson(res, stopped.status, stopped.body)
    const now = await inspect(c.Id)
    if (!now) return writeJson(res, 404, { message: `No such container: ${idOrName}` })
    return start(res, c.Id, {}, now)
  }

  return {
    handles(method, path) {
      return method === 'POST' && (path === '/containers/create' || ACTION.test(path))
    },
    serve(req, res, path) {
      const m = ACTION.exec(path)
      const query = Object.fromEntries(new URL(req.url ?? '/', 'http://engine').searchParams)
      const id = m ? decodeURIComponent(m[1]!) : ''
      const run =
        m?.[2] === 'start'
          ? start(res, id, query)
          : m?.[2] === 'restart'
            ? restart(req, res, id)
            : create(req, res)
      run.catch((err: Error & { status?: number }) => {
        log(`${req.method} ${engineUrl(req.url ?? '')}: ${err.message}`)
        writeJson(res, err.status ?? 500, { message: err.message })
      })
    },
    attached: () => new Map(attached),
    close() {
      stop.abort()
    },
  }
}
