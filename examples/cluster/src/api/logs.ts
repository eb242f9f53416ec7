// Engine API: `docker service logs` and task logs, gathered from the agents that ran the tasks and streamed
// in Docker's multiplexed (stdcopy) framing, with `--follow`, `--tail`, `--since`, `--timestamps`, `--details`.

import type { ServerResponse } from 'node:http'
import type { Task } from '@swarmkit/store'
import type { LogLine } from '../agent.js'
import { ApiError } from '../errors.js'
import type { Manager } from '../manager.js'
import { API_VERSION, lookup, type Query, type Reply, type Route, type RouteContext } from './route.js'

export function logRoutes({ mgr, view }: RouteContext): Route[] {
  return [
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
    const entries: { at: string; payload: string; stream?: 'stdout' | 'stderr' }[] = []
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
              ...(l.stream ? { stream: l.stream } : {}),
            })
        }
      }),
    )
    return entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
  }

  const write = (res: ServerResponse, entries: { payload: string; stream?: 'stdout' | 'stderr' }[]) => {
    for (const e of entries) {
      const payload = Buffer.from(e.payload, 'utf8')
      const header = Buffer.alloc(8)
      header[0] = e.stream === 'stderr' ? 2 : 1
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
