import type { Service, Task } from '@swarmkit/store'

export type NewTask = Omit<Task, 'meta'>

export type Op =
  | { kind: 'create'; task: NewTask }
  | { kind: 'task'; id: string; version: number; next: (cur: Task) => Task }
  | { kind: 'delete'; id: string; version: number }
  | { kind: 'service'; id: string; version: number; next: (cur: Service) => Service }

/**
 * One service's changes in one orchestrator pass: `ops` are committed atomically, `bulk` creations (a
 * scale-up) in chunks, then `after` runs. A plan is bounded: once `full`, the pass stops adding work and sets
 * `more`, and the service is reconciled again in the next pass. So no pass holds, or proposes, more than a
 * bounded number of changes, however large the service (a command must stay under the proposal size limit).
 */
export class Plan {
  readonly ops: Op[] = []
  readonly bulk: NewTask[] = []
  readonly after: (() => void)[] = []
  /** Work was left for the next pass. */
  more = false
  readonly #taskOps = new Map<string, Extract<Op, { kind: 'task' }>>()

  /**
   * @param maxOps - changes in the atomic part
   * @param maxBulk - creations in the chunked part
   */
  constructor(
    readonly maxOps: number,
    readonly maxBulk: number,
  ) {}

  /** No room for more atomic changes in this pass (and says so: `more` is set). */
  get full(): boolean {
    if (this.ops.length < this.maxOps) return false
    this.more = true
    return true
  }

  /** No room for more bulk creations in this pass (and says so: `more` is set). */
  get bulkFull(): boolean {
    if (this.bulk.length < this.maxBulk) return false
    this.more = true
    return true
  }

  /** Changes a task; several changes to one task in a pass are composed into one write. */
  change(t: Task, next: (cur: Task) => Task): void {
    const prev = this.#taskOps.get(t.id)
    if (prev) {
      const first = prev.next
      prev.next = (cur) => next(first(cur))
      return
    }
    const op: Extract<Op, { kind: 'task' }> = { kind: 'task', id: t.id, version: t.meta.version, next }
    this.#taskOps.set(t.id, op)
    this.ops.push(op)
  }

  setDesired(t: Task, desired: Task['desiredState']): void {
    this.change(t, (cur) => ({ ...cur, desiredState: desired }))
  }
}
