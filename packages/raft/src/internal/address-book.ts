// Transport addresses of the members a RaftNode knows: from its bootstrap peers, and from every configuration
// it appends, restores or applies (a configuration takes effect when appended, so its members' addresses are
// learned then). A member's own address given at start is never overridden by the log.
import type { RaftCore } from '../core.js'
import { type ConfState, type Entry, EntryType } from '../storage.js'
import { decodeConf } from './conf.js'

export class AddressBook {
  constructor(
    private readonly self: string,
    /** Address per member ID (the bootstrap peers' to start with). */
    readonly byId: Map<string, string>,
  ) {}

  get(id: string): string | undefined {
    return this.byId.get(id)
  }

  learn(conf: ConfState): void {
    if (!conf.addresses) return
    for (const [id, address] of Object.entries(conf.addresses)) {
      if (id !== this.self || !this.byId.has(id)) this.byId.set(id, address)
    }
  }

  /** Learns the addresses in the Config entries among `entries`. */
  learnEntries(entries: readonly Entry[]): void {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (e.type === EntryType.Config) this.learn(decodeConf(e.data))
    }
  }

  /** The configuration as of log index `index`, with the addresses known for its members. */
  confAt(core: RaftCore, index: number): ConfState {
    const conf = core.confAt(index)
    const addresses: Record<string, string> = {}
    for (const id of [...conf.voters, ...conf.learners]) {
      const a = this.byId.get(id)
      if (a !== undefined) addresses[id] = a
    }
    return { ...conf, addresses }
  }
}
