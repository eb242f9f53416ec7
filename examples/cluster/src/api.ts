// The Docker Engine API subset the docker CLI (28.x) uses in swarm mode, over node:http. See
// /work/shared/DOCKER-API.md for what each command sends. Paths are accepted with and without the
// `/v1.NN` prefix; errors are `{"message": …}` with moby's status codes and words.

import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { cpus, totalmem } from 'node:os'
import * as pki from '@swarmkit/pki'
import { isRaftError } from '@swarmkit/raft'
import { isSchedulerError, rollbackService, validatePlacement } from '@swarmkit/scheduler'
import {
  generateId,
  isStoreError,
  type Node,
  type ReadTx,
  type Service,
  type ServiceSpec,
  type Task,
  type Tx,
} from '@swarmkit/store'
import type { LogLine } from './agent.js'
import { allocateEndpoint } from './allocator.js'
import { type ApiTlsOptions, apiServer } from './api-tls.js'
import { updateBlob } from './blob-update.js'
import type { Daemon } from './daemon.js'
import {
  configToDocker,
  labels,
  networkToDocker,
  nodeSpecFromDocker,
  nodeToDocker,
  rfc3339,
  secretToDocker,
  serviceSpecFromDocker,
  serviceToDocker,
  taskToDocker,
  toDocker,
} from './docker-json.js'
import { ApiError, MESSAGES } from './errors.js'
import { eventsStream } from './events.js'
import {
  ACCEPTED,
  blobFilter,
  networkFilter,
  nodeFilter,
  parseFilters,
  serviceFilter,
  taskFilter,
} from './filters.js'
import { goBase64Error } from './go-base64.js'
import {
  createNetwork,
  ENGINE_VERSION,
  type Manager,
  MIN_CERT_EXPIRY_NS,
  startRootRotation,
} from './manager.js'
import { requireLeader } from './quorum.js'
import { checkSwarmSettings, withSwarmSettings } from './swarm-settings.js'
import { clusterTlsInfo } from './tls-info.js'

export const API_VERSION = '1.50'
export const MIN_API_VERSION = '1.24'
const MAX_BODY = 2 * 1024 * 1024

type Query = URLSearchParams
type Handler = (req: { body: unknown; query: Query; params: string[] }) => Promise<Reply> | Reply
interface Reply {
  status?: number
  json?: unknown
  /** Writes the body itself (log streams). */
  stream?: (res: ServerResponse) => void
}

function storeError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err
  if (isStoreError(err)) {
    const code = err.code
    if (code === 'NOT_FOUND') return new ApiError(404, err.message)
    if (code === 'NAME_CONFLICT' || code === 'EXISTS') return new ApiError(409, err.message)
    if (code === 'SEQUENCE') return new ApiError(500, MESSAGES.outOfSequence)
    if (code === 'IN_USE') return new ApiError(403, err.message)
    if (code === 'INVALID_ARGUMENT') return new ApiError(400, err.message)
    if (code === 'LOCKED') return new ApiError(503, err.message)
    return new ApiError(503, `rpc error: code = Unavailable desc = ${err.message}`)
  }
  if (isSchedulerError(err)) return new ApiError(err.code === 'NOT_FOUND' ? 404 : 400, err.message)
  if (isRaftError(err)) {
    if (err.code === 'NO_LEADER') return new ApiError(503, MESSAGES.noLeader)
    return new ApiError(503, `rpc error: code = Unavailable desc = ${err.message}`)
  }
  if (pki.isPkiError(err)) return new ApiError(400, err.message)
  return undefined
}

function lookup<T extends 'nodes' | 'services' | 'networks' | 'secrets' | 'configs' | 'tasks'>(
  tx: ReadTx,
  table: T,
  ref: string,
  noun: string,
) {
  try {
    return tx.lookup(table, ref)
  } catch (err) {
    if (isStoreError(err) && err.code === 'NOT_FOUND') throw new ApiError(404, `${noun} ${ref} not found`)
    throw err
  }
}

function version(query: Query): number {
  const v = Number(query.get('version') ?? 'NaN')
  if (!Number.isSafeInteger(v) || v < 0) throw new ApiError(400, 'invalid version: expected an integer')
  return v
}

function checkVersion(current: number, wanted: number): void {
  if (current !== wanted) throw new ApiError(500, MESSAGES.outOfSequence)
}

/** moby's checks before a demotion: never the last manager, never below a reachable majority. */
function checkDemotion(tx: ReadTx, n: Node): void {
  const managersLeft = tx.find('nodes').filter((m) => m.id !== n.id && m.spec.role === 'manager')
  if (managersLeft.length === 0)
    throw new ApiError(
      400,
      'rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm',
    )
  if (!n.managerStatus) return
  const voters = tx.find('nodes').filter((m) => m.id !== n.id && m.managerStatus)
  const reachable = voters.filter(
    (m) => m.managerStatus!.reachability === 'reachable' && m.status.state === 'ready',
  ).length
  if (reachable < (voters.length >> 1) + 1)
    throw new ApiError(
      400,
      "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum",
    )
}

function serviceStatus(tx: ReadTx, s: Service) {
  const tasks = tx.find('tasks', { serviceId: s.id })
  const running = tasks.filter((t) => t.status.state === 'running' && t.desiredState === 'running').length
  const completed = tasks.filter((t) => t.status.state === 'complete').length
  const desired =
    'replicated' in s.spec.mode
      ? s.spec.mode.replicated.replicas
      : tasks.filter((t) => t.desiredState === 'running').length
  return { running, desired, completed }
}

function checkSpecRefs(spec: ServiceSpec): void {
  try {
    validatePlacement(spec.taskTemplate.placement)
  } catch (err) {
    throw storeError(err) ?? err
  }
}

/**
 * The spec with its networks named by ID, as moby's daemon resolves them: `docker stack deploy` names the
 * networks it has just created, where `service create --network` resolves them in the CLI.
 */
function withNetworkIds(tx: ReadTx, spec: ServiceSpec): ServiceSpec {
  const nets = spec.taskTemplate.networks
  if (!nets?.length) return spec
  return {
    ...spec,
    taskTemplate: {
      ...spec.taskTemplate,
      networks: nets.map((n) => ({ ...n, target: lookup(tx, 'networks', n.target, 'network').id })),
    },
  }
}

function swarmJson(m: Manager) {
  const c = m.cluster()
  if (!c) throw new ApiError(503, MESSAGES.notInSwarm)
  const spec = toDocker(c.spec) as Record<string, unknown>
  return {
    ID: c.id,
    Version: { Index: c.meta.version },
    CreatedAt: rfc3339(c.meta.createdAt),
    UpdatedAt: rfc3339(c.meta.updatedAt),
    Spec: spec,
    TLSInfo: toDocker(clusterTlsInfo(c)),
    RootRotationInProgress: !!c.rootCA.rootRotation,
    DefaultAddrPool: c.defaultAddressPool,
    SubnetSize: c.subnetSize,
    DataPathPort: c.vxlanUdpPort,
    JoinTokens: { Worker: c.rootCA.joinTokens.worker, Manager: c.rootCA.joinTokens.manager },
  }
}

/** The Engine API routes over a daemon. */
function routes(d: Daemon): [string, RegExp, Handler][] {
  const mgr = () => d.requireManager()
  const view = <R>(fn: (tx: ReadTx) => R): R => mgr().store.view(fn)
  const update = async <R>(fn: (tx: Tx) => R): Promise<R> => mgr().store.update(fn)

  /** List, inspect, create and remove for a table of named blobs (secrets, configs). */
  const blobRoutes = <T extends 'secrets' | 'configs'>(
    table: T,
    noun: string,
    toDocker: (o: ReturnType<typeof lookup<T>>) => Record<string, unknown>,
    minBytes: number,
  ): [string, RegExp, Handler][] => [
    [
      'GET',
      new RegExp(`^/${table}$`),
      ({ query }) => {
        const match = blobFilter(parseFilters(query.get('filters'), ACCEPTED[table]))
        return {
          json: view((tx) =>
            tx
              .find(table)
              .filter(match)
              .map((o) => toDocker(o as ReturnType<typeof lookup<T>>)),
          ),
        }
      },
    ],
    [
      'GET',
      new RegExp(`^/${table}/([^/]+)$`),
      ({ params }) => ({ json: view((tx) => toDocker(lookup(tx, table, params[0]!, noun))) }),
    ],
    [
      'POST',
      new RegExp(`^/${table}/create$`),
      async ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>
        const name = typeof b.Name === 'string' ? b.Name : ''
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name))
          throw new ApiError(400, `invalid ${noun} name "${name}"`)
        if (typeof b.Data !== 'string') throw new ApiError(400, `${noun} data must be base64`)
        const notBase64 = goBase64Error(b.Data)
        if (notBase64) throw new ApiError(400, `invalid JSON: ${notBase64}`)
        const data = new Uint8Array(Buffer.from(b.Data, 'base64'))
        if (data.length < minBytes || data.length > 500 * 1024)
          throw new ApiError(
            400,
            minBytes > 0
              ? `${noun} data must be between ${minBytes} byte and 500 KiB`
              : `${noun} data must be at most 500 KiB`,
          )
        const id = generateId()
        await update((tx) => {
          tx.create(table, { id, spec: { name, labels: labels(b.Labels, 'Labels'), data } } as never)
        })
        return { status: 201, json: { ID: id } }
      },
    ],
    [
      'POST',
      new RegExp(`^/${table}/([^/]+)/update$`),
      async ({ params, query, body }) => {
        await updateBlob(mgr().store, table, params[0]!, version(query), body, (tx, ref) =>
          lookup(tx, table, ref, noun),
        )
        return {}
      },
    ],
    [
      'DELETE',
      new RegExp(`^/${table}/([^/]+)$`),
      async ({ params }) => {
        await update((tx) => tx.delete(table, lookup(tx, table, params[0]!, noun).id))
        return { status: 204 }
      },
    ],
  ]

  return [
    ['GET', /^\/version$/, () => ({ json: versionJson() })],
    ['GET', /^\/info$/, () => ({ json: infoJson(d) })],
    [
      'GET',
      /^\/events$/,
      ({ query }) => {
        const stream = eventsStream(d.manager?.events, query)
        return {
          stream: (res) => {
            res.setHeader('Api-Version', API_VERSION)
            stream(res)
          },
        }
      },
    ],

    // ---- swarm
    [
      'POST',
      /^\/swarm\/init$/,
      async ({ body }) => ({ json: await d.init((body ?? {}) as Record<string, unknown>) }),
    ],
    [
      'POST',
      /^\/swarm\/join$/,
      async ({ body }) => {
        await d.join((body ?? {}) as Record<string, unknown>)
        return {}
      },
    ],
    [
      'POST',
      /^\/swarm\/leave$/,
      async ({ query }) => {
        await d.leave(query.get('force') === '1' || query.get('force') === 'true')
        return {}
      },
    ],
    ['GET', /^\/swarm$/, () => ({ json: swarmJson(mgr()) })],
    [
      'POST',
      /^\/swarm\/update$/,
      async ({ query, body }) => {
        const v = version(query)
        const spec = (body ?? {}) as {
          EncryptionConfig?: { AutoLockManagers?: unknown }
          CAConfig?: { NodeCertExpiry?: unknown; ForceRotate?: unknown; SigningCACert?: unknown }
        }
        const autolock = spec.EncryptionConfig?.AutoLockManagers
        const expiry = spec.CAConfig?.NodeCertExpiry
        const forceRotate = spec.CAConfig?.ForceRotate
        if (
          forceRotate !== undefined &&
          (typeof forceRotate !== 'number' || !Number.isSafeInteger(forceRotate) || forceRotate < 0)
        )
          throw new ApiError(400, 'CAConfig.ForceRotate: expected a non-negative integer')
        if (typeof spec.CAConfig?.SigningCACert === 'string' && spec.CAConfig.SigningCACert !== '')
          throw new ApiError(
            400,
            'rotating to a given CA certificate (--ca-cert, --external-ca) is not supported; use docker swarm ca --rotate',
          )
        if (expiry !== undefined && (typeof expiry !== 'number' || !Number.isSafeInteger(expiry)))
          throw new ApiError(400, 'CAConfig.NodeCertExpiry: expected integer nanoseconds')
        if (typeof expiry === 'number' && expiry < MIN_CERT_EXPIRY_NS)
          throw new ApiError(
            400,
            'rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s',
          )
        checkSwarmSettings(body)
        await mgr().updateCluster(
          v,
          typeof autolock === 'boolean' ? autolock : undefined,
          query.get('rotateManagerUnlockKey') === 'true',
          (c) => {
            const tokens = { ...c.rootCA.joinTokens }
            if (query.get('rotateWorkerToken') === 'true') tokens.worker = pki.rotateJoinToken(tokens.worker)
            if (query.get('rotateManagerToken') === 'true')
              tokens.manager = pki.rotateJoinToken(tokens.manager)
            let caConfig =
              typeof expiry === 'number' && expiry > 0
                ? { ...c.spec.caConfig, nodeCertExpiry: expiry }
                : c.spec.caConfig
            let rootCA = { ...c.rootCA, joinTokens: tokens }
            // `docker swarm ca --rotate` bumps ForceRotate: a new root, cross-signed by the old one.
            if (typeof forceRotate === 'number' && forceRotate > (c.spec.caConfig.forceRotate ?? 0)) {
              caConfig = { ...caConfig, forceRotate }
              rootCA = { ...rootCA, rootRotation: startRootRotation(c), lastForcedRotation: forceRotate }
            }
            return { ...c, spec: withSwarmSettings({ ...c.spec, caConfig }, body), rootCA }
          },
        )
        return {}
      },
    ],
    [
      'POST',
      /^\/swarm\/unlock$/,
      async ({ body }) => {
        await d.unlock((body as { UnlockKey?: unknown } | undefined)?.UnlockKey)
        return {}
      },
    ],
    [
      'GET',
      /^\/swarm\/unlockkey$/,
      () => {
        return { json: { UnlockKey: mgr().unlockKey() ?? '' } }
      },
    ],

    // ---- nodes
    [
      'GET',
      /^\/nodes$/,
      ({ query }) => {
        const match = nodeFilter(parseFilters(query.get('filters'), ACCEPTED.nodes))
        return {
          json: view((tx) => tx.find('nodes').filter(match).map(nodeToDocker)),
        }
      },
    ],
    [
      'GET',
      /^\/nodes\/([^/]+)$/,
      ({ params }) => ({ json: view((tx) => nodeToDocker(lookup(tx, 'nodes', params[0]!, 'node'))) }),
    ],
    [
      'POST',
      /^\/nodes\/([^/]+)\/update$/,
      async ({ params, query, body }) => {
        const v = version(query)
        const spec = nodeSpecFromDocker(body)
        await update((tx) => {
          const n = lookup(tx, 'nodes', params[0]!, 'node')
          checkVersion(n.meta.version, v)
          if (n.spec.role === 'manager' && spec.role === 'worker') checkDemotion(tx, n)
          // A role change takes effect through the leader (raft membership) and the node (a new certificate).
          tx.update('nodes', { ...n, spec })
        })
        return {}
      },
    ],

    [
      'DELETE',
      /^\/nodes\/([^/]+)$/,
      async ({ params, query }) => {
        const force = query.get('force') === '1' || query.get('force') === 'true'
        await update((tx) => {
          const n = lookup(tx, 'nodes', params[0]!, 'node')
          if (n.role === 'manager' || n.managerStatus)
            throw new ApiError(
              400,
              `rpc error: code = FailedPrecondition desc = node ${n.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`,
            )
          if (n.status.state !== 'down' && !force)
            throw new ApiError(
              400,
              `rpc error: code = FailedPrecondition desc = node ${n.id} is not down and can't be removed`,
            )
          const c = tx.find('clusters')[0]
          // Its certificate is refused from now on (until it would have expired).
          if (c)
            tx.update('clusters', {
              ...c,
              removedNodes: { ...c.removedNodes, [n.id]: { expiry: Date.now() + 90 * 24 * 3600 * 1000 } },
            })
          tx.delete('nodes', n.id)
        })
        return {}
      },
    ],

    // ---- services
    [
      'GET',
      /^\/services$/,
      ({ query }) => {
        const match = serviceFilter(parseFilters(query.get('filters'), ACCEPTED.services))
        const status = query.get('status') === 'true' || query.get('status') === '1'
        return {
          json: view((tx) =>
            tx
              .find('services')
              .filter(match)
              .map((s) => serviceToDocker(s, status ? serviceStatus(tx, s) : undefined)),
          ),
        }
      },
    ],
    [
      'POST',
      /^\/services\/create$/,
      async ({ body }) => {
        const spec = serviceSpecFromDocker(body)
        checkSpecRefs(spec)
        const id = generateId()
        await update((tx) => {
          const resolved = withNetworkIds(tx, spec)
          tx.create('services', { id, spec: resolved, endpoint: allocateEndpoint(tx, id, resolved) })
        })
        return { status: 201, json: { ID: id, Warnings: null } }
      },
    ],
    [
      'GET',
      /^\/services\/([^/]+)$/,
      ({ params, query }) => ({
        json: view((tx) =>
          serviceToDocker(lookup(tx, 'services', params[0]!, 'service'), undefined, {
            insertDefaults: query.get('insertDefaults') === 'true',
          }),
        ),
      }),
    ],
    [
      'POST',
      /^\/services\/([^/]+)\/update$/,
      async ({ params, query, body }) => {
        const v = version(query)
        if (query.get('rollback') === 'previous') {
          const s = view((tx) => lookup(tx, 'services', params[0]!, 'service'))
          checkVersion(s.meta.version, v)
          await rollbackService(mgr().store, s.id)
          return { json: { Warnings: null } }
        }
        const given = serviceSpecFromDocker(body)
        checkSpecRefs(given)
        await update((tx) => {
          const spec = withNetworkIds(tx, given)
          const cur = lookup(tx, 'services', params[0]!, 'service')
          checkVersion(cur.meta.version, v)
          if ('global' in cur.spec.mode !== 'global' in spec.mode)
            throw new ApiError(400, 'service mode cannot be changed')
          const changed = JSON.stringify(cur.spec.taskTemplate) !== JSON.stringify(spec.taskTemplate)
          const next: Service = {
            ...cur,
            spec,
            previousSpec: cur.spec,
            previousSpecVersion: cur.specVersion,
            // { index: 0 } asks the store for a new spec version (the commit's): a rolling update starts.
            specVersion: changed ? { index: 0 } : cur.specVersion,
            endpoint: allocateEndpoint(tx, cur.id, spec),
          }
          delete next.updateStatus
          tx.update('services', next)
        })
        return { json: { Warnings: null } }
      },
    ],
    [
      'DELETE',
      /^\/services\/([^/]+)$/,
      async ({ params }) => {
        await update((tx) => {
          const s = lookup(tx, 'services', params[0]!, 'service')
          tx.delete('services', s.id)
        })
        return {}
      },
    ],

    [
      'GET',
      /^\/services\/([^/]+)\/logs$/,
      async ({ params, query }) => {
        const id = view((tx) => lookup(tx, 'services', params[0]!, 'service').id)
        // Each round reads the service again: a removed service ends a --follow stream.
        return logReply(
          mgr(),
          () => view((tx) => tx.find('tasks', { serviceId: lookup(tx, 'services', id, 'service').id })),
          query,
        )
      },
    ],
    [
      'GET',
      /^\/tasks\/([^/]+)\/logs$/,
      async ({ params, query }) =>
        logReply(mgr(), () => view((tx) => [lookup(tx, 'tasks', params[0]!, 'task')]), query),
    ],

    // ---- tasks
    [
      'GET',
      /^\/tasks$/,
      ({ query }) => {
        const f = parseFilters(query.get('filters'), ACCEPTED.tasks)
        return {
          json: view((tx) => {
            const match = taskFilter(
              tx,
              f,
              (t, ref) => lookup(tx, t, ref, t === 'nodes' ? 'node' : 'service').id,
            )
            return tx
              .find('tasks')
              .filter(match)
              .sort((a, b) => a.meta.createdAt - b.meta.createdAt)
              .map(taskToDocker)
          }),
        }
      },
    ],
    [
      'GET',
      /^\/tasks\/([^/]+)$/,
      ({ params }) => ({ json: view((tx) => taskToDocker(lookup(tx, 'tasks', params[0]!, 'task'))) }),
    ],

    // ---- networks
    [
      'GET',
      /^\/networks$/,
      ({ query }) => {
        const f = parseFilters(query.get('filters'), ACCEPTED.networks)
        return { json: view((tx) => tx.find('networks').filter(networkFilter(tx, f)).map(networkToDocker)) }
      },
    ],
    [
      'GET',
      /^\/networks\/([^/]+)$/,
      ({ params }) => ({
        json: view((tx) => networkToDocker(lookup(tx, 'networks', params[0]!, 'network'))),
      }),
    ],
    [
      'POST',
      /^\/networks\/create$/,
      async ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>
        const name = typeof b.Name === 'string' ? b.Name : ''
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(name))
          throw new ApiError(400, `invalid network name "${name}"`)
        const driver = typeof b.Driver === 'string' && b.Driver ? b.Driver : 'overlay'
        if (driver !== 'overlay')
          throw new ApiError(400, `only overlay networks are supported by this cluster, not "${driver}"`)
        if (b.Ingress === true) throw new ApiError(403, 'an ingress network already exists')
        const id = await update((tx) =>
          createNetwork(tx, {
            name,
            labels: labels(b.Labels, 'Labels'),
            driverConfig: { name: 'overlay' },
            attachable: b.Attachable === true,
            internal: b.Internal === true,
          }),
        )
        return { status: 201, json: { Id: id, Warning: '' } }
      },
    ],
    [
      'DELETE',
      /^\/networks\/([^/]+)$/,
      async ({ params }) => {
        await update((tx) => {
          const n = lookup(tx, 'networks', params[0]!, 'network')
          const users = tx
            .find('services')
            .filter((s) => (s.endpoint?.virtualIPs ?? []).some((v) => v.networkId === n.id))
          if (users.length > 0)
            throw new ApiError(
              403,
              `rpc error: code = FailedPrecondition desc = network ${n.id} is in use by service ${users[0]!.id}`,
            )
          tx.delete('networks', n.id)
        })
        return { status: 204 }
      },
    ],

    // ---- secrets and configs: the same shape, named blobs of at most 500 KiB (a secret may not be empty)
    ...blobRoutes('secrets', 'secret', secretToDocker, 1),
    ...blobRoutes('configs', 'config', configToDocker, 0),

    // ---- registry: there is none, so the CLI warns and keeps the image unpinned.
    [
      'GET',
      /^\/distribution\/(.+)\/json$/,
      ({ params }) => {
        throw new ApiError(404, `no registry is reachable from this reference cluster (${params[0]})`)
      },
    ],
  ]
}

/**
 * `docker service logs`: the lines each task's agent kept, merged by time, one stdcopy frame per line
 * (stream 1, 4-byte big-endian length), with the `com.docker.swarm.*` details the CLI needs.
 */
async function logReply(m: Manager, tasks: () => readonly Task[], query: Query): Promise<Reply> {
  const tailRaw = query.get('tail')
  const tail = tailRaw && tailRaw !== 'all' ? Number(tailRaw) : Number.POSITIVE_INFINITY
  if (!(tail >= 0)) throw new ApiError(400, `invalid tail ${tailRaw}`)
  const since = Number(query.get('since') ?? '0') * 1000 || 0
  const details = query.get('details') === '1' || query.get('details') === 'true'
  const timestamps = query.get('timestamps') === '1' || query.get('timestamps') === 'true'
  const follow = query.get('follow') === '1' || query.get('follow') === 'true'
  /** Timestamp of the last line sent per task: later rounds send only newer lines. */
  const sent = new Map<string, string>()

  const collect = async (first: boolean) => {
    const byNode = new Map<string, Task[]>()
    for (const t of tasks()) {
      if (!t.nodeId) continue
      const list = byNode.get(t.nodeId) ?? []
      list.push(t)
      byNode.set(t.nodeId, list)
    }
    const entries: { at: string; payload: string }[] = []
    await Promise.all(
      [...byNode].map(async ([nodeId, list]) => {
        const got = await m
          .logs(
            nodeId,
            list.map((t) => t.id),
          )
          .catch(() => ({}) as Record<string, LogLine[]>)
        for (const t of list) {
          const after = sent.get(t.id)
          let lines = (got[t.id] ?? []).filter(
            (l) => Date.parse(l.timestamp) >= since && (after === undefined || l.timestamp > after),
          )
          if (first && Number.isFinite(tail)) lines = lines.slice(Math.max(0, lines.length - tail))
          if (lines.length > 0) sent.set(t.id, lines.at(-1)!.timestamp)
          const d = `com.docker.swarm.node.id=${encodeURIComponent(nodeId)},com.docker.swarm.service.id=${encodeURIComponent(t.serviceId)},com.docker.swarm.task.id=${encodeURIComponent(t.id)}`
          for (const l of lines)
            entries.push({
              at: l.timestamp,
              payload: `${timestamps ? `${l.timestamp} ` : ''}${details ? `${d} ` : ''}${l.message}\n`,
            })
        }
      }),
    )
    return entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
  }

  const write = (res: ServerResponse, entries: { payload: string }[]) => {
    for (const e of entries) {
      const payload = Buffer.from(e.payload, 'utf8')
      const header = Buffer.alloc(8)
      header[0] = 1
      header.writeUInt32BE(payload.length, 4)
      res.write(Buffer.concat([header, payload]))
    }
  }

  const initial = await collect(true)
  return {
    stream: (res) => {
      res.setHeader('Api-Version', API_VERSION)
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' })
      write(res, initial)
      if (!follow) {
        res.end()
        return
      }
      // --follow: poll the agents for new lines until the client goes away or the service is removed.
      let open = true
      res.on('close', () => {
        open = false
      })
      const poll = async () => {
        while (open) {
          await new Promise((r) => setTimeout(r, 250))
          if (!open) return
          let more: { payload: string }[]
          try {
            more = await collect(false)
          } catch {
            break // the service is gone
          }
          write(res, more)
        }
        res.end()
      }
      void poll()
    },
  }
}

function versionJson() {
  return {
    Platform: { Name: 'swarmkit reference cluster' },
    Components: [
      {
        Name: 'Engine',
        Version: ENGINE_VERSION,
        Details: {
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          GitCommit: 'swarmkit',
          GoVersion: `node${process.versions.node}`,
          Os: 'linux',
          Arch: 'amd64',
          KernelVersion: process.platform,
          BuildTime: new Date(0).toISOString(),
          Experimental: 'false',
        },
      },
    ],
    Version: ENGINE_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: 'swarmkit',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: process.platform,
    BuildTime: new Date(0).toISOString(),
  }
}

function infoJson(d: Daemon) {
  const m = d.manager
  let swarm: Record<string, unknown> = {
    NodeID: d.nodeId,
    NodeAddr: '',
    LocalNodeState: d.state,
    ControlAvailable: !!m,
    Error: '',
    RemoteManagers: null,
  }
  if (d.role === 'worker') {
    const known = d.knownManagers.map((m) => ({ NodeID: '', Addr: m.addr || m.control }))
    swarm = { ...swarm, RemoteManagers: known.length > 0 ? known : [{ NodeID: '', Addr: d.remoteManager }] }
  }
  let running = 0
  if (m) {
    const c = m.cluster()
    const { nodes, managers, remotes } = m.store.view((tx) => {
      const all = tx.find('nodes')
      const mgrs = all.filter((n) => n.managerStatus)
      return {
        nodes: all.length,
        managers: mgrs.length,
        remotes: mgrs.map((n) => ({ NodeID: n.id, Addr: n.managerStatus!.addr })),
      }
    })
    running = m.store.view(
      (tx) => tx.find('tasks', { nodeId: d.nodeId }, (t) => t.status.state === 'running').length,
    )
    const self = m.store.view((tx) => tx.get('nodes', d.nodeId))
    swarm = {
      ...swarm,
      NodeAddr: self?.status.addr ?? '',
      RemoteManagers: remotes,
      Nodes: nodes,
      Managers: managers,
      ...(c
        ? {
            Cluster: {
              ID: c.id,
              Version: { Index: c.meta.version },
              CreatedAt: rfc3339(c.meta.createdAt),
              UpdatedAt: rfc3339(c.meta.updatedAt),
              Spec: toDocker(c.spec),
              TLSInfo: toDocker(clusterTlsInfo(c)),
              RootRotationInProgress: !!c.rootCA.rootRotation,
              DefaultAddrPool: c.defaultAddressPool,
              SubnetSize: c.subnetSize,
              DataPathPort: c.vxlanUdpPort,
            },
          }
        : {}),
    }
  } else if (d.agent) {
    running = d.agent.tasks().filter((t) => t.state === 'running').length
  }
  return {
    ID: d.nodeId,
    Containers: running,
    ContainersRunning: running,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: 'simulated',
    Name: d.hostname,
    ServerVersion: ENGINE_VERSION,
    OperatingSystem: 'swarmkit reference cluster (simulated executor)',
    OSType: 'linux',
    Architecture: 'x86_64',
    NCPU: cpus().length,
    MemTotal: totalmem(),
    KernelVersion: process.platform,
    Plugins: { Volume: null, Network: ['overlay'], Authorization: null, Log: ['json-file'] },
    Swarm: swarm,
    SecurityOptions: [],
    Warnings: null,
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new ApiError(413, 'request body too large')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new ApiError(400, 'request body is not valid JSON')
  }
}

function send(res: ServerResponse, status: number, json?: unknown): void {
  res.setHeader('Api-Version', API_VERSION)
  res.setHeader('Docker-Experimental', 'false')
  res.setHeader('Ostype', 'linux')
  res.setHeader('Server', `Docker/${ENGINE_VERSION} (linux)`)
  if (json === undefined) {
    res.writeHead(status)
    res.end()
    return
  }
  const body = JSON.stringify(json)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

/** A route's pattern as a metrics label: `/services/{id}/update`. */
function routeLabel(re: RegExp): string {
  return re.source
    .replace(/^\^|\$$/g, '')
    .replace(/\(\[\^\/\]\+\)/g, '{id}')
    .replace(/\(\.\+\)/g, '{name}')
    .replace(/\\\//g, '/')
}

function swarmHeader(d: Daemon): string {
  if (d.state !== 'active') return d.state
  return d.manager ? 'active/manager' : 'active/worker'
}

/** Serves the Engine API for `daemon` (listen on TCP or a unix socket). */
export function engineApi(
  d: Daemon,
  options: {
    log?: (line: string) => void
    tls?: ApiTlsOptions
    /** Told of each answered request (metrics): method, route pattern, status, seconds. */
    onRequest?: (method: string, route: string, status: number, seconds: number) => void
  } = {},
): Server {
  const table = routes(d)
  const log = options.log ?? (() => {})
  return apiServer(options.tls, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://engine')
    const vm = /^\/v(\d+)\.(\d+)(\/.*)$/.exec(url.pathname)
    const path = vm ? vm[3]! : url.pathname
    const tooNew = vm ? Number(vm[1]) > 1 || (Number(vm[1]) === 1 && Number(vm[2]) > 50) : false
    const tooOld = vm ? Number(vm[1]) < 1 || (Number(vm[1]) === 1 && Number(vm[2]) < 24) : false
    if (path === '/_ping' && !tooOld && (req.method === 'GET' || req.method === 'HEAD')) {
      res.setHeader('Api-Version', API_VERSION)
      res.setHeader('Ostype', 'linux')
      res.setHeader('Docker-Experimental', 'false')
      res.setHeader('Builder-Version', '1')
      res.setHeader('Swarm', swarmHeader(d))
      res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate')
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 })
      res.end(req.method === 'HEAD' ? undefined : 'OK')
      return
    }
    let params: string[] | undefined
    const route = table.find(([method, re]) => {
      if (method !== req.method) return false
      const m = re.exec(path)
      if (m) params = m.slice(1).map((p) => decodeURIComponent(p))
      return !!m
    })
    if (options.onRequest) {
      const started = performance.now()
      const label = route ? routeLabel(route[1]) : 'unknown'
      res.once('close', () =>
        options.onRequest!(req.method ?? '', label, res.statusCode, (performance.now() - started) / 1000),
      )
    }
    const run = async () => {
      if (tooOld)
        throw new ApiError(
          400,
          `client version ${vm![1]}.${vm![2]} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        )
      if (tooNew)
        throw new ApiError(
          400,
          `client version ${vm![1]}.${vm![2]} is too new. Maximum supported API version is ${API_VERSION}`,
        )
      if (!route) throw new ApiError(404, `page not found: ${req.method} ${path}`)
      await requireLeader(d.manager, path)
      const body = req.method === 'POST' ? await readBody(req) : undefined
      const reply = await route[2]({ body, query: url.searchParams, params: params ?? [] })
      if (reply.stream) reply.stream(res)
      else send(res, reply.status ?? 200, reply.json)
    }
    run().catch((err: unknown) => {
      const e = storeError(err)
      if (!e) log(`${req.method} ${path}: ${(err as Error)?.stack ?? String(err)}`)
      const status = e?.status ?? 500
      const message = e?.message ?? (err as Error)?.message ?? String(err)
      if (!res.headersSent) send(res, status, { message })
      else res.destroy()
    })
  })
}
