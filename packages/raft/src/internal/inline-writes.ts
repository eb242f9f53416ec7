// Which of a member's log writes go inline (on its own thread, SaveOptions.inline) rather than through libuv's
// thread pool. The pool's hop costs a worker woken and its result handed back through the loop's eventfd: two
// thread switches and 7-9 system calls per write, two of the switches on the path of every replicated write.
// It buys two things: a leader's loop goes on taking proposals and sending them to the followers while its own
// write is under way (eager pipelining), and any member goes on answering heartbeats while its disk stalls (so
// a disk that all members share, stalling past an election timeout, does not cost the leader its quorum).
// Both matter under load and neither with one proposer at a time, which is where the hop's latency shows. So a
// write goes inline while it carries at most one entry, and a leader's only while no proposal came in during its
// last write in the background: more entries (proposals piled up, e.g. behind an inline write) or a proposal
// during a background write send the writes to the pool again. (FileLogStorage also writes nothing inline after
// a slow write: `maxInlineWriteMs`.)
import type { Role } from '../types.js'

export class InlineWrites {
  #busy = false

  /** A proposal was taken while a write was under way. */
  proposedDuringWrite(): void {
    this.#busy = true
  }

  /** Whether a write of `entries` entries that `role` is about to start goes inline. */
  inline(role: Role, entries: number): boolean {
    if (role === 'follower') return entries <= 1
    if (role !== 'leader') return false
    const quiet = !this.#busy && entries <= 1
    this.#busy = false
    return quiet
  }
}
