// The apply pipeline of a RaftNode: committed entries (and snapshots from the leader) wait here for the state
// machine, in log order, while the driver goes on persisting, sending acknowledgements and votes, and ticking.
// A slow state machine then delays only what waits for its results (proposals, reads), never the node's raft
// duties, as with hashicorp/raft's FSM goroutine and etcd's apply after Ready. The queue is bounded: the driver
// takes no more committed entries from the core while it is full (`room`), so memory stays bounded.
import type { Entry, Snapshot } from '../storage.js'
import { dataBytes } from './wire-entry.js'

export type ApplyTask =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  /** A snapshot from the leader: restored once `saved` (its write) resolves. */
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot; readonly saved: Promise<void> }

export interface ApplyRoom {
  readonly maxCommittedBytes: number
  readonly maxCommittedEntries: number
}

export class ApplyQueue {
  readonly #run: (task: ApplyTask) => Promise<void>
  readonly #maxBytes: number
  readonly #maxEntries: number
  readonly #drained: () => void
  #tasks: ApplyTask[] = []
  #head = 0
  #bytes = 0
  #entries = 0
  #draining: Promise<void> | null = null
  /** The drain loop runs (cleared by the loop itself as it exits, so a push never lands behind it). */
  #active = false
  #stopped = false

  /**
   * `run` applies one task (it reports its own failures); `drained` is told each time a task leaves the queue,
   * so the driver can take more committed entries.
   */
  constructor(
    run: (task: ApplyTask) => Promise<void>,
    maxBytes: number,
    maxEntries: number,
    drained: () => void,
  ) {
    this.#run = run
    this.#maxBytes = maxBytes
    this.#maxEntries = maxEntries
    this.#drained = drained
  }

  /** What the core may hand out now (zeros while the queue is full). */
  room(): ApplyRoom {
    return {
      maxCommittedBytes: Math.max(0, this.#maxBytes - this.#bytes),
      maxCommittedEntries: Math.max(0, this.#maxEntries - this.#entries),
    }
  }

  /** Nothing queued or being applied. */
  get idle(): boolean {
    return !this.#active
  }

  push(task: ApplyTask): void {
    if (this.#stopped) return
    if (task.kind === 'entries') {
      this.#bytes += bytesOf(task.entries)
      this.#entries += task.entries.length
    } else task.saved.catch(() => {})
    this.#tasks.push(task)
    if (!this.#active) {
      this.#active = true
      this.#draining = this.#drain()
    }
  }

  /** Drops what is queued; resolves once the task being applied (if any) finished. */
  stop(): Promise<void> {
    this.#stopped = true
    this.#tasks = []
    this.#head = 0
    return this.#active && this.#draining !== null ? this.#draining : Promise.resolve()
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#stopped && this.#head < this.#tasks.length) {
        const task = this.#tasks[this.#head]!
        this.#tasks[this.#head++] = undefined as unknown as ApplyTask
        if (this.#head > 1024 && this.#head * 2 > this.#tasks.length) {
          this.#tasks = this.#tasks.slice(this.#head)
          this.#head = 0
        }
        try {
          await this.#run(task)
        } catch {
          // `run` reports its own failures (the node stops); nothing more is applied.
          this.#stopped = true
        }
        if (task.kind === 'entries') {
          this.#bytes -= bytesOf(task.entries)
          this.#entries -= task.entries.length
        }
        if (!this.#stopped) this.#drained()
      }
      this.#tasks = []
      this.#head = 0
    } finally {
      // In the same turn as the loop's last check: a task pushed from now on starts a new drain.
      this.#active = false
    }
  }
}

function bytesOf(entries: readonly Entry[]): number {
  let n = 0
  for (let i = 0; i < entries.length; i++) n += dataBytes(entries[i]!)
  return n
}
