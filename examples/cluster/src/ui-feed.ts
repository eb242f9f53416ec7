// The browser view's live feed: a manager's store replica projected to the page's shapes (src/ui/types.ts),
// sent as server-sent events: a `snapshot` first, then `patch` messages coalesced over a short window, so
// that a burst (a service scaled to 1,000) is one message and the page redraws only what changed.

import type { ServerResponse } from 'node:http'
import {
  type ClusterStore,
  isStoreError,
  type Network,
  type Node,
  type Service,
  type StoreEvent,
  type Task,
} from '@swarmkit/store'
import type { Manager } from './manager.js'
import {
  UI_ADDR_LABEL,
  type UiNetwork,
  type UiNode,
  type UiPatch,
  type UiRaft,
  type UiService,
  type UiSnapshot,
  type UiTask,
} from './ui/types.js'

/** How long changes are gathered before a patch goes out (well within the second the page promises). */
const COALESCE_MS = 50
/** A comment line this often keeps proxies and the browser from thinking the stream died. */
const KEEPALIVE_MS = 15_000

export function uiNode(n: Node): UiNode {
  return {
    id: n.id,
    name: n.spec.name || n.description?.hostname || n.id.slice(0, 12),
    role: n.role,
    availability: n.spec.availability,
    state: n.status.state,
    addr: n.status.addr,
    leader: n.managerStatus?.leader ?? false,
    reachability: n.managerStatus?.reachability ?? '',
    ui: n.description?.engine.labels[UI_ADDR_LABEL] ?? '',
    version: n.meta.version,
  }
}

/** Only tasks meant to run get a card; the rest of a slot's history is `docker service ps`'s business. */
export function isLiveTask(t: Task): boolean {
  return t.desiredState === 'running' || t.desiredState === 'ready'
}

export function uiTask(t: Task): UiTask {
  return {
    id: t.id,
    serviceId: t.serviceId,
    service: t.serviceAnnotations.name,
    slot: t.slot,
    nodeId: t.nodeId,
    image: t.spec.containerSpec.image,
    state: t.status.state,
    desired: t.desiredState,
    err: t.status.err ?? '',
  }
}

function modeName(s: Service): string {
  const m = s.spec.mode
  if ('replicated' in m) return 'replicated'
  if ('global' in m) return 'global'
  if ('replicatedJob' in m) return 'replicated-job'
  return 'global-job'
}

export function uiService(s: Service): UiService {
  const ports = s.endpoint?.ports ?? s.spec.endpointSpec?.ports ?? []
  return {
    id: s.id,
    name: s.spec.name,
    mode: modeName(s),
    replicas: 'replicated' in s.spec.mode ? s.spec.mode.replicated.replicas : -1,
    image: s.spec.taskTemplate.containerSpec.image,
    ports: ports
      .filter((p) => p.publishedPort > 0)
      .map((p) => `${p.publishedPort}:${p.targetPort}/${p.protocol}`),
    update: s.updateStatus?.state ?? '',
    updateMessage: s.updateStatus?.message ?? '',
    hasPrevious: s.previousSpec !== undefined,
    version: s.meta.version,
  }
}

export function uiNetwork(n: Network): UiNetwork {
  const configs = n.ipam?.configs ?? n.spec.ipam?.configs ?? []
  return {
    id: n.id,
    name: n.spec.name,
    driver: n.driverState?.name ?? n.spec.driverConfig?.name ?? 'overlay',
    subnets: configs.map((c) => c.subnet),
    ingress: n.spec.ingress ?? false,
  }
}

export function uiSnapshot(store: ClusterStore, self: string, clusterId: string): UiSnapshot {
  return store.view((tx) => ({
    self,
    clusterId,
    nodes: tx.find('nodes').map(uiNode),
    services: tx.find('services').map(uiService),
    tasks: tx.find('tasks').filter(isLiveTask).map(uiTask),
    networks: tx.find('networks').map(uiNetwork),
  }))
}

/** This manager's raft state, with the leader named by node ID. */
export function uiRaft(m: Manager): UiRaft {
  const leaderRaft = m.raft.leaderId
  const nodes = m.store.view((tx) => tx.find('nodes'))
  const self = nodes.find((n) => n.id === m.nodeId)
  return {
    nodeId: m.nodeId,
    name: self ? uiNode(self).name : m.nodeId.slice(0, 12),
    raftId: m.raftId,
    term: m.raft.term,
    leader: nodes.find((n) => leaderRaft !== null && n.managerStatus?.raftId === leaderRaft)?.id ?? '',
    commit: m.raft.commitIndex,
    applied: m.raft.appliedIndex,
  }
}

type Table = 'nodes' | 'services' | 'tasks' | 'networks'

/** Gathers store changes into one patch: the last state of each object wins. */
class PatchBuilder {
  readonly #up = { nodes: new Map(), services: new Map(), tasks: new Map(), networks: new Map() } as {
    nodes: Map<string, UiNode>
    services: Map<string, UiService>
    tasks: Map<string, UiTask>
    networks: Map<string, UiNetwork>
  }
  readonly #gone: Record<Table, Set<string>> = {
    nodes: new Set(),
    services: new Set(),
    tasks: new Set(),
    networks: new Set(),
  }
  size = 0

  add(e: StoreEvent<Table>): void {
    this.size++
    const o = e.object as { id: string }
    const gone = (t: Table) => {
      this.#up[t].delete(o.id)
      this.#gone[t].add(o.id)
    }
    const put = <T extends Table>(t: T, v: UiSnapshot[T][number]) => {
      this.#gone[t].delete(o.id)
      ;(this.#up[t] as Map<string, unknown>).set(o.id, v)
    }
    if (e.action === 'delete') gone(e.table)
    else if (e.table === 'nodes') put('nodes', uiNode(e.object as Node))
    else if (e.table === 'services') put('services', uiService(e.object as Service))
    else if (e.table === 'networks') put('networks', uiNetwork(e.object as Network))
    else if (isLiveTask(e.object as Task)) put('tasks', uiTask(e.object as Task))
    else gone('tasks')
  }

  take(): UiPatch {
    const patch: Record<string, unknown> = {}
    const removed: Record<string, string[]> = {}
    for (const t of ['nodes', 'services', 'tasks', 'networks'] as const) {
      if (this.#up[t].size > 0) patch[t] = [...this.#up[t].values()]
      if (this.#gone[t].size > 0) removed[t] = [...this.#gone[t]]
      this.#up[t].clear()
      this.#gone[t].clear()
    }
    if (Object.keys(removed).length > 0) patch.removed = removed
    this.size = 0
    return patch as UiPatch
  }
}

function send(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
}

/**
 * Streams `manager`'s view to `res` as server-sent events until the client leaves or the manager stops:
 * `snapshot`, then `patch` per burst of changes. A watch that falls behind is answered with a new snapshot.
 */
export function streamUiFeed(manager: Manager, res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  })
  const stop = new AbortController()
  res.on('close', () => stop.abort())
  const store = manager.store
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS)
  keepalive.unref()
  stop.signal.addEventListener('abort', () => clearInterval(keepalive), { once: true })
  // Sent first: the page retries after this long when the stream ends (its own failover takes over sooner).
  res.write('retry: 1000\n\n')
  void (async () => {
    while (!stop.signal.aborted && !store.closed) {
      // The watch starts before the snapshot is read: a change in between is in both, and applying it again
      // leaves the same state.
      const watch = store.watch<Table>({
        table: ['nodes', 'services', 'tasks', 'networks'],
        signal: stop.signal,
      })
      send(res, 'snapshot', uiSnapshot(store, manager.nodeId, manager.clusterId))
      const patch = new PatchBuilder()
      let timer: NodeJS.Timeout | undefined
      const flush = () => {
        timer = undefined
        if (patch.size > 0 && !res.destroyed) send(res, 'patch', patch.take())
      }
      try {
        for (;;) {
          const e = watch.poll() ?? (await nextOrEnd(watch))
          if (!e) break
          patch.add(e)
          timer ??= setTimeout(flush, COALESCE_MS)
        }
        clearTimeout(timer)
        flush()
        break
      } catch (err) {
        clearTimeout(timer)
        if (!isStoreError(err) || err.code !== 'WATCH_DROPPED') break
        // Fell behind (a long replay): start over with a fresh snapshot.
      }
    }
    res.end()
  })().catch(() => res.destroy())
}

async function nextOrEnd<T>(it: AsyncIterator<T>): Promise<T | undefined> {
  const r = await it.next()
  return r.done ? undefined : r.value
}
