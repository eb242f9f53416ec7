import { mulberry32 } from '../../../../test/support/mulberry32.js'
import { type CoreOptions, RaftCore } from '../../src/core.js'
import type { Entry, HardState } from '../../src/storage.js'
import { type Message, MessageType, type Ready } from '../../src/types.js'

export const T = MessageType
const typeName = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k])) as Record<
  number,
  string
>

/** A seeded PRNG (mulberry32, the workspace's shared test generator). */
export const rng = mulberry32

export function newCore(id: string, voters: string[], o: Partial<CoreOptions> = {}): RaftCore {
  return new RaftCore({
    id,
    voters,
    electionTick: 10,
    heartbeatTick: 1,
    random: rng(id.charCodeAt(id.length - 1)),
    ...o,
  })
}

/** Short text for a message, for exact traces. */
export function fmt(m: Message): string {
  let s = `${m.from}->${m.to} ${typeName[m.type]} t${m.term}`
  switch (m.type) {
    case T.Append:
      s += ` i${m.index}/${m.logTerm} c${m.commit} [${m.entries.map((e) => `${e.index}/${e.term}`).join(',')}]`
      break
    case T.AppendResp:
      s += m.reject ? ` reject i${m.index} hint${m.hint}/${m.logTerm}` : ` i${m.index}`
      break
    case T.Vote:
    case T.PreVote:
      s += ` last${m.index}/${m.logTerm}`
      break
    case T.VoteResp:
    case T.PreVoteResp:
      s += m.reject ? ' reject' : ' grant'
      break
    case T.Heartbeat:
      s += ` c${m.commit}${m.context ? ` r${m.context}` : ''}`
      break
    case T.HeartbeatResp:
    case T.ReadIndex:
      s += m.context ? ` r${m.context}` : ''
      break
    case T.ReadIndexResp:
      s += m.reject ? ` reject r${m.context}` : ` i${m.index} r${m.context}`
      break
  }
  return s
}

/**
 * Cores wired together in memory. Each ready is persisted to an in-memory "disk" at once, then sent; messages
 * queue in the network until delivered (deliverAll, or one by one for exact schedules).
 */
export class Cluster {
  readonly cores = new Map<string, RaftCore>()
  readonly disk = new Map<string, { hard: HardState; entries: Entry[] }>()
  readonly applied = new Map<string, Entry[]>()
  queue: Message[] = []
  readonly trace: string[] = []
  dropped = new Set<string>()
  /** Optional filter: return false to drop. */
  filter: ((m: Message) => boolean) | null = null
  readStates = new Map<string, { context: number; index: number }[]>()
  sent = 0

  constructor(
    ids: string[],
    readonly opts: (id: string) => Partial<CoreOptions> = () => ({}),
  ) {
    for (const id of ids) this.add(id, ids)
  }

  add(id: string, voters: string[]): RaftCore {
    const c = newCore(id, voters, this.opts(id))
    this.cores.set(id, c)
    this.disk.set(id, { hard: { term: 0, vote: null, commit: 0 }, entries: [] })
    this.applied.set(id, [])
    this.readStates.set(id, [])
    return c
  }

  get(id: string): RaftCore {
    return this.cores.get(id)!
  }

  /** Restarts a node from its disk (its in-memory state is lost). */
  restart(id: string, voters: string[]): RaftCore {
    const d = this.disk.get(id)!
    const c = newCore(id, voters, {
      ...this.opts(id),
      state: { hardState: d.hard, snapshot: null, entries: d.entries.slice() },
    })
    this.cores.set(id, c)
    this.applied.set(id, [])
    return c
  }

  /** Drains every core's Ready once: persist, send, apply, advance. */
  flush(): void {
    let again = true
    while (again) {
      again = false
      for (const [id, c] of this.cores) {
        if (this.dropped.has(`down:${id}`)) continue
        if (!c.hasReady()) continue
        again = true
        const rd: Ready = c.ready()
        for (const m of rd.messagesNow) this.enqueue(m)
        const d = this.disk.get(id)!
        if (rd.entries.length) {
          const first = rd.entries[0]!.index
          d.entries.length = first - 1
          d.entries.push(...rd.entries)
        }
        if (rd.hardState) d.hard = rd.hardState
        for (const m of rd.messages) this.enqueue(m)
        this.applied.get(id)!.push(...rd.committed)
        // As the driver does: tell the core when a Config entry is applied.
        for (const e of rd.committed) if (e.type === 1) c.confApplied(e.index)
        this.readStates.get(id)!.push(...rd.readStates)
        c.advance(rd)
      }
    }
  }

  private enqueue(m: Message): void {
    this.sent++
    this.queue.push(m)
  }

  /** Delivers queued messages (and whatever they cause) until the network is quiet. */
  deliverAll(max = 100_000): void {
    this.flush()
    let n = 0
    while (this.queue.length > 0) {
      if (++n > max) throw new Error('network did not quiesce')
      const m = this.queue.shift()!
      this.deliver(m)
      this.flush()
    }
  }

  deliver(m: Message): void {
    if (this.isCut(m)) {
      this.trace.push(`${fmt(m)} DROPPED`)
      return
    }
    this.trace.push(fmt(m))
    this.cores.get(m.to)?.step(m)
  }

  isCut(m: Message): boolean {
    return (
      this.dropped.has(`down:${m.to}`) ||
      this.dropped.has(`down:${m.from}`) ||
      this.dropped.has(`${m.from}>${m.to}`) ||
      (this.filter !== null && !this.filter(m))
    )
  }

  isolate(id: string): void {
    for (const o of this.cores.keys()) {
      if (o === id) continue
      this.dropped.add(`${id}>${o}`)
      this.dropped.add(`${o}>${id}`)
    }
  }

  heal(): void {
    this.dropped.clear()
    this.filter = null
  }

  tick(id: string, n = 1): void {
    for (let i = 0; i < n; i++) this.get(id).tick()
  }

  /** Makes `id` campaign at once (ticks it until it starts, without letting others tick). */
  campaign(id: string): void {
    const c = this.get(id)
    for (let i = 0; i < 100 && c.role === 'follower'; i++) c.tick()
    this.deliverAll()
  }

  propose(id: string, text: string): { index: number; term: number; reason: number } {
    const r = this.get(id).propose([new TextEncoder().encode(text)], 1)
    this.deliverAll()
    return r
  }

  leader(): RaftCore | undefined {
    let best: RaftCore | undefined
    for (const c of this.cores.values()) if (c.role === 'leader' && (!best || c.term > best.term)) best = c
    return best
  }

  appliedText(id: string): string[] {
    return this.applied
      .get(id)!
      .filter((e) => e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data))
  }
}

export function msg(p: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return { index: 0, logTerm: 0, entries: [], commit: 0, reject: false, hint: 0, context: 0, ...p }
}

export function ent(index: number, term: number, text = ''): Entry {
  return { index, term, type: 0, data: new TextEncoder().encode(text) }
}
