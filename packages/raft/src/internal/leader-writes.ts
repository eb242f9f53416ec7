// When a leader writes its log inline (on its own thread, SaveOptions.inline) rather than through libuv's
// thread pool. The pool lets a leader's loop go on taking proposals and sending them to the followers while its
// own write is under way (eager pipelining), which is what many concurrent proposers need. With one proposer
// at a time nothing comes in during the write, and the pool's hop buys nothing: a worker woken, its result
// handed back through the loop's eventfd, two thread switches and about seven system calls per write. So a
// leader writes inline while its writes carry at most one entry and no proposal came in during its last write
// in the background; a write of more entries (proposals piled up, e.g. behind an inline write) or a proposal
// during a background write sends the next write to the pool again.

export class LeaderWrites {
  #busy = false

  /** A proposal was taken while a write was under way. */
  proposedDuringWrite(): void {
    this.#busy = true
  }

  /** Whether a write of `entries` entries about to start goes inline; starts watching the next one. */
  inline(entries: number): boolean {
    const quiet = !this.#busy && entries <= 1
    this.#busy = false
    return quiet
  }
}
