// A leader's bare commit notices (appends that carry no entries, only a new commit index) tell followers what
// they may apply. Each is a socket write on the leader, a wake-up and a Ready on its follower, and that
// follower's answer back; under load a leader made one per follower per batch, as many as the appends carrying
// entries. So a bare append waits for the node's next tick and is dropped if a later append to the same
// follower goes out first, since that one carries the commit index too (hashicorp/raft's followers likewise
// learn the commit index from the next AppendEntries, or after its CommitTimeout). Nothing waits for a follower
// to apply: a proposer's answer comes from the leader, and a follower's read waits for the leader's read index.
import { type Message, MessageType } from '../types.js'

function isBareAppend(m: Message): boolean {
  return m.type === MessageType.Append && m.entries.length === 0
}

/**
 * Holds a leader's bare appends until {@link flush} (the node's next tick), at most one per follower (a later
 * one replaces it), and drops one when an append with entries goes to its follower meanwhile. A later append
 * always carries a commit index at least as high (it is made later by the same or a newer leader), and raft
 * tolerates a delayed or superseded message, so holding one changes no outcome, only when a follower applies.
 */
export class CommitNotices {
  readonly #held = new Map<string, Message>()

  constructor(private readonly sendNow: (msgs: readonly Message[]) => void) {}

  /** Takes the bare appends out of `msgs` to hold them; returns what goes out at once (`msgs` if all of it). */
  filter(msgs: readonly Message[]): readonly Message[] {
    let rest: Message[] | null = null
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!
      if (isBareAppend(m)) {
        rest ??= msgs.slice(0, i)
        this.#held.set(m.to, m)
      } else {
        // An append with entries carries the commit index: what was held for its follower is void.
        if (m.type === MessageType.Append && this.#held.size > 0) this.#held.delete(m.to)
        rest?.push(m)
      }
    }
    return rest ?? msgs
  }

  /** Sends what is held now (at a tick, or when the node stops). */
  flush(): void {
    if (this.#held.size === 0) return
    const msgs = [...this.#held.values()]
    this.#held.clear()
    this.sendNow(msgs)
  }

  /** Drops what is held (the node failed). */
  clear(): void {
    this.#held.clear()
  }
}
