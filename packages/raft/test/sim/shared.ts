// What both simulations share: the key-value state machine, the client workload that records a history for the
// linearizability check, and the safety invariants checked after every step.
import { ManualClock } from '@swarmkit/transport'
import type { RaftCore } from '../../src/core.js'
import type { RaftNode } from '../../src/index.js'
import { isRaftError } from '../../src/index.js'
import type { Entry } from '../../src/storage.js'
import {
  checkLinearizability,
  type KvInput,
  type KvOutput,
  kvModel,
  type Operation,
} from '../../src/testing/index.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

export class SimFailure extends Error {}

/** Real time one seed may take before its watchdog fails it: typical seeds take 20-50 ms of CPU; the margin is for a machine shared by many test runs. */
export const SEED_WATCHDOG_MS = Number(process.env['SWARMKIT_SEED_WATCHDOG_MS'] ?? 60_000)

/**
 * Runs one seed under a watchdog: a seed still running after `ms` of real time fails with a SimFailure naming
 * it, instead of hanging the suite (a livelock: timers or messages that keep firing without virtual time
 * passing, or a promise that never settles). The signal stops the seed's clock from advancing any further.
 */
export async function watchdog<T>(
  what: string,
  run: (signal: AbortSignal) => Promise<T>,
  ms = SEED_WATCHDOG_MS,
): Promise<T> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort()
      reject(new SimFailure(`${what} did not finish within ${ms} ms of real time (livelock or hang?)`))
    }, ms)
  })
  try {
    return await Promise.race([run(controller.signal), expired])
  } finally {
    clearTimeout(timer)
  }
}

/** A ManualClock whose every advance stops once the seed's watchdog fired. */
export class WatchedClock extends ManualClock {
  constructor(private readonly signal: AbortSignal) {
    super()
  }

  override advanceAsync(ms: number, options?: { signal?: AbortSignal }): Promise<number> {
    return super.advanceAsync(ms, { signal: options?.signal ?? this.signal })
  }
}

/** Search steps per key for the linearizability check. */
const LINEARIZABILITY_STEPS = 2_000_000

/** The replicated state machine: commands are `key=value`. */
export class Kv {
  readonly data = new Map<string, string>()
  /** `padding` bytes are added to every snapshot (snapshots larger than the transport's high-water mark). */
  constructor(readonly padding = 0) {}

  apply(cmd: Uint8Array): unknown {
    const s = dec.decode(cmd)
    const i = s.indexOf('=')
    this.data.set(s.slice(0, i), s.slice(i + 1))
    return undefined
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ data: [...this.data], pad: '.'.repeat(this.padding) }))
  }
  restore(b: Uint8Array): void {
    this.data.clear()
    for (const [k, v] of (JSON.parse(dec.decode(b)) as { data: [string, string][] }).data) this.data.set(k, v)
  }
}

/** A member as the checks see it: its running core (null when down) and what it applied since the last check. */
export interface CheckedMember {
  readonly id: string
  readonly core: RaftCore | null
  readonly applied: Entry[]
}

interface Committed {
  readonly term: number
  readonly type: number
  readonly data: Uint8Array
  /** The term of the core that first showed it committed. */
  readonly seenIn: number
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Raft's safety properties, checked incrementally: election safety, agreement of committed entries (with the
 * ones seen before, also across compaction), leader completeness, log matching and state machine safety.
 */
export class SafetyChecker {
  readonly #leaders = new Map<number, string>()
  /** Every entry ever seen committed, by index (compaction hides older ones from later cores). */
  readonly committed = new Map<number, Committed>()
  readonly #appliedAt = new Map<number, Uint8Array>()
  /** How far each core's committed prefix has been checked (committed entries never change). */
  readonly #checkedTo = new WeakMap<RaftCore, number>()

  constructor(readonly fail: (msg: string) => never) {}

  /** `full` re-checks every committed entry and compares whole logs byte for byte, not just a recent window. */
  check(members: readonly CheckedMember[], full = false): void {
    for (const m of members) if (m.core) this.#checkCore(m.id, m.core, full)
    this.#checkLogMatching(
      members.filter((m) => m.core !== null),
      full,
    )
    for (const m of members) {
      for (const e of m.applied) {
        const g = this.#appliedAt.get(e.index)
        if (g === undefined) this.#appliedAt.set(e.index, e.data)
        else if (!same(g, e.data))
          this.fail(
            `${m.id} applied "${dec.decode(e.data)}" at ${e.index}, another member applied "${dec.decode(g)}"`,
          )
      }
      m.applied.length = 0
    }
  }

  #checkCore(id: string, c: RaftCore, full: boolean): void {
    if (c.role === 'leader') {
      const prev = this.#leaders.get(c.term)
      if (prev !== undefined && prev !== id) this.fail(`two leaders in term ${c.term}: ${prev} and ${id}`)
      this.#leaders.set(c.term, id)
    }
    const log = c.log
    const from = Math.max(log.snapIndex, full ? 0 : (this.#checkedTo.get(c) ?? 0)) + 1
    for (let i = from; i <= log.committed; i++) {
      const e = log.entries[i - log.snapIndex - 1]!
      const g = this.committed.get(i)
      if (g === undefined) this.committed.set(i, { term: e.term, type: e.type, data: e.data, seenIn: c.term })
      else if (g.term !== e.term || g.type !== e.type || !same(g.data, e.data))
        this.fail(`${id} committed ${i}@${e.term} but ${i}@${g.term} was committed`)
    }
    this.#checkedTo.set(c, log.committed)
    if (c.role === 'leader') {
      for (const [i, g] of this.committed) {
        if (i > log.snapIndex && g.seenIn < c.term && log.term(i) !== g.term)
          this.fail(`leader ${id} (term ${c.term}) lacks committed entry ${i}`)
      }
    }
  }

  /** Same index and term imply the same entries up to there (above both snapshots). */
  #checkLogMatching(live: readonly CheckedMember[], full: boolean): void {
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const la = live[a]!.core!.log
        const lb = live[b]!.core!.log
        const floor = Math.max(la.snapIndex, lb.snapIndex)
        let top = Math.min(la.lastIndex(), lb.lastIndex())
        while (top > floor && la.term(top) !== lb.term(top)) top--
        for (let i = top; i > floor; i--) {
          const ea = la.entries[i - la.snapIndex - 1]!
          const eb = lb.entries[i - lb.snapIndex - 1]!
          if (
            ea.term !== eb.term ||
            ((full || i > top - 8) && ea !== eb && (ea.type !== eb.type || !same(ea.data, eb.data)))
          )
            this.fail(`log matching: ${live[a]!.id} and ${live[b]!.id} agree at ${top} but differ at ${i}`)
        }
      }
    }
  }

  /** A digest of everything seen committed, for bit-for-bit replay checks. */
  digest(): string {
    const parts: string[] = []
    for (const [i, e] of this.committed) parts.push(`${i}@${e.term}/${dec.decode(e.data)}`)
    return `${this.committed.size}:${parts.join(',')}`
  }
}

/**
 * Clients of the simulated cluster: puts through `propose`, linearizable gets through `readIndex`, each recorded
 * with logical call and return times for the linearizability check.
 */
export class KvWorkload {
  readonly history: Operation<KvInput, KvOutput>[] = []
  /** Logical time of client events: a total order of calls and returns. */
  time = 0
  started = 0
  #valueSeq = 0
  /** Operations not settled yet: their number (by start order) and what they were. */
  readonly #pending = new Map<number, string>()

  constructor(readonly trace: (line: string) => void) {}

  put(memberId: string, node: RaftNode, key: string): void {
    const value = `v${++this.#valueSeq}`
    const call = ++this.time
    const client = ++this.started
    this.trace(`${memberId} put ${key}=${value}`)
    const input: KvInput = { op: 'put', key, value }
    const settled = this.#track(client, `${memberId} put ${key}=${value}`)
    node.propose(enc.encode(`${key}=${value}`)).then(
      () => {
        settled()
        this.history.push({ client, input, output: { ok: true }, call, return: ++this.time })
      },
      (err) => {
        settled()
        // NO_LEADER and PROPOSAL_DROPPED mean "not committed": leave it out, so a read of it is a violation.
        if (isRaftError(err, 'NO_LEADER') || isRaftError(err, 'PROPOSAL_DROPPED')) return
        this.history.push({ input, output: undefined, call, return: Number.POSITIVE_INFINITY })
      },
    )
  }

  get(node: RaftNode, sm: Kv, key: string): void {
    const call = ++this.time
    const settled = this.#track(++this.started, `${node.id} get ${key}`)
    node.readIndex().then(
      () => {
        settled()
        this.history.push({
          input: { op: 'get', key },
          output: { value: sm.data.get(key) ?? null },
          call,
          return: ++this.time,
        })
      },
      () => settled(),
    )
  }

  #track(n: number, what: string): () => void {
    this.#pending.set(n, what)
    return () => this.#pending.delete(n)
  }

  /** Operations among the first `upTo` started that have neither resolved nor rejected. */
  unsettled(upTo: number): string[] {
    return [...this.#pending].filter(([n]) => n <= upTo).map(([n, what]) => `#${n} ${what}`)
  }

  /** Puts that returned success so far. */
  completedPuts(): number {
    return this.history.filter((h) => h.input.op === 'put' && h.return !== Number.POSITIVE_INFINITY).length
  }

  completed(): number {
    return this.history.filter((h) => h.return !== Number.POSITIVE_INFINITY).length
  }

  /** Fails on a history that is not linearizable, and on one the checker could not decide within its budget. */
  checkLinearizable(fail: (msg: string) => never): void {
    const result = checkLinearizability(kvModel, this.history, { maxSteps: LINEARIZABILITY_STEPS })
    if (result.outcome === 'illegal')
      fail(`history is not linearizable; partition:\n${JSON.stringify(result.partition)}`)
    // Undecided is not a pass: a bug could hide in exactly the histories too hard to check.
    if (result.outcome === 'unknown')
      fail(
        `the linearizability check ran out of its budget of ${LINEARIZABILITY_STEPS} steps on a partition of ` +
          `${result.partition?.length} operations; shrink the history or improve the checker\n${JSON.stringify(result.partition).slice(0, 4000)}`,
      )
  }
}
