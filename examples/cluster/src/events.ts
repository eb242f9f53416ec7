// The events stream (`GET /events`, `docker events`): swarm's events, built on every manager from its own
// replica's store watch as moby's daemon builds them from swarmkit's watch (`daemon/events.go`): types node,
// service, network, secret, config; actions create, update, remove; the attributes moby adds for node state,
// availability, role, leadership and reachability changes, and for service image, replicas and update state.
// `ClusterEvents.subscribe` is the typed subscription: `GET /events` streams it as JSON lines, and a browser
// view can stream the same over server-sent events.

import type { ServerResponse } from 'node:http'
import type { ClusterStore, Node, Service, StoreEvent, Table } from '@swarmkit/store'
import { EventEmitter } from 'eventemitter3'
import { ApiError } from './errors.js'
import { type Filters, parseFilters } from './filters.js'
import { followStore } from './store-follow.js'

export type EventType = 'node' | 'service' | 'network' | 'secret' | 'config'
export type EventAction = 'create' | 'update' | 'remove'

/** One event as the Engine API sends it (`events.Message`). */
export interface EventMessage {
  readonly Type: EventType
  readonly Action: EventAction
  readonly Actor: { readonly ID: string; readonly Attributes: Readonly<Record<string, string>> }
  readonly scope: 'swarm'
  /** Seconds since the epoch. */
  readonly time: number
  /** Nanoseconds since the epoch (a bigint: it does not fit a double exactly). */
  readonly timeNano: bigint
}

export interface EventSubscribeOptions {
  /** Replay the kept events from this time on (ns since the epoch), then follow live ones. */
  readonly since?: bigint
  /** Stop at this time (ns since the epoch); a time in the past only replays. */
  readonly until?: bigint
  /** `docker events --filter` (type, event, scope, label, node, service, network, secret, config, …). */
  readonly filters?: Filters
  readonly signal?: AbortSignal
}

export interface ClusterEventsEvents {
  'event:message': (message: EventMessage) => void
}

const TYPES: Partial<Record<Table, EventType>> = {
  nodes: 'node',
  services: 'service',
  networks: 'network',
  secrets: 'secret',
  configs: 'config',
}
const ACTIONS = { create: 'create', update: 'update', delete: 'remove' } as const
/** Events kept for `--since` (moby keeps 256). */
const DEFAULT_KEEP = 256

function changed(attrs: Record<string, string>, key: string, before: string, after: string): void {
  if (before === after) return
  attrs[`${key}.old`] = before
  attrs[`${key}.new`] = after
}

function nodeAttributes(n: Node, old: Node | undefined): Record<string, string> {
  const attrs: Record<string, string> = { name: n.spec.name || n.description?.hostname || '' }
  if (!old) return attrs
  changed(attrs, 'availability', old.spec.availability, n.spec.availability)
  changed(attrs, 'role', old.role, n.role)
  changed(attrs, 'state', old.status.state, n.status.state)
  if (n.managerStatus && old.managerStatus) {
    changed(attrs, 'leader', String(old.managerStatus.leader), String(n.managerStatus.leader))
    changed(attrs, 'reachability', old.managerStatus.reachability, n.managerStatus.reachability)
  }
  return attrs
}

function replicas(s: Service): string | undefined {
  return 'replicated' in s.spec.mode ? String(s.spec.mode.replicated.replicas) : undefined
}

function serviceAttributes(s: Service, old: Service | undefined): Record<string, string> {
  const attrs: Record<string, string> = { name: s.spec.name }
  if (!old) return attrs
  changed(attrs, 'image', old.spec.taskTemplate.containerSpec.image, s.spec.taskTemplate.containerSpec.image)
  const r = replicas(s)
  const was = replicas(old)
  if (r !== undefined && was !== undefined) changed(attrs, 'replicas', was, r)
  if (s.updateStatus) {
    if (!old.updateStatus) attrs['updatestate.new'] = s.updateStatus.state
    else changed(attrs, 'updatestate', old.updateStatus.state, s.updateStatus.state)
  }
  return attrs
}

/** The Engine API message for a store change, or undefined for tables swarm sends no events for. */
export function toEventMessage(e: StoreEvent, now = Date.now()): EventMessage | undefined {
  const type = TYPES[e.table]
  if (!type) return undefined
  const o = e.object as {
    id: string
    meta: { createdAt: number; updatedAt: number }
    spec: { name?: string }
  }
  const old = e.action === 'update' ? e.oldObject : undefined
  const attributes =
    type === 'node'
      ? nodeAttributes(e.object as Node, old as Node | undefined)
      : type === 'service'
        ? serviceAttributes(e.object as Service, old as Service | undefined)
        : { name: o.spec.name ?? '' }
  // moby's times: creation time for create, last update for update, now for remove.
  const ms = e.action === 'create' ? o.meta.createdAt : e.action === 'update' ? o.meta.updatedAt : now
  return {
    Type: type,
    Action: ACTIONS[e.action],
    Actor: { ID: o.id, Attributes: attributes },
    scope: 'swarm',
    time: Math.floor(ms / 1000),
    timeNano: BigInt(Math.round(ms)) * 1_000_000n,
  }
}

const anyOf = (values: readonly string[] | undefined, test: (v: string) => boolean) =>
  !values || values.length === 0 || values.some(test)
/** moby's FuzzyMatch: the value itself, or a prefix of it. */
const fuzzy = (values: readonly string[] | undefined, s: string) => anyOf(values, (v) => s.startsWith(v))
const OBJECT_KEYS = [
  'daemon',
  'container',
  'plugin',
  'volume',
  'network',
  'service',
  'node',
  'secret',
  'config',
]

/** moby's event filter (`daemon/events/filter.go`). */
export function eventMatches(f: Filters, m: EventMessage): boolean {
  if (!anyOf(f.get('event'), (v) => v === m.Action)) return false
  if (!anyOf(f.get('type'), (v) => v === m.Type)) return false
  if (!anyOf(f.get('scope'), (v) => v === m.scope)) return false
  const name = m.Actor.Attributes.name ?? ''
  for (const key of OBJECT_KEYS) {
    const values = f.get(key)
    if (values && values.length > 0 && !fuzzy(values, m.Actor.ID) && !fuzzy(values, name)) return false
  }
  const image = f.get('image')
  if (image && image.length > 0 && !image.some((v) => v === m.Actor.ID || v === m.Actor.Attributes.image))
    return false
  const labels = f.get('label')
  if (labels && labels.length > 0) {
    const ok = labels.every((w) => {
      const i = w.indexOf('=')
      const key = i < 0 ? w : w.slice(0, i)
      if (!Object.hasOwn(m.Actor.Attributes, key)) return false
      return i < 0 || m.Actor.Attributes[key] === w.slice(i + 1)
    })
    if (!ok) return false
  }
  return true
}

/**
 * A manager's events: a store watch turned into Engine API messages, the last `keep` of them kept for
 * `--since`, each one emitted as `event:message` and handed to every subscription.
 */
export class ClusterEvents extends EventEmitter<ClusterEventsEvents> {
  readonly #kept: EventMessage[] = []
  readonly #keep: number
  readonly #stop = new AbortController()

  constructor(store: ClusterStore, options: { keep?: number; log?: (line: string) => void } = {}) {
    super()
    this.#keep = options.keep ?? DEFAULT_KEEP
    void followStore(
      store,
      { table: ['nodes', 'services', 'networks', 'secrets', 'configs'] },
      (e) => {
        const m = toEventMessage(e)
        if (m) this.#publish(m)
      },
      this.#stop.signal,
      options.log && ((l) => options.log!(`events: ${l}`)),
    )
  }

  #publish(m: EventMessage): void {
    this.#kept.push(m)
    if (this.#kept.length > this.#keep) this.#kept.shift()
    this.emit('event:message', m)
  }

  /** The kept events between `since` and `until` that pass `filters`. */
  history(options: EventSubscribeOptions = {}): EventMessage[] {
    if (options.since === undefined && options.until === undefined) return []
    const f = options.filters ?? new Map()
    return this.#kept.filter(
      (m) =>
        (options.since === undefined || m.timeNano >= options.since) &&
        (options.until === undefined || m.timeNano <= options.until) &&
        eventMatches(f, m),
    )
  }

  /**
   * The kept events from `since`, then live ones, until `until` passes, `signal` aborts or `close()`. Events
   * are queued between reads (a slow reader is cut off past 10,000, as moby drops slow subscribers).
   */
  async *subscribe(options: EventSubscribeOptions = {}): AsyncGenerator<EventMessage> {
    const f = options.filters ?? new Map()
    const queue: EventMessage[] = this.history(options)
    const since = options.since
    const untilMs = options.until === undefined ? undefined : Number(options.until / 1_000_000n)
    if (untilMs !== undefined && untilMs <= Date.now()) {
      yield* queue
      return
    }
    let wake: (() => void) | undefined
    let done = false
    const end = () => {
      done = true
      wake?.()
    }
    const on = (m: EventMessage) => {
      if ((since !== undefined && m.timeNano < since) || !eventMatches(f, m)) return
      if (queue.length >= 10_000) return end()
      queue.push(m)
      wake?.()
    }
    this.on('event:message', on)
    const timer = untilMs === undefined ? undefined : setTimeout(end, untilMs - Date.now())
    options.signal?.addEventListener('abort', end, { once: true })
    this.#stop.signal.addEventListener('abort', end, { once: true })
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!
        if (done || options.signal?.aborted || this.#stop.signal.aborted) return
        await new Promise<void>((r) => {
          wake = r
        })
        wake = undefined
      }
    } finally {
      this.off('event:message', on)
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', end)
      this.#stop.signal.removeEventListener('abort', end)
    }
  }

  close(): void {
    this.#stop.abort()
    this.removeAllListeners()
  }
}

/** moby's `ParseUnixTimestamp`: `seconds[.fraction]` as ns since the epoch (undefined when empty). */
export function parseUnixTimestamp(value: string | null, name: 'since' | 'until'): bigint | undefined {
  if (!value) return undefined
  const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(value)
  if (!m)
    throw new ApiError(
      400,
      `invalid value for '${name}': strconv.ParseInt: parsing "${value}": invalid syntax`,
    )
  const frac = (m[2] ?? '').padEnd(9, '0')
  return BigInt(m[1]!) * 1_000_000_000n + BigInt(frac || '0')
}

/** One event as a JSON line (timeNano written exactly). */
export function eventJson(m: EventMessage): string {
  return JSON.stringify({ ...m, timeNano: '\u0000' }).replace('"\\u0000"', m.timeNano.toString())
}

/**
 * `GET /events` on `events` (undefined on a node that is no manager: no swarm events, the stream stays open
 * until `until` or the client leaves). Checks the query first, so that a bad one is a 400.
 */
export function eventsStream(
  events: ClusterEvents | undefined,
  query: URLSearchParams,
): (res: ServerResponse) => void {
  const since = parseUnixTimestamp(query.get('since'), 'since')
  const until = parseUnixTimestamp(query.get('until'), 'until')
  if (until !== undefined && until < (since ?? 0n))
    throw new ApiError(
      400,
      `\`since\` time (${query.get('since')}) cannot be after \`until\` time (${query.get('until')})`,
    )
  const filters = parseFilters(query.get('filters'))
  return (res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' })
    res.flushHeaders()
    const stop = new AbortController()
    res.on('close', () => stop.abort())
    const source = events?.subscribe({
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      filters,
      signal: stop.signal,
    })
    void (async () => {
      if (source) for await (const m of source) res.write(`${eventJson(m)}\n`)
      else if (until !== undefined) {
        const wait = Number(until / 1_000_000n) - Date.now()
        if (wait > 0) await new Promise<void>((r) => setTimeout(r, wait).unref())
      } else await new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }))
      res.end()
    })().catch(() => res.destroy())
  }
}

/**
 * Streams `source` as server-sent events (`text/event-stream`, one `data:` line of JSON per event, the event's
 * nanosecond time as its `id`), for a browser's `EventSource`; ends when the source ends or the client leaves.
 */
export function writeServerSentEvents(
  source: AsyncGenerator<EventMessage>,
  res: ServerResponse,
): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  })
  res.flushHeaders()
  res.on('close', () => void source.return(undefined))
  return (async () => {
    for await (const m of source) res.write(`id: ${m.timeNano}\ndata: ${eventJson(m)}\n\n`)
    res.end()
  })().catch(() => {
    res.destroy()
  })
}
