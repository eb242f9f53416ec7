import type { Service, Task } from '@swarmkit/store'

export type NewTask = Omit<Task, 'meta'>

export type Op =
  | { kind: 'create'; task: NewTask }
  | {
      kind: 'task'
      id: string
      version: number
      next: (cur: Task) => Task
      /** The task as the pass read it (what its decision rests on); none for a change after a taken op. */
      base?: Task
      /** Taken for a commit during the pass (see {@link Plan.take}): later changes to the task are new ops. */
      sealed?: boolean
      /** The task's version once this op was committed (set by whoever commits it). */
      written?: number
    }
  | { kind: 'delete'; id: string; version: number }
  | { kind: 'service'; id: string; version: number; next: (cur: Service) => Service }

/** A run of `ops` committed in one transaction, then its `after` callbacks run. */
export interface PlanChunk {
  readonly ops: readonly Op[]
  readonly after: readonly (() => void)[]
}

/**
 * One service's changes in one orchestrator pass: `ops` are committed in transactions of at most `maxTxOps`
 * (cut only where the pass said its changes stand alone, see {@link Plan.cut}), `bulk` creations (a
 * scale-up) in chunks, then `after` runs, each callback once the transaction of the changes before it
 * committed. A plan is bounded: once `full`, the pass stops adding work and sets `more`, and the service is
 * reconciled again in the next pass. So no pass holds, or proposes, more than a bounded number of changes,
 * however large the service (a command must stay under the proposal size limit).
 *
 * Why cuts: a pass over a service of tens of thousands of tasks costs time in proportion to its tasks, not
 * to its changes; a rolling update of R slots that made only one transaction's worth of changes per pass
 * walked the whole service some 3R/200 times (at 50,000 slots, hours of a manager's CPU). With cuts, a
 * pass makes up to `maxOps` changes, as several transactions of independent steps.
 */
export class Plan {
  readonly ops: Op[] = []
  readonly bulk: NewTask[] = []
  readonly after: (() => void)[] = []
  /** Work was left for the next pass. */
  more = false
  /** A commit during the pass failed: what is left is not to be committed (the next pass looks again). */
  abandoned = false
  /** Changes committed during the pass (what {@link take} handed out and its taker committed). */
  committed = 0
  readonly #taskOps = new Map<string, Extract<Op, { kind: 'task' }>>()
  /** Where the plan may be split between transactions: [ops.length, after.length] after a finished step. */
  readonly #cuts: [number, number][] = []
  #lastCut = 0
  /** What {@link take} handed out so far: [ops, after] (the rest is what {@link chunks} gives). */
  #taken: [number, number] = [0, 0]

  /**
   * @param maxOps - changes in the atomic part
   * @param maxBulk - creations in the chunked part
   * @param maxTxOps - changes per transaction (the atomic part is split at cuts); default `maxOps`
   */
  constructor(
    readonly maxOps: number,
    readonly maxBulk: number,
    readonly maxTxOps = maxOps,
  ) {}

  /**
   * No room for more changes in this pass (and says so: `more` is set): `maxOps` in all, or `maxTxOps`
   * since the last cut (a step that never cuts is bounded by one transaction, as before cuts existed).
   */
  get full(): boolean {
    if (this.ops.length < this.maxOps && this.ops.length - this.#lastCut < this.maxTxOps) return false
    this.more = true
    return true
  }

  /** No room for more bulk creations in this pass (and says so: `more` is set). */
  get bulkFull(): boolean {
    if (this.bulk.length < this.maxBulk) return false
    this.more = true
    return true
  }

  /**
   * Marks the changes so far as complete steps: a transaction may end here. Call it only where every change
   * before it (with its `after` callbacks) stands alone, e.g. after each slot of a rolling update.
   */
  cut(): void {
    if (this.ops.length === this.#lastCut) return
    this.#lastCut = this.ops.length
    this.#cuts.push([this.ops.length, this.after.length])
  }

  /**
   * The atomic part not taken yet as transactions of at most `maxTxOps` changes where cuts allow, in order
   * (with the `after` callbacks of the changes, even when there are none).
   */
  chunks(): PlanChunk[] {
    const out = this.#chunksTo([this.ops.length, this.after.length])
    if (out.length === 0) out.push({ ops: [], after: this.after.slice(this.#taken[1]) })
    this.#taken = [this.ops.length, this.after.length]
    return out
  }

  /** Changes up to the last cut that {@link take} has not handed out yet. */
  get takeable(): number {
    return this.#lastCut - this.#taken[0]
  }

  /**
   * The complete steps so far (up to the last cut) not taken yet, as {@link chunks} would split them, marked
   * taken: a long pass commits them as it goes, instead of all its changes at its end. A task changed again
   * later in the pass gets a new op, from the version its taken op wrote.
   */
  take(): PlanChunk[] {
    const last = this.#cuts[this.#cuts.length - 1]
    if (!last || last[0] <= this.#taken[0]) return []
    const out = this.#chunksTo(last)
    for (let i = this.#taken[0]; i < last[0]; i++) {
      const op = this.ops[i] as Op
      if (op.kind === 'task') op.sealed = true
    }
    this.#taken = [last[0], last[1]]
    return out
  }

  /** The transactions from what was taken up to `to`, cut where allowed. */
  #chunksTo(to: [number, number]): PlanChunk[] {
    const out: PlanChunk[] = []
    const bounds = this.#cuts.filter((b) => b[0] > this.#taken[0] && b[0] < to[0])
    bounds.push(to)
    let from = this.#taken
    let end: [number, number] | undefined
    for (const b of bounds) {
      if (end && b[0] - from[0] > this.maxTxOps) {
        out.push({ ops: this.ops.slice(from[0], end[0]), after: this.after.slice(from[1], end[1]) })
        from = end
      }
      end = b
    }
    if (end && (end[0] > from[0] || end[1] > from[1]))
      out.push({ ops: this.ops.slice(from[0], end[0]), after: this.after.slice(from[1], end[1]) })
    return out
  }

  /** Changes a task; several changes to one task in a pass are composed into one write. */
  change(t: Task, next: (cur: Task) => Task): void {
    const prev = this.#taskOps.get(t.id)
    if (prev && !prev.sealed) {
      const first = prev.next
      prev.next = (cur) => next(first(cur))
      return
    }
    const op: Extract<Op, { kind: 'task' }> = prev
      ? { kind: 'task', id: t.id, version: prev.written ?? prev.version, next }
      : { kind: 'task', id: t.id, version: t.meta.version, next, base: t }
    this.#taskOps.set(t.id, op)
    this.ops.push(op)
  }

  /** Whether this plan changes task `id`. */
  touches(id: string): boolean {
    return this.#taskOps.has(id)
  }

  setDesired(t: Task, desired: Task['desiredState']): void {
    this.change(t, (cur) => ({ ...cur, desiredState: desired }))
  }
}
