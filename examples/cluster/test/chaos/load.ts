// The client side of the chaos suite: concurrent writers that create configs and update (scale) services
// through the Engine API of whichever manager is up, recording every operation with its outcome, like a
// Jepsen history. An operation that got no answer or an error is "unknown": it may or may not have happened.

import { mulberry32 } from '../../../../test/support/mulberry32.js'
import { NoAnswer } from './engine-client.js'
import type { ChaosCluster, ManagerProcess } from './managers.js'

export type Outcome = 'ok' | 'unknown'

export interface Op {
  readonly writer: number
  readonly kind: 'create' | 'update'
  /** The config name (create) or service name (update). */
  readonly key: string
  /** The replicas an update asked for. */
  readonly replicas?: number
  readonly start: number
  end: number
  outcome: Outcome
  /** The created config's ID. */
  id?: string
  via: string
  error?: string
}

/** A seeded uniform [0, 1) generator (mulberry32, shared by the test suites). */
export const rng = mulberry32

export interface LoadOptions {
  readonly writers: number
  readonly seed: number
  /** Bytes of each config's data (more makes a bigger snapshot). Default 64. */
  readonly configBytes?: number
  /** Share of operations that update a service (the rest create configs). Default 0.2. */
  readonly updateShare?: number
  /** Time allowed per request before it counts as unanswered. Default 10 s. */
  readonly timeoutMs?: number
  /** Stop after this many acknowledged creates in all. */
  readonly maxCreates?: number
}

export function serviceName(writer: number): string {
  return `svc-w${writer}`
}

export class Load {
  readonly history: Op[] = []
  readonly #cluster: ChaosCluster
  readonly #options: LoadOptions
  readonly #random: () => number
  #stopping = false
  #running: Promise<void>[] = []
  startedAt = 0
  stoppedAt = 0
  #acked = 0
  #ackedWaiters: { n: number; resolve: () => void }[] = []

  constructor(cluster: ChaosCluster, options: LoadOptions) {
    this.#cluster = cluster
    this.#options = options
    this.#random = rng(options.seed)
  }

  /** Creates each writer's service (1 replica), then starts the writers. */
  async start(): Promise<void> {
    const via = this.#cluster.managers.find((m) => m.up)!
    for (let w = 0; w < this.#options.writers; w++) {
      const r = await via.request('POST', '/services/create', serviceSpec(w, 1), 30_000)
      if (r.status !== 201) throw new Error(`creating ${serviceName(w)}: ${r.status} ${r.text}`)
    }
    this.startedAt = Date.now()
    for (let w = 0; w < this.#options.writers; w++) this.#running.push(this.#writer(w))
  }

  async stop(): Promise<void> {
    this.#stopping = true
    await Promise.all(this.#running)
    this.stoppedAt = Date.now()
  }

  get acknowledgedCreates(): number {
    return this.#acked
  }

  /** Resolves once `n` creates in all were acknowledged. */
  acknowledged(n: number): Promise<void> {
    if (this.#acked >= n) return Promise.resolve()
    return new Promise((resolve) => this.#ackedWaiters.push({ n, resolve }))
  }

  /** The last acknowledged write's end time (0 before any). */
  lastAck(): number {
    let t = 0
    for (const op of this.history) if (op.outcome === 'ok' && op.end > t) t = op.end
    return t
  }

  /** When the first write sent at or after `t` was acknowledged (undefined while none was). */
  firstAckAfter(t: number): number | undefined {
    let best: number | undefined
    for (const op of this.history)
      if (op.outcome === 'ok' && op.start >= t && (best === undefined || op.end < best)) best = op.end
    return best
  }

  /** The longest time (ms) between consecutive acknowledged writes while the load ran. */
  longestGap(): { ms: number; from: number; to: number } {
    const acks = this.history
      .filter((o) => o.outcome === 'ok')
      .map((o) => o.end)
      .sort((a, b) => a - b)
    let prev = this.startedAt
    let best = { ms: 0, from: prev, to: prev }
    for (const t of [...acks, this.stoppedAt || Date.now()]) {
      if (t - prev > best.ms) best = { ms: t - prev, from: prev, to: t }
      prev = t
    }
    return best
  }

  #pick(): ManagerProcess | undefined {
    const up = this.#cluster.managers.filter((m) => m.up)
    return up[Math.floor(this.#random() * up.length)]
  }

  async #writer(w: number): Promise<void> {
    let seq = 0
    const bytes = this.#options.configBytes ?? 64
    const timeoutMs = this.#options.timeoutMs ?? 10_000
    while (!this.#stopping) {
      if (this.#options.maxCreates !== undefined && this.#acked >= this.#options.maxCreates) return
      const via = this.#pick()
      if (!via) {
        await new Promise((r) => setTimeout(r, 50))
        continue
      }
      const update = this.#random() < (this.#options.updateShare ?? 0.2)
      seq++
      const op: Op = update
        ? {
            writer: w,
            kind: 'update',
            key: serviceName(w),
            replicas: 1 + (seq % 3),
            start: Date.now(),
            end: 0,
            outcome: 'unknown',
            via: via.name,
          }
        : {
            writer: w,
            kind: 'create',
            key: `c-w${w}-${seq}`,
            start: Date.now(),
            end: 0,
            outcome: 'unknown',
            via: via.name,
          }
      this.history.push(op)
      try {
        if (op.kind === 'create') {
          const data = Buffer.alloc(bytes, `${op.key}.`).toString('base64')
          const r = await via.request('POST', '/configs/create', { Name: op.key, Data: data }, timeoutMs)
          if (r.status === 201 && typeof r.json?.ID === 'string') {
            op.outcome = 'ok'
            op.id = r.json.ID
          } else op.error = `${r.status} ${r.json?.message ?? r.text}`
        } else {
          const cur = await via.request('GET', `/services/${op.key}`, undefined, timeoutMs)
          if (cur.status !== 200) op.error = `inspect: ${cur.status} ${cur.json?.message ?? cur.text}`
          else {
            const spec = cur.json.Spec
            spec.Mode = { Replicated: { Replicas: op.replicas } }
            const r = await via.request(
              'POST',
              `/services/${cur.json.ID}/update?version=${cur.json.Version.Index}`,
              spec,
              timeoutMs,
            )
            if (r.status === 200) op.outcome = 'ok'
            else op.error = `${r.status} ${r.json?.message ?? r.text}`
          }
        }
      } catch (err) {
        op.error = err instanceof NoAnswer ? err.message : String(err)
      }
      op.end = Date.now()
      if (op.outcome === 'ok' && op.kind === 'create') {
        this.#acked++
        this.#ackedWaiters = this.#ackedWaiters.filter((x) => {
          if (this.#acked < x.n) return true
          x.resolve()
          return false
        })
      }
      // A refused or unanswered request: back off a little rather than spin on a manager without a leader.
      if (op.outcome !== 'ok') await new Promise((r) => setTimeout(r, 20 + this.#random() * 80))
    }
  }
}

export function serviceSpec(w: number, replicas: number): Record<string, unknown> {
  return {
    Name: serviceName(w),
    TaskTemplate: { ContainerSpec: { Image: 'busybox:chaos', Command: ['sleep', '1d'] } },
    Mode: { Replicated: { Replicas: replicas } },
  }
}
